/// A failed admin request, as its user reads it.
///
/// Command handlers throw it (any other error works too: its description becomes the
/// message), and ``AdminClient`` throws it with the message the server sent, or with why the
/// server could not be asked.
public struct AdminError: Error, CustomStringConvertible, Hashable, Sendable {
    /// The message, a sentence without a trailing newline.
    public var message: String

    /// An error with `message`.
    public init(_ message: String) { self.message = message }

    public var description: String { self.message }
}
