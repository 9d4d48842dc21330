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

    /// A PACKET header with a checksum PPI and a packet-id PPI (76 bytes): what a host puts
    /// before a frame, or a fragment of one, with offload state.
    static let withTwoPPIs: [UInt8] = {
        var writer = WireWriter(capacity: RNDISPacketHeader.size + 2 * PerPacketInfo.wireSize)
        let ppis = [PerPacketInfo(type: .checksum, value: 0), PerPacketInfo(type: .packetID, value: 0)]
        RNDISPacketHeader.write(frameLength: 0, ppis: ppis, to: &writer)
        return writer.bytes
    }()

    /// Sets ``withTwoPPIs``'s lengths and its PPIs' values (offsets 56 and 72).
    static func patch(_ header: inout [UInt8], frameLength: Int, values: (UInt32, UInt32)) {
        Self.store(UInt32(header.count + frameLength), in: &header, at: 4)
        Self.store(UInt32(frameLength), in: &header, at: 12)
        Self.store(values.0, in: &header, at: RNDISPacketHeader.size + 12)
        Self.store(values.1, in: &header, at: RNDISPacketHeader.size + PerPacketInfo.wireSize + 12)
    }

    static func store(_ value: UInt32, in bytes: inout [UInt8], at offset: Int) {
        for byte in 0..<4 { bytes[offset + byte] = UInt8(truncatingIfNeeded: value >> (8 * byte)) }
    }
}
