/// One RNDIS control message (11 §5.1): {u32 type, u32 msg_len} and a body whose internal
/// offsets count from byte 8. Data packets have their own zero-copy reader
/// (``RNDISPacketHeader``); here a PACKET is only recognised.
public enum RNDISMessage: Hashable, Sendable {
    /// PACKET_MSG: a data packet, read with ``RNDISPacketHeader`` instead.
    case packet
    /// INITIALIZE_MSG, G→H: the guest's RNDIS version and largest message.
    case initialize(requestID: UInt32, major: UInt32, minor: UInt32, maximumTransferSize: UInt32)
    /// INITIALIZE_CMPLT, H→G: the device's limits.
    case initializeComplete(RNDISInitializeComplete)
    /// HALT_MSG, G→H: the guest stops the device; there is no answer.
    case halt(requestID: UInt32)
    /// QUERY_MSG, G→H: read an OID; `information` is the input buffer (usually empty).
    case query(requestID: UInt32, oid: NDISOID, information: [UInt8])
    /// SET_MSG, G→H: write an OID with `information`.
    case set(requestID: UInt32, oid: NDISOID, information: [UInt8])
    /// QUERY_CMPLT, H→G: the status and the OID's value.
    case queryComplete(requestID: UInt32, status: RNDISStatus, information: [UInt8])
    /// SET_CMPLT, H→G: the status of a set.
    case setComplete(requestID: UInt32, status: RNDISStatus)
    /// RESET_MSG, G→H.
    case reset
    /// RESET_CMPLT, H→G: the status, and whether addressing (multicast lists) was reset.
    case resetComplete(status: RNDISStatus, addressingReset: UInt32)
    /// INDICATE_STATUS_MSG, H→G: an unsolicited status (link change, …) with its buffer.
    case indicateStatus(status: RNDISStatus, buffer: [UInt8])
    /// KEEPALIVE_MSG: is the peer still there?
    case keepalive(requestID: UInt32)
    /// KEEPALIVE_CMPLT: the answer.
    case keepaliveComplete(requestID: UInt32, status: RNDISStatus)
    /// A type this library does not interpret: its type and the bytes after the header.
    case other(RNDISMessageType, body: [UInt8])

    /// Bytes of a QUERY/SET before its information (header + 20).
    public static let requestHeaderSize = 28
    /// The largest information buffer accepted in a control message: Linux's control reply
    /// limit (4 148 bytes of message, 11 §8) bounds what either side needs.
    public static let maximumInformationSize = 4096

    /// The message type of this message.
    public var type: RNDISMessageType {
        switch self {
        case .packet: return .packet
        case .initialize: return .initialize
        case .initializeComplete: return .initializeComplete
        case .halt: return .halt
        case .query: return .query
        case .set: return .set
        case .queryComplete: return .queryComplete
        case .setComplete: return .setComplete
        case .reset: return .reset
        case .resetComplete: return .resetComplete
        case .indicateStatus: return .indicateStatus
        case .keepalive: return .keepalive
        case .keepaliveComplete: return .keepaliveComplete
        case .other(let type, _): return type
        }
    }

    /// The `msg_len` of a message at the start of `bytes`, checked to be at least 8 and to fit.
    /// - Throws: ``WireError/truncated(needed:available:)``, or
    ///   ``WireError/invalidField(name:value:)`` for a length below 8.
    public static func messageLength(in bytes: ArraySlice<UInt8>) throws(WireError) -> Int {
        var reader = WireReader(bytes)
        try reader.require(8)
        _ = try reader.readUInt32()
        let length = try reader.readUInt32()
        guard length >= 8 else { throw WireError.invalidField(name: "RNDIS msg_len", value: UInt64(length)) }
        guard UInt64(length) <= UInt64(bytes.count) else { throw WireError.truncated(needed: Int(length), available: bytes.count) }
        return Int(length)
    }

