/// Why bytes are not a valid admin datagram (docs/ADMIN.md).
///
/// Every malformed datagram a peer can send maps to one case, so a hostile client costs the
/// server one failure answer, never a trap. The description is what the server sends back as
/// the failure message.
public enum AdminProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The request does not start with ``AdminProtocol/magic``: not an admin request, or one
    /// from a client that predates the versioned protocol.
    case badMagic
    /// The request's header names a protocol version this server does not speak.
    case unsupportedVersion(UInt16)
    /// The reserved header field is not 0 (version 1 gives it no meaning).
    case reservedNotZero(UInt16)
    /// The datagram ends inside its fixed part (the request header, an answer's kind or status
    /// byte).
    case truncated
    /// The datagram is longer than ``AdminProtocol/maximumDatagramLength``.
    case tooLong
    /// A field is not valid UTF-8. Fields count from 0: the command, the guest, then the
    /// parameters.
    case notUTF8(field: Int)
    /// A field the request needs is missing or empty (`"command"` or `"guest"`).
    case missingField(String)
    /// A field to encode contains NUL, the separator between fields (numbered as in
    /// ``notUTF8(field:)``).
    case containsNUL(field: Int)
    /// An answer's kind byte is none of `O`, `P`, `E`.
    case unknownAnswerKind(UInt8)
    /// A progress answer is not two decimal numbers separated by one space.
    case malformedProgress
    /// An end answer's status byte is neither 0 (success) nor 1 (failure).
    case unknownStatus(UInt8)

    public var description: String {
        let speaks = AdminProtocol.supportedVersions.map(String.init).joined(separator: ", ")
        switch self {
        case .badMagic:
            return "not an admin request (no \"VMBA\" header); this server speaks admin protocol version(s) \(speaks)"
        case .unsupportedVersion(let version):
            return "admin protocol version \(version) is not supported; this server speaks version(s) \(speaks)"
        case .reservedNotZero(let value):
            return "malformed admin request: the reserved header field is \(value), not 0"
        case .truncated:
            return "malformed admin datagram: it ends inside its header"
        case .tooLong:
            return "malformed admin datagram: longer than \(AdminProtocol.maximumDatagramLength) bytes"
        case .notUTF8(let field):
            return "malformed admin datagram: field \(field) is not UTF-8"
        case .missingField(let name):
            return "malformed admin request: no \(name)"
        case .containsNUL(let field):
            return "field \(field) contains NUL, which the admin protocol cannot carry"
        case .unknownAnswerKind(let kind):
            return "malformed admin answer: unknown kind \(kind)"
        case .malformedProgress:
            return "malformed admin answer: progress is not DONE TOTAL"
        case .unknownStatus(let status):
            return "malformed admin answer: unknown end status \(status)"
        }
    }
}
