/// A pipe packet type (07 §6, 06 §1.1). An open set.
public struct PipePacketType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// 1 DATA: `length` payload bytes follow. The only type ICs and hvsock send.
    public static let data = Self(rawValue: 1)
    /// 2 PARTIAL: only inside a reader's own ring view (a partly consumed DATA packet).
    public static let partial = Self(rawValue: 2)
    /// 3 SETUP_GPA_DIRECT.
    public static let setupGpaDirect = Self(rawValue: 3)
    /// 4 TEARDOWN_GPA_DIRECT.
    public static let teardownGpaDirect = Self(rawValue: 4)
    /// 5 INDICATION_COMPLETE.
    public static let indicationComplete = Self(rawValue: 5)
}

/// The 8-byte header at the start of every pipe packet's payload: IC messages (06 §1.1) and
/// hvsock data (07 §4).
public struct PipeHeader: Hashable, Sendable {
    public static let wireSize = 8
    /// Linux `flags` / OpenVMM `packet_type`.
    public var type: PipePacketType
    /// Linux `msgsize` / hvsock `data_size`: bytes following the header.
    public var length: UInt32

    public init(type: PipePacketType = .data, length: UInt32) {
        self.type = type
        self.length = length
    }

    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize)
        self.type = PipePacketType(rawValue: try reader.readUInt32())
        self.length = try reader.readUInt32()
    }

    public func write(to writer: inout WireWriter) {
        writer.writeUInt32(self.type.rawValue)
        writer.writeUInt32(self.length)
    }
}
