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

    static func store(_ value: UInt32, in bytes: inout [UInt8], at offset: Int) {
        for byte in 0..<4 { bytes[offset + byte] = UInt8(truncatingIfNeeded: value >> (8 * byte)) }
    }
}
