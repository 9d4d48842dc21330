/// The READ CAPACITY (10) answer (SBC): last LBA @0–3 and block length @4–7, big-endian.
/// A disk with more than 2^32 blocks answers 0xFFFFFFFF, and Linux then asks READ CAPACITY
/// (16).
public struct ReadCapacity10Data: Hashable, Sendable {
    /// Size of the answer.
    public static let wireSize = 8

    /// The last addressable logical block (block count − 1), or 0xFFFFFFFF when it does not fit.
    public var lastLBA: UInt32
    /// Bytes per logical block.
    public var blockLength: UInt32

    /// An answer with these fields.
    public init(lastLBA: UInt32, blockLength: UInt32) {
        self.lastLBA = lastLBA
        self.blockLength = blockLength
    }

    /// The answer for a disk of `blockCount` blocks (≥ 1), the last LBA capped at 0xFFFFFFFF.
    public init(blockCount: UInt64, blockLength: UInt32) {
        self.lastLBA = UInt32(clamping: blockCount &- 1)
        if blockCount == 0 { self.lastLBA = 0 }
        self.blockLength = blockLength
    }

    /// Reads an answer.
    /// - Throws: ``WireError/truncated(needed:available:)`` below 8 bytes.
    public init(parsing bytes: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(bytes)
        try reader.require(Self.wireSize)
        self.lastLBA = try reader.readBigEndianUInt32()
        self.blockLength = try reader.readBigEndianUInt32()
    }

    /// The 8 bytes, big-endian.
    public func encode() -> [UInt8] {
        var writer = WireWriter(capacity: Self.wireSize)
        writer.writeBigEndianUInt32(self.lastLBA)
        writer.writeBigEndianUInt32(self.blockLength)
        return writer.bytes
    }
}

/// The READ CAPACITY (16) answer (SBC), 32 bytes; Linux asks for it first from an SPC-3 disk.
///
/// ```
/// 0–7    last LBA
/// 8–11   block length
/// 12     bits 1–3 P_TYPE, bit 0 PROT_EN
/// 13     bits 4–7 P_I_EXPONENT, bits 0–3 log2(physical / logical block)
/// 14–15  bit 15 LBPME (thin: UNMAP may be used), bit 14 LBPRZ, bits 0–13 lowest aligned LBA
/// 16–31  reserved
/// ```
public struct ReadCapacity16Data: Hashable, Sendable {
    /// Size of the answer.
    public static let wireSize = 32
    static let lbpmeFlag: UInt16 = 0x8000
    static let lbprzFlag: UInt16 = 0x4000

    /// The last addressable logical block (block count − 1).
    public var lastLBA: UInt64
    /// Bytes per logical block.
    public var blockLength: UInt32
    /// Byte 12 as sent.
    public var protection: UInt8
    /// Byte 13 bits 0–3.
    public var logicalBlocksPerPhysicalBlockExponent: UInt8
    /// Byte 13 bits 4–7.
    public var protectionIntervalExponent: UInt8
    /// LBPME: Linux uses UNMAP only with it (and VPD 0xB2 LBPU, 0xB0 counts).
    public var provisioningManagementEnabled: Bool
    /// LBPRZ: unmapped blocks read as zeros.
    public var provisioningReadsZeros: Bool
    /// The first logical block aligned to a physical block (14 bits).
    public var lowestAlignedLBA: UInt16

    /// An answer; no protection, and one logical block per physical block unless told.
    public init(
        lastLBA: UInt64, blockLength: UInt32, logicalBlocksPerPhysicalBlockExponent: UInt8 = 0,
        provisioningManagementEnabled: Bool = false, provisioningReadsZeros: Bool = false, lowestAlignedLBA: UInt16 = 0
    ) {
        self.lastLBA = lastLBA
        self.blockLength = blockLength
        self.protection = 0
        self.logicalBlocksPerPhysicalBlockExponent = logicalBlocksPerPhysicalBlockExponent & 0x0F
        self.protectionIntervalExponent = 0
        self.provisioningManagementEnabled = provisioningManagementEnabled
        self.provisioningReadsZeros = provisioningReadsZeros
        self.lowestAlignedLBA = lowestAlignedLBA & 0x3FFF
    }

    /// - Throws: ``WireError/truncated(needed:available:)`` below 32 bytes.
    public init(parsing bytes: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(bytes)
        try reader.require(Self.wireSize)
        self.lastLBA = try reader.readBigEndianUInt64()
        self.blockLength = try reader.readBigEndianUInt32()
        self.protection = try reader.readUInt8()
        let byte13 = try reader.readUInt8()
        self.logicalBlocksPerPhysicalBlockExponent = byte13 & 0x0F
        self.protectionIntervalExponent = byte13 >> 4
        let word = try reader.readBigEndianUInt16()
        self.provisioningManagementEnabled = word & Self.lbpmeFlag != 0
        self.provisioningReadsZeros = word & Self.lbprzFlag != 0
        self.lowestAlignedLBA = word & 0x3FFF
    }

    /// The 32 bytes, big-endian, reserved bytes zero.
    public func encode() -> [UInt8] {
        var writer = WireWriter(capacity: Self.wireSize)
        writer.writeBigEndianUInt64(self.lastLBA)
        writer.writeBigEndianUInt32(self.blockLength)
        writer.writeUInt8(self.protection)
        writer.writeUInt8(self.protectionIntervalExponent << 4 | self.logicalBlocksPerPhysicalBlockExponent & 0x0F)
        writer.writeBigEndianUInt16(
            (self.provisioningManagementEnabled ? Self.lbpmeFlag : 0) | (self.provisioningReadsZeros ? Self.lbprzFlag : 0)
                | self.lowestAlignedLBA & 0x3FFF)
        writer.writeZeros(16)
        return writer.bytes
    }
}
