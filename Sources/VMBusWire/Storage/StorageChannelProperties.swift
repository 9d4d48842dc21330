/// The QUERY_PROPERTIES answer (`vmstorage_channel_properties`, 10 §2.4): 24 bytes at packet
/// offset 12.
///
/// ```
/// 12  4  reserved
/// 16  2  max_channel_cnt      sub-channels the host will offer at most
/// 18  2  reserved
/// 20  4  flags                StoragePropertyFlags
/// 24  4  max_transfer_bytes   Linux: round down to 4 KiB, / 512 = max sectors
/// 28  8  reserved
/// ```
public struct StorageChannelProperties: Hashable, Sendable {
    /// Size of the block (the body of the packet).
    public static let wireSize = 24

    /// The most *sub*-channels (not counting the primary) a guest may ask for.
    public var maximumSubChannelCount: UInt16
    /// Property flags: whether multi-channel is supported.
    public var flags: StoragePropertyFlags
    /// Largest transfer of one request. Advertise a non-zero multiple of 4096 (10 §7).
    public var maximumTransferBytes: UInt32

    /// Properties with these fields.
    public init(maximumSubChannelCount: UInt16, flags: StoragePropertyFlags, maximumTransferBytes: UInt32) {
        self.maximumSubChannelCount = maximumSubChannelCount
        self.flags = flags
        self.maximumTransferBytes = maximumTransferBytes
    }

    /// What OpenVMM answers at `version` with `subChannels` configured (10 §3): sub-channels
    /// and the multi-channel flag only from 5.1 on; 256 KiB transfers.
    public static func openVMM(version: StorageVersion, subChannels: UInt16) -> StorageChannelProperties {
        let multi = version >= .win8
        return StorageChannelProperties(
            maximumSubChannelCount: multi ? subChannels : 0, flags: multi ? .supportsMultiChannel : [],
            maximumTransferBytes: StorageProtocol.openVMMMaximumTransferBytes)
    }

    /// - Throws: ``WireError/truncated(needed:available:)`` if fewer than 24 bytes are left.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize)
        try reader.skip(4)
        self.maximumSubChannelCount = try reader.readUInt16()
        try reader.skip(2)
        self.flags = StoragePropertyFlags(rawValue: try reader.readUInt32())
        self.maximumTransferBytes = try reader.readUInt32()
        try reader.skip(8)
    }

    /// Writes the 24 bytes, reserved fields zero.
    public func write(to writer: inout WireWriter) {
        writer.writeUInt32(0)
        writer.writeUInt16(self.maximumSubChannelCount)
        writer.writeUInt16(0)
        writer.writeUInt32(self.flags.rawValue)
        writer.writeUInt32(self.maximumTransferBytes)
        writer.writeUInt64(0)
    }
}

/// The FCHBA_DATA block (`vmfc_wwn_packet`, 10 §2.4): Fibre Channel world-wide names, 36
/// bytes at packet offset 12. Each WWN is 8 bytes in wire order, kept as a big-endian u64
/// (Linux's `wwn_to_u64`).
public struct FibreChannelWWN: Hashable, Sendable {
    /// Size of the block.
    public static let wireSize = 36

    /// Whether the primary port is the active one.
    public var primaryActive: Bool
    /// The primary port's world-wide name.
    public var primaryPortWWN: UInt64
    /// The primary node's world-wide name.
    public var primaryNodeWWN: UInt64
    /// The secondary port's world-wide name (0: none).
    public var secondaryPortWWN: UInt64
    /// The secondary node's world-wide name (0: none).
    public var secondaryNodeWWN: UInt64

    /// A WWN block; no secondary names by default.
    public init(
        primaryActive: Bool, primaryPortWWN: UInt64, primaryNodeWWN: UInt64, secondaryPortWWN: UInt64 = 0,
        secondaryNodeWWN: UInt64 = 0
    ) {
        self.primaryActive = primaryActive
        self.primaryPortWWN = primaryPortWWN
        self.primaryNodeWWN = primaryNodeWWN
        self.secondaryPortWWN = secondaryPortWWN
        self.secondaryNodeWWN = secondaryNodeWWN
    }

    /// - Throws: ``WireError/truncated(needed:available:)`` if fewer than 36 bytes are left.
    ///   Any non-zero `primary_active` byte reads as true.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize)
        self.primaryActive = try reader.readUInt8() != 0
        try reader.skip(3)
        self.primaryPortWWN = try reader.readBigEndianUInt64()
        self.primaryNodeWWN = try reader.readBigEndianUInt64()
        self.secondaryPortWWN = try reader.readBigEndianUInt64()
        self.secondaryNodeWWN = try reader.readBigEndianUInt64()
    }

    /// Writes the 36 bytes, each WWN in wire order.
    public func write(to writer: inout WireWriter) {
        writer.writeUInt8(self.primaryActive ? 1 : 0)
        writer.writeZeros(3)
        writer.writeBigEndianUInt64(self.primaryPortWWN)
        writer.writeBigEndianUInt64(self.primaryNodeWWN)
        writer.writeBigEndianUInt64(self.secondaryPortWWN)
        writer.writeBigEndianUInt64(self.secondaryNodeWWN)
    }
}
