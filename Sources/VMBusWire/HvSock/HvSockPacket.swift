/// An hvsock data packet's payload: a DATA pipe header and `data_size` bytes (07 §4).
///
/// A `data_size` of 0 is a FIN: the peer will send no more.
public struct HvSockData: Hashable, Sendable {
    /// The bytes carried (empty for a FIN).
    public var data: ArraySlice<UInt8>

    public init(data: ArraySlice<UInt8>) { self.data = data }

    /// Whether this is a FIN.
    public var isFIN: Bool { self.data.isEmpty }

    /// Parses the payload of an in-band ring packet (07 §4.2): a DATA pipe header whose
    /// `data_size` fits the payload and is at most 16384. The payload's padding after the data
    /// is allowed.
    public init(payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        let header = try PipeHeader(from: &reader)
        guard header.type == .data else {
            throw WireError.invalidField(name: "hvsock pipe packet type", value: UInt64(header.type.rawValue))
        }
        try WireError.check("hvsock data_size", header.length, limit: HvSock.mtu)
        self.data = try reader.readBytes(Int(header.length))
    }

    /// The in-band ring packet (descriptor included) carrying `data`: flags 0, transaction id 0,
    /// padded to 8 bytes.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` above 16384 bytes.
    public static func packet<C: Collection>(_ data: C) throws(WireError) -> [UInt8] where C.Element == UInt8 {
        try WireError.check("hvsock data_size", data.count, limit: HvSock.mtu)
        var writer = WireWriter(capacity: PipeHeader.wireSize + data.count)
        PipeHeader(type: .data, length: UInt32(data.count)).write(to: &writer)
        writer.writeBytes(data)
        return try PacketEncoder.inBand(payload: writer.bytes)
    }

    /// The FIN packet: a DATA packet with no bytes (32 ring bytes with its trailer).
    public static func finPacket() -> [UInt8] {
        // An empty payload is always within every limit.
        (try? Self.packet([UInt8]())) ?? []
    }
}
