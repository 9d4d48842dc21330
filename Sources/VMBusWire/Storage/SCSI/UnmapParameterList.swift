/// One UNMAP block descriptor (SBC): LBA @0–7, block count @8–11, 4 reserved.
public struct UnmapBlockDescriptor: Hashable, Sendable {
    /// Size of a descriptor.
    public static let wireSize = 16

    /// The first logical block to unmap.
    public var lba: UInt64
    /// Logical blocks to unmap from ``lba`` on.
    public var blockCount: UInt32

    /// A descriptor of `blockCount` blocks from `lba`.
    public init(lba: UInt64, blockCount: UInt32) {
        self.lba = lba
        self.blockCount = blockCount
    }
}

/// The UNMAP parameter list (SBC), the data buffer of an UNMAP command.
///
/// ```
/// 0–1  data length = n − 2
/// 2–3  block descriptor data length = n − 8 (a multiple of 16)
/// 4–7  reserved
/// 8…   block descriptors
/// ```
///
/// Linux sends one descriptor (24 bytes). Reading checks both lengths against each other and
/// the input, as OpenVMM does, and ignores bytes after the descriptors (the buffer may be
/// larger than the list).
public struct UnmapParameterList: Hashable, Sendable {
    /// Bytes before the descriptors: the two lengths and 4 reserved bytes.
    public static let headerSize = 8

    /// The ranges to unmap, in list order.
    public var descriptors: [UnmapBlockDescriptor]

    /// A list of `descriptors`; the lengths are computed when it is encoded.
    public init(descriptors: [UnmapBlockDescriptor]) {
        self.descriptors = descriptors
    }

    /// - Throws: ``WireError/truncated(needed:available:)`` when the header or the
    ///   descriptors it announces are not all there; ``WireError/invalidField(name:value:)``
    ///   when the descriptor length is not a multiple of 16 or the data length is not 6 more.
    public init(parsing bytes: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(bytes)
        try reader.require(Self.headerSize)
        let dataLength = try reader.readBigEndianUInt16()
        let descriptorLength = try reader.readBigEndianUInt16()
        try reader.skip(4)
        guard descriptorLength % UInt16(UnmapBlockDescriptor.wireSize) == 0 else {
            throw WireError.invalidField(name: "UNMAP block descriptor data length", value: UInt64(descriptorLength))
        }
        guard UInt32(dataLength) == UInt32(descriptorLength) + 6 else {
            throw WireError.invalidField(name: "UNMAP data length", value: UInt64(dataLength))
        }
        // Checked against the input before anything is allocated.
        try reader.require(Int(descriptorLength))
        let count = Int(descriptorLength) / UnmapBlockDescriptor.wireSize
        var descriptors: [UnmapBlockDescriptor] = []
        descriptors.reserveCapacity(count)
        for _ in 0..<count {
            let lba = try reader.readBigEndianUInt64()
            let blocks = try reader.readBigEndianUInt32()
            try reader.skip(4)
            descriptors.append(UnmapBlockDescriptor(lba: lba, blockCount: blocks))
        }
        self.descriptors = descriptors
    }

    /// The list. At most 4095 descriptors fit its 16-bit lengths; more are cut.
    public func encode() -> [UInt8] {
        let kept = self.descriptors.prefix((Int(UInt16.max) - 6) / UnmapBlockDescriptor.wireSize)
        let descriptorBytes = kept.count * UnmapBlockDescriptor.wireSize
        var writer = WireWriter(capacity: Self.headerSize + descriptorBytes)
        writer.writeBigEndianUInt16(UInt16(descriptorBytes + 6))
        writer.writeBigEndianUInt16(UInt16(descriptorBytes))
        writer.writeZeros(4)
        for descriptor in kept {
            writer.writeBigEndianUInt64(descriptor.lba)
            writer.writeBigEndianUInt32(descriptor.blockCount)
            writer.writeZeros(4)
        }
        return writer.bytes
    }
}
