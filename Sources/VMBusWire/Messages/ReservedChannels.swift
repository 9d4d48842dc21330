/// OPEN_RESERVED_CHANNEL (18), guest → host, 4.0+: open a channel that survives a guest
/// disconnect (kernel debuggers, crash paths; Windows and OpenVMM only) (04 §3.15). 28 bytes.
public struct OpenReservedChannel: Hashable, Sendable {
    public static let wireSize = 28
    public var channelID: UInt32
    public var targetVP: UInt32
    public var targetSINT: UInt32
    public var ringBufferGpadl: UInt32
    public var downstreamPageOffset: UInt32

    public init(
        channelID: UInt32, targetVP: UInt32, targetSINT: UInt32, ringBufferGpadl: UInt32,
        downstreamPageOffset: UInt32
    ) {
        self.channelID = channelID
        self.targetVP = targetVP
        self.targetSINT = targetSINT
        self.ringBufferGpadl = ringBufferGpadl
        self.downstreamPageOffset = downstreamPageOffset
    }

    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize - 8)
        self.channelID = try reader.readUInt32()
        self.targetVP = try reader.readUInt32()
        self.targetSINT = try reader.readUInt32()
        self.ringBufferGpadl = try reader.readUInt32()
        self.downstreamPageOffset = try reader.readUInt32()
    }

    public func write(to writer: inout WireWriter) {
        writer.writeUInt32(self.channelID)
        writer.writeUInt32(self.targetVP)
        writer.writeUInt32(self.targetSINT)
        writer.writeUInt32(self.ringBufferGpadl)
        writer.writeUInt32(self.downstreamPageOffset)
    }
}

/// CLOSE_RESERVED_CHANNEL (19), guest → host, accepted even while disconnected (04 §3.16).
/// 20 bytes; answered by ``CloseReservedResponse``.
public struct CloseReservedChannel: Hashable, Sendable {
    public static let wireSize = 20
    public var channelID: UInt32
    public var targetVP: UInt32
    public var targetSINT: UInt32

    public init(channelID: UInt32, targetVP: UInt32, targetSINT: UInt32) {
        self.channelID = channelID
        self.targetVP = targetVP
        self.targetSINT = targetSINT
    }

    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize - 8)
        self.channelID = try reader.readUInt32()
        self.targetVP = try reader.readUInt32()
        self.targetSINT = try reader.readUInt32()
    }

    public func write(to writer: inout WireWriter) {
        writer.writeUInt32(self.channelID)
        writer.writeUInt32(self.targetVP)
        writer.writeUInt32(self.targetSINT)
    }
}
