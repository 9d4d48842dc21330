import VMBusWire

/// The admin protocol's constants and its request datagram (docs/ADMIN.md).
///
/// The transport is a `SOCK_SEQPACKET` Unix socket: each request and each answer is one
/// datagram, so no length prefixes are needed. A request is
///
/// ```
/// 0      4        6         8
/// | VMBA | version | reserved | command NUL guest NUL parameter NUL parameter …
///          u16 LE    u16 LE = 0
/// ```
///
/// with every field UTF-8. The answers are ``AdminAnswer`` datagrams. Both functions here are
/// pure, so they are tested without a socket.
public enum AdminProtocol {
    /// The first four bytes of every request: `"VMBA"`.
    public static let magic: [UInt8] = Array("VMBA".utf8)

    /// The version this side sends.
    public static let version: UInt16 = 1

    /// The versions a server answers. A server keeps answering older versions it still speaks
    /// and refuses newer ones, naming this list in the failure.
    public static let supportedVersions: [UInt16] = [1]

    /// Bytes before the first field: magic, version, reserved.
    public static let headerLength = 8

    /// The longest datagram either side sends or accepts. A request longer than this is
    /// refused, not cut.
    public static let maximumDatagramLength = 4096

    /// The longest text an answer carries, in UTF-8 bytes; longer text is cut at the last
    /// whole character before it.
    public static let maximumTextLength = 4000

    /// The request datagram for `request`.
    /// - Throws: ``AdminProtocolError/missingField(_:)`` for an empty command or guest,
    ///   ``AdminProtocolError/containsNUL(field:)`` when a field holds the separator, and
    ///   ``AdminProtocolError/tooLong`` when the datagram would exceed
    ///   ``maximumDatagramLength``.
    public static func encodeRequest(_ request: AdminRequest) throws(AdminProtocolError) -> [UInt8] {
        guard !request.command.isEmpty else { throw .missingField("command") }
        guard !request.guest.isEmpty else { throw .missingField("guest") }
        let fields = [request.command, request.guest] + request.parameters
        var writer = WireWriter(capacity: 64)
        writer.writeBytes(Self.magic)
        writer.writeUInt16(Self.version)
        writer.writeUInt16(0)
        for (index, field) in fields.enumerated() {
            guard !field.utf8.contains(0) else { throw .containsNUL(field: index) }
            if index > 0 { writer.writeUInt8(0) }
            writer.writeBytes(field.utf8)
        }
        guard writer.count <= Self.maximumDatagramLength else { throw .tooLong }
        return writer.bytes
    }

    /// The request in a datagram a client sent: bytes from anywhere, checked field by field.
    /// - Throws: ``AdminProtocolError`` naming the first thing wrong; its description is the
    ///   failure message the server answers with.
    public static func parseRequest(_ bytes: [UInt8]) throws(AdminProtocolError) -> AdminRequest {
        guard bytes.count <= Self.maximumDatagramLength else { throw .tooLong }
        // A short datagram that is a prefix of the magic was cut; anything else is not ours
        // (the unversioned requests of older clients start with their command's name).
        guard bytes.starts(with: Self.magic) else {
            throw bytes.count < Self.magic.count && Self.magic.starts(with: bytes) ? .truncated : .badMagic
        }
        var reader = WireReader(bytes)
        let version: UInt16
        let reserved: UInt16
        do {
            try reader.skip(Self.magic.count)
            version = try reader.readUInt16()
            reserved = try reader.readUInt16()
        } catch {
            throw .truncated
        }
        guard Self.supportedVersions.contains(version) else { throw .unsupportedVersion(version) }
        guard reserved == 0 else { throw .reservedNotZero(reserved) }
        // Not omitting empty pieces: an empty parameter is a value ("set KEY ''"), and a
        // trailing NUL means one more, empty, parameter.
        let pieces = reader.readRemaining().split(separator: 0, omittingEmptySubsequences: false)
        var fields: [String] = []
        for (index, piece) in pieces.enumerated() {
            guard let field = String(validating: piece, as: UTF8.self) else { throw .notUTF8(field: index) }
            fields.append(field)
        }
        // `split` always yields at least one piece, the command, possibly empty.
        guard let command = fields.first, !command.isEmpty else { throw .missingField("command") }
        guard fields.count >= 2, !fields[1].isEmpty else { throw .missingField("guest") }
        return AdminRequest(command: command, guest: fields[1], parameters: Array(fields.dropFirst(2)))
    }
}
