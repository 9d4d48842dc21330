/// Frame kinds of the local substrate (spec 09 §2). An open set.
public struct SubstrateFrameKind: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// Guest → host: substrate version, page size, memory size; carries the guest memory memfd.
    public static let hello = Self(rawValue: 1)
    /// Host → guest: HELLO accepted; VMBus messages may follow.
    public static let welcome = Self(rawValue: 2)
    /// Host → guest: HELLO refused, with a reason and a text; the host closes the connection.
    public static let refuse = Self(rawValue: 3)
    /// Both ways: one VMBus channel message (a SynIC message).
    public static let message = Self(rawValue: 4)
    /// Host → guest, before a successful OpenResult: a channel's two eventfds.
    public static let doorbells = Self(rawValue: 5)
    /// Both ways: the sender is leaving, with a reason.
    public static let goodbye = Self(rawValue: 6)
}

/// Why a substrate connection is refused or ends (spec 09 §5). An open set.
public struct SubstrateReason: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// An orderly end.
    public static let normal = Self(rawValue: 0)
    /// HELLO named a substrate version the host does not speak.
    public static let unsupportedVersion = Self(rawValue: 1)
    /// A page size other than 4096, or a memory size that is not whole pages or too large.
    public static let badSize = Self(rawValue: 2)
    /// The guest memory is not sealed against shrinking and growing, or not the size announced.
    public static let notSealed = Self(rawValue: 3)
    /// A malformed frame: short, long, unknown kind, non-zero flags, wrong descriptors.
    public static let protocolError = Self(rawValue: 4)
    /// The host serves as many guests as it may.
    public static let hostFull = Self(rawValue: 5)
    /// The host failed on its own side (it could not map memory, say).
    public static let internalError = Self(rawValue: 6)

    public var description: String {
        switch self {
        case .normal: return "normal shutdown"
        case .unsupportedVersion: return "unsupported substrate version"
        case .badSize: return "bad page size or memory size"
        case .notSealed: return "guest memory not sealed or not the announced size"
        case .protocolError: return "protocol error"
        case .hostFull: return "host full"
        case .internalError: return "internal error"
        default: return "reason \(self.rawValue)"
        }
    }
}

/// One datagram of the local substrate (spec 09): the stand-in for the SynIC and guest memory
/// between a host process and a guest process. Every frame is an 8-byte header (kind, flags,
/// body length) and a body of an exact size; file descriptors travel beside it.
public enum SubstrateFrame: Hashable, Sendable {
    /// Guest → host, first: protocol version, page size, memory size; carries the memory fd.
    case hello(version: UInt32, pageSize: UInt32, memoryBytes: UInt64)
    /// Host → guest: accepted.
    case welcome(version: UInt32)
    /// Host → guest: refused, with a reason and up to 200 bytes of text.
    case refuse(SubstrateReason, text: String)
    /// Both ways: one SynIC message (connection id or SINT, message type, ≤ 240 bytes).
    case message(connectionID: UInt32, messageType: UInt32, payload: [UInt8])
    /// Host → guest, before a successful OpenResult: the channel's two eventfds.
    case doorbells(relid: UInt32, connectionID: UInt32)
    /// Both ways: the sender is leaving.
    case goodbye(SubstrateReason)

    /// The substrate version this library speaks.
    public static let version: UInt32 = 1
    /// Bytes before the body.
    public static let headerSize = 8
    /// The largest datagram.
    public static let maximumDatagram = 4096
    /// The longest REFUSE text.
    public static let maximumRefuseText = 200
    /// The longest MESSAGE payload (a SynIC message payload).
    public static let maximumPayload = SynICMessage.maximumPayloadSize

    /// The frame's kind.
    public var kind: SubstrateFrameKind {
        switch self {
        case .hello: return .hello
        case .welcome: return .welcome
        case .refuse: return .refuse
        case .message: return .message
        case .doorbells: return .doorbells
        case .goodbye: return .goodbye
        }
    }

    /// File descriptors a frame of `kind` must carry (all others: none).
    public static func descriptorCount(_ kind: SubstrateFrameKind) -> Int {
        switch kind {
        case .hello: return 1
        case .doorbells: return 2
        default: return 0
        }
    }

