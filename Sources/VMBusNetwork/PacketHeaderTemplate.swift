import VMBusWire

/// The RNDIS PACKET header both ends put before a frame with no per-packet info.
enum PacketHeaderTemplate {
    static let template: [UInt8] = {
        var writer = WireWriter(capacity: RNDISPacketHeader.size)
        RNDISPacketHeader.write(frameLength: 0, to: &writer)
        return writer.bytes
    }()

    /// Sets the message length (offset 4) and data length (offset 12).
    static func patch(_ header: inout [UInt8], frameLength: Int) {
        Self.store(UInt32(RNDISPacketHeader.size + frameLength), in: &header, at: 4)
        Self.store(UInt32(frameLength), in: &header, at: 12)
    }

    /// A PACKET header with one PPI (60 bytes): the checksum or LSO request of a frame.
    static let withPPI: [UInt8] = {
        var writer = WireWriter(capacity: RNDISPacketHeader.size + PerPacketInfo.wireSize)
        RNDISPacketHeader.write(frameLength: 0, ppis: [PerPacketInfo(type: .checksum, value: 0)], to: &writer)
        return writer.bytes
    }()

    /// Sets ``withPPI``'s lengths and its PPI's type (offset 48) and value (offset 56).
    static func patch(_ header: inout [UInt8], frameLength: Int, ppi: PerPacketInfo) {
        Self.store(UInt32(header.count + frameLength), in: &header, at: 4)
        Self.store(UInt32(frameLength), in: &header, at: 12)
        Self.store(ppi.type.rawValue, in: &header, at: RNDISPacketHeader.size + 4)
        Self.store(ppi.value, in: &header, at: RNDISPacketHeader.size + 12)
    }

    static func store(_ value: UInt32, in bytes: inout [UInt8], at offset: Int) {
        for byte in 0..<4 { bytes[offset + byte] = UInt8(truncatingIfNeeded: value >> (8 * byte)) }
    }
}
