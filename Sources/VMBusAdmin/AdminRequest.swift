/// One admin request: what a client asks, for which guest, with which parameters.
///
/// ``AdminProtocol/encodeRequest(_:)`` and ``AdminProtocol/parseRequest(_:)`` turn it into
/// the request datagram and back.
public struct AdminRequest: Hashable, Sendable {
    /// The command's name (`status`, `kvp`, …): never empty.
    public var command: String
    /// The guest it is for: its number in `status`, `"uio"` for the exported devices, or `"0"`
    /// for "the only one". Never empty; what it means is up to the command.
    public var guest: String
    /// The command's parameters, in order; each may be empty.
    public var parameters: [String]

    /// A request for `command`; `guest` defaults to `"0"`, the only guest.
    public init(command: String, guest: String = "0", parameters: [String] = []) {
        self.command = command
        self.guest = guest
        self.parameters = parameters
    }
}