    /// Parses the one message at the start of `bytes` (its `msg_len` bytes; the rest ignored).
    /// - Throws: truncation or bad lengths; an information buffer outside the message or above
    ///   ``maximumInformationSize``.
    public init(parsing bytes: ArraySlice<UInt8>) throws(WireError) {
        let length = try Self.messageLength(in: bytes)
        let message = bytes.prefix(length)
        var reader = WireReader(message)
        let type = RNDISMessageType(rawValue: try reader.readUInt32())
        _ = try reader.readUInt32()
        // An (offset from byte 8, length) pair naming bytes inside this message.
        func information(offset: UInt32, length: UInt32) throws(WireError) -> [UInt8] {
            guard length > 0 else { return [] }
            guard length <= UInt32(Self.maximumInformationSize) else {
                throw WireError.limitExceeded(name: "RNDIS information", value: UInt64(length), limit: UInt64(Self.maximumInformationSize))
            }
            let start = 8 + UInt64(offset)
            guard start + UInt64(length) <= UInt64(message.count) else {
                throw WireError.invalidField(name: "RNDIS information offset", value: UInt64(offset))
            }
            let begin = message.startIndex + Int(start)
            return Array(message[begin..<(begin + Int(length))])
        }
        switch type {
        case .packet:
            self = .packet
        case .initialize:
            let requestID = try reader.readUInt32()
            self = .initialize(
                requestID: requestID, major: try reader.readUInt32(), minor: try reader.readUInt32(),
                maximumTransferSize: try reader.readUInt32())
        case .initializeComplete:
            var complete = RNDISInitializeComplete(requestID: try reader.readUInt32(), status: RNDISStatus(rawValue: try reader.readUInt32()))
            complete.major = try reader.readUInt32()
            complete.minor = try reader.readUInt32()
            complete.deviceFlags = try reader.readUInt32()
            complete.medium = try reader.readUInt32()
            complete.maximumPacketsPerMessage = try reader.readUInt32()
            complete.maximumTransferSize = try reader.readUInt32()
            complete.packetAlignmentShift = try reader.readUInt32()
            self = .initializeComplete(complete)
        case .halt:
            self = .halt(requestID: try reader.readUInt32())
        case .query, .set:
            let requestID = try reader.readUInt32()
            let oid = NDISOID(rawValue: try reader.readUInt32())
            let length = try reader.readUInt32()
            let offset = try reader.readUInt32()
            let info = try information(offset: offset, length: length)
            self = type == .query
                ? .query(requestID: requestID, oid: oid, information: info) : .set(requestID: requestID, oid: oid, information: info)
        case .queryComplete:
            let requestID = try reader.readUInt32()
            let status = RNDISStatus(rawValue: try reader.readUInt32())
            let length = try reader.readUInt32()
            let offset = try reader.readUInt32()
            self = .queryComplete(requestID: requestID, status: status, information: try information(offset: offset, length: length))
        case .setComplete:
            self = .setComplete(requestID: try reader.readUInt32(), status: RNDISStatus(rawValue: try reader.readUInt32()))
        case .reset:
            self = .reset
        case .resetComplete:
            self = .resetComplete(status: RNDISStatus(rawValue: try reader.readUInt32()), addressingReset: try reader.readUInt32())
        case .indicateStatus:
            let status = RNDISStatus(rawValue: try reader.readUInt32())
            let length = try reader.readUInt32()
            let offset = try reader.readUInt32()
            self = .indicateStatus(status: status, buffer: try information(offset: offset, length: length))
        case .keepalive:
            self = .keepalive(requestID: try reader.readUInt32())
        case .keepaliveComplete:
            self = .keepaliveComplete(requestID: try reader.readUInt32(), status: RNDISStatus(rawValue: try reader.readUInt32()))
        default:
            self = .other(type, body: Array(reader.readRemaining()))
        }
    }

    /// The whole message, `msg_len` filled in. Information buffers follow their fields
    /// directly (QUERY/SET offset 20, QUERY_CMPLT 16, INDICATE_STATUS 12 or 0 when empty).
    public func encode() -> [UInt8] {
        var writer = WireWriter(capacity: 64)
        writer.writeUInt32(self.type.rawValue)
        writer.writeUInt32(0)
        switch self {
        case .packet: break
        case .initialize(let requestID, let major, let minor, let maximum):
            for word in [requestID, major, minor, maximum] { writer.writeUInt32(word) }
        case .initializeComplete(let c):
            for word in [c.requestID, c.status.rawValue, c.major, c.minor, c.deviceFlags, c.medium, c.maximumPacketsPerMessage,
                         c.maximumTransferSize, c.packetAlignmentShift, 0, 0] { writer.writeUInt32(word) }
        case .halt(let requestID), .keepalive(let requestID):
            writer.writeUInt32(requestID)
        case .query(let requestID, let oid, let info), .set(let requestID, let oid, let info):
            for word in [requestID, oid.rawValue, UInt32(info.count), 20, 0] { writer.writeUInt32(word) }
            writer.writeBytes(info)
        case .queryComplete(let requestID, let status, let info):
            for word in [requestID, status.rawValue, UInt32(info.count), 16] { writer.writeUInt32(word) }
            writer.writeBytes(info)
        case .setComplete(let requestID, let status), .keepaliveComplete(let requestID, let status):
            writer.writeUInt32(requestID)
            writer.writeUInt32(status.rawValue)
        case .reset:
            writer.writeUInt32(0)
        case .resetComplete(let status, let addressing):
            writer.writeUInt32(status.rawValue)
            writer.writeUInt32(addressing)
        case .indicateStatus(let status, let buffer):
            writer.writeUInt32(status.rawValue)
            writer.writeUInt32(UInt32(buffer.count))
            writer.writeUInt32(buffer.isEmpty ? 0 : 12)
            writer.writeBytes(buffer)
        case .other(_, let body):
            writer.writeBytes(body)
        }
        writer.setUInt32(UInt32(writer.count), at: 4)
        return writer.bytes
    }
}
