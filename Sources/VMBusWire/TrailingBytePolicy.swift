/// What a parser does with bytes left after the structure it read.
///
/// Real senders pad: UEFI posts maximum-length GPADL messages and a SynIC slot may carry more
/// than a message needs, so hosts and guests that must interoperate ignore the excess, as
/// Hyper-V, Linux and OpenVMM do. `.reject` is for tests, fuzzing and callers that want exact
/// encodings.
public enum TrailingBytePolicy: Sendable {
    /// Bytes after the structure are ignored.
    case ignore
    /// Bytes after the structure throw ``WireError/trailingBytes(count:)``.
    case reject
}
