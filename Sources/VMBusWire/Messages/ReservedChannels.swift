/// OPEN_RESERVED_CHANNEL (18), guest → host, 4.0+: open a channel that survives a guest
/// disconnect (kernel debuggers, crash paths; Windows and OpenVMM only) (04 §3.15). 28 bytes.
public struct OpenReservedChannel: Hashable, Sendable {
    /// Size on the wire, the 8-byte header included.
    public static let wireSize = 28
    /// The reserved channel to open, as the guest numbers it.
    public var channelID: UInt32
    /// The VP the host's messages for this channel go to.
    public var targetVP: UInt32
    /// The SINT the host's messages for this channel go to.
    public var targetSINT: UInt32
    /// The GPADL covering both rings.
    public var ringBufferGpadl: UInt32
    /// Page index inside the GPADL where the host → guest ring starts.
    public var downstreamPageOffset: UInt32

    /// A request to open reserved channel `channelID`.
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

    /// Reads the body after the 8-byte header.
    /// - Throws: ``WireError/truncated(needed:available:)`` below 20 bytes.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize - 8)
        self.channelID = try reader.readUInt32()
        self.targetVP = try reader.readUInt32()
        self.targetSINT = try reader.readUInt32()
        self.ringBufferGpadl = try reader.readUInt32()
        self.downstreamPageOffset = try reader.readUInt32()
    }

    /// Writes the body after the 8-byte header (20 bytes).
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
    /// Size on the wire, the 8-byte header included.
    public static let wireSize = 20
    /// The reserved channel to close.
    public var channelID: UInt32
    /// The VP the response goes to.
    public var targetVP: UInt32
    /// The SINT the response goes to.
    public var targetSINT: UInt32

    /// A request to close reserved channel `channelID`.
    public init(channelID: UInt32, targetVP: UInt32, targetSINT: UInt32) {
        self.channelID = channelID
        self.targetVP = targetVP
        self.targetSINT = targetSINT
    }

    /// Reads the body after the 8-byte header.
    /// - Throws: ``WireError/truncated(needed:available:)`` below 12 bytes.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize - 8)
        self.channelID = try reader.readUInt32()
        self.targetVP = try reader.readUInt32()
        self.targetSINT = try reader.readUInt32()
    }

    /// Writes the body after the 8-byte header (12 bytes).
    public func write(to writer: inout WireWriter) {
        writer.writeUInt32(self.channelID)
        writer.writeUInt32(self.targetVP)
        writer.writeUInt32(self.targetSINT)
    }
}