    /// The datagram.
    /// - Precondition: a MESSAGE payload of at most 240 bytes (chosen locally).
    public func encode() -> [UInt8] {
        var body = WireWriter(capacity: 64)
        switch self {
        case .hello(let version, let pageSize, let memoryBytes):
            body.writeUInt32(version)
            body.writeUInt32(pageSize)
            body.writeUInt64(memoryBytes)
            body.writeUInt64(0)
        case .welcome(let version):
            body.writeUInt32(version)
            body.writeUInt32(0)
        case .refuse(let reason, let text):
            body.writeUInt32(reason.rawValue)
            body.writeBytes(Array(text.utf8.prefix(Self.maximumRefuseText)))
        case .message(let connectionID, let messageType, let payload):
            precondition(payload.count <= Self.maximumPayload, "a SynIC payload is at most 240 bytes")
            body.writeUInt32(connectionID)
            body.writeUInt32(messageType)
            body.writeUInt32(UInt32(payload.count))
            body.writeBytes(payload)
        case .doorbells(let relid, let connectionID):
            body.writeUInt32(relid)
            body.writeUInt32(connectionID)
            body.writeUInt32(0)
        case .goodbye(let reason):
            body.writeUInt32(reason.rawValue)
        }
        var frame = WireWriter(capacity: Self.headerSize + body.count)
        frame.writeUInt16(self.kind.rawValue)
        frame.writeUInt16(0)
        frame.writeUInt32(UInt32(body.count))
        frame.writeBytes(body.bytes)
        return frame.bytes
    }

    /// Parses a datagram that arrived with `descriptors` file descriptors.
    /// - Throws: ``WireError`` for anything spec 09 §1 calls a protocol error: short or long
    ///   frames, non-zero flags, a body length that disagrees with the datagram, an unknown
    ///   kind (``WireError/unknownType(_:)``), a body of the wrong size, a MESSAGE payload over
    ///   240 bytes, or the wrong number of descriptors ("descriptor count").
    public static func parse(_ bytes: ArraySlice<UInt8>, descriptors: Int) throws(WireError) -> SubstrateFrame {
        try WireError.check("datagram length", bytes.count, limit: Self.maximumDatagram)
        var reader = WireReader(bytes)
        let kind = SubstrateFrameKind(rawValue: try reader.readUInt16())
        let flags = try reader.readUInt16()
        guard flags == 0 else { throw WireError.invalidField(name: "flags", value: UInt64(flags)) }
        let length = try reader.readUInt32()
        guard Int(length) == reader.remaining else { throw WireError.invalidField(name: "body_length", value: UInt64(length)) }
        let frame: SubstrateFrame
        switch kind {
        case .hello:
            try Self.expectBody(reader, 24)
            let version = try reader.readUInt32()
            let pageSize = try reader.readUInt32()
            let memoryBytes = try reader.readUInt64()
            let reserved = try reader.readUInt64()
            guard reserved == 0 else { throw WireError.invalidField(name: "reserved", value: reserved) }
            frame = .hello(version: version, pageSize: pageSize, memoryBytes: memoryBytes)
        case .welcome:
            try Self.expectBody(reader, 8)
            let version = try reader.readUInt32()
            _ = try reader.readUInt32()
            frame = .welcome(version: version)
        case .refuse:
            guard reader.remaining >= 4 else { throw WireError.truncated(needed: 4, available: reader.remaining) }
            let reason = SubstrateReason(rawValue: try reader.readUInt32())
            try WireError.check("refuse text", reader.remaining, limit: Self.maximumRefuseText)
            frame = .refuse(reason, text: String(decoding: try reader.readBytes(reader.remaining), as: UTF8.self))
        case .message:
            guard reader.remaining >= 12 else { throw WireError.truncated(needed: 12, available: reader.remaining) }
            let connectionID = try reader.readUInt32()
            let messageType = try reader.readUInt32()
            let size = try reader.readUInt32()
            try WireError.check("payload_size", Int(size), limit: Self.maximumPayload)
            guard Int(size) == reader.remaining else { throw WireError.invalidField(name: "payload_size", value: UInt64(size)) }
            frame = .message(connectionID: connectionID, messageType: messageType, payload: Array(try reader.readBytes(Int(size))))
        case .doorbells:
            try Self.expectBody(reader, 12)
            let relid = try reader.readUInt32()
            let connectionID = try reader.readUInt32()
            _ = try reader.readUInt32()
            frame = .doorbells(relid: relid, connectionID: connectionID)
        case .goodbye:
            try Self.expectBody(reader, 4)
            frame = .goodbye(SubstrateReason(rawValue: try reader.readUInt32()))
        default:
            throw WireError.unknownType(UInt32(kind.rawValue))
        }
        guard descriptors == Self.descriptorCount(kind) else {
            throw WireError.invalidField(name: "descriptor count", value: UInt64(descriptors))
        }
        return frame
    }

    static func expectBody(_ reader: WireReader, _ size: Int) throws(WireError) {
        guard reader.remaining == size else {
            if reader.remaining < size { throw WireError.truncated(needed: size, available: reader.remaining) }
            throw WireError.trailingBytes(count: reader.remaining - size)
        }
    }
}
