/// A 256-byte SynIC message as the hypervisor delivers it into a SINT slot (01 §1.1).
///
/// The slot lives in shared memory the host may change at any time, so a receiver copies all
/// 256 bytes first and parses the copy with this type.
public struct SynICMessage: Hashable, Sendable {
    /// Size of a slot.
    public static let wireSize = 256
    /// Size of the header before the payload.
    public static let headerSize = 16
    /// Largest payload.
    public static let maximumPayloadSize = 240
    /// `message_type` of an empty slot (HVMSG_NONE).
    public static let typeNone: UInt32 = 0
    /// `message_type` of the timer-expired message (not VMBus).
    public static let typeTimerExpired: UInt32 = 0x8000_0010

    /// 0 = empty slot; VMBus channel messages use 1.
    public var messageType: UInt32
    /// Byte 5, bit 0: another message is queued behind this one (the receiver must signal EOM).
    public var messagePending: Bool
    /// Origin information; not used by VMBus.
    public var senderPortID: UInt64
    /// The `payload_size` valid payload bytes.
    public var payload: [UInt8]

    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` for more than 240 payload bytes.
    public init(messageType: UInt32, messagePending: Bool = false, senderPortID: UInt64 = 0, payload: [UInt8])
        throws(WireError)
    {
        try WireError.check("SynIC payload size", payload.count, limit: Self.maximumPayloadSize)
        self.messageType = messageType
        self.messagePending = messagePending
        self.senderPortID = senderPortID
        self.payload = payload
    }

    /// Reads a 256-byte slot copy. A `payload_size` above 240 is rejected, as Linux does.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize)
        self.messageType = try reader.readUInt32()
        let size = try reader.readUInt8()
        let flags = try reader.readUInt8()
        try reader.skip(2)
        self.senderPortID = try reader.readUInt64()
        try WireError.check("SynIC payload size", size, limit: Self.maximumPayloadSize)
        self.messagePending = flags & 1 != 0
        let area = try reader.readBytes(Self.maximumPayloadSize)
        self.payload = Array(area.prefix(Int(size)))
    }

    /// Writes the full 256-byte slot, zero-filling the unused payload.
    public func write(to writer: inout WireWriter) {
        writer.writeUInt32(self.messageType)
        writer.writeUInt8(UInt8(self.payload.count))
        writer.writeUInt8(self.messagePending ? 1 : 0)
        writer.writeZeros(2)
        writer.writeUInt64(self.senderPortID)
        writer.writeFixed(self.payload, size: Self.maximumPayloadSize)
    }
}

/// The 256-byte input block of the `HvPostMessage` hypercall (call code 0x005C; 01 §1.1).
public struct PostMessageInput: Hashable, Sendable {
    /// Size of the input block.
    public static let wireSize = 256
    /// The hypercall code of HvPostMessage.
    public static let hypercallCode: UInt16 = 0x005C
    /// Only the low 24 bits of a connection id are significant.
    public static let connectionIDMask: UInt32 = 0x00FF_FFFF

    /// Target connection (low 24 bits significant).
    public var connectionID: UInt32
    /// Always 1 for VMBus.
    public var messageType: UInt32
    /// At most 240 bytes.
    public var payload: [UInt8]

    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` for more than 240 payload bytes.
    public init(connectionID: UInt32, messageType: UInt32 = VMBusConnectionID.synicMessageType, payload: [UInt8])
        throws(WireError)
    {
        try WireError.check("SynIC payload size", payload.count, limit: SynICMessage.maximumPayloadSize)
        self.connectionID = connectionID
        self.messageType = messageType
        self.payload = payload
    }

    /// Reads a 256-byte input block; the connection id keeps only its 24 significant bits.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize)
        self.connectionID = try reader.readUInt32() & Self.connectionIDMask
        try reader.skip(4)
        self.messageType = try reader.readUInt32()
        let size = try reader.readUInt32()
        try WireError.check("SynIC payload size", size, limit: SynICMessage.maximumPayloadSize)
        self.payload = Array(try reader.readBytes(SynICMessage.maximumPayloadSize).prefix(Int(size)))
    }

    /// Writes the full 256-byte block.
    public func write(to writer: inout WireWriter) {
        writer.writeUInt32(self.connectionID & Self.connectionIDMask)
        writer.writeZeros(4)
        writer.writeUInt32(self.messageType)
        writer.writeUInt32(UInt32(self.payload.count))
        writer.writeFixed(self.payload, size: SynICMessage.maximumPayloadSize)
    }
}

/// The 8-byte input of the fast hypercall `HvSignalEvent` (0x005D; 01 §1.2): connection id in
/// bits 0–31, flag number in 32–47, zero above.
public struct SignalEventInput: Hashable, Sendable {
    /// The hypercall code of HvSignalEvent.
    public static let hypercallCode: UInt16 = 0x005D
    /// The connection id to signal (bits 0–31): the offer's, for a channel.
    public var connectionID: UInt32
    /// The event flag to set (bits 32–47); 0 except with guest-specified signal parameters.
    public var flagNumber: UInt16

    /// The input for signalling `connectionID`.
    public init(connectionID: UInt32, flagNumber: UInt16 = 0) {
        self.connectionID = connectionID
        self.flagNumber = flagNumber
    }

    /// The 64-bit register value.
    public var rawValue: UInt64 { UInt64(self.connectionID) | UInt64(self.flagNumber) << 32 }

    /// Decodes a register value; bits 48–63 must be zero.
    public init(rawValue: UInt64) throws(WireError) {
        guard rawValue >> 48 == 0 else {
            throw WireError.invalidField(name: "HvSignalEvent reserved bits", value: rawValue >> 48)
        }
        self.connectionID = UInt32(truncatingIfNeeded: rawValue)
        self.flagNumber = UInt16(truncatingIfNeeded: rawValue >> 32)
    }
}
