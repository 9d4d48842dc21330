/// An hvsock data packet's payload: a DATA pipe header and `data_size` bytes (07 §4).
///
/// A `data_size` of 0 is a FIN: the peer will send no more. Bytes after the data are the
/// sender's padding to 8 and are ignored. The pipe type must be DATA: Linux never looks at it,
/// but OpenVMM treats any other type from the peer as a fatal pipe error (07 §6), and PARTIAL
/// only ever exists inside a reader's own ring view.
public struct HvSockData: Hashable, Sendable {
    /// The bytes carried (empty for a FIN), a slice of the parsed payload.
    public var data: ArraySlice<UInt8>

    /// Wraps data to send or compare.
    public init(data: ArraySlice<UInt8>) { self.data = data }

    /// Whether this is a FIN (`data_size` 0).
    public var isFIN: Bool { self.data.isEmpty }

    /// Parses the payload of an in-band ring packet (descriptor stripped): a DATA pipe header
    /// whose `data_size` is at most 16384 and fits the payload.
    /// - Throws: ``WireError/truncated(needed:available:)`` for a short header or data;
    ///   ``WireError/invalidField(name:value:)`` for a pipe type other than DATA;
    ///   ``WireError/limitExceeded(name:value:limit:)`` for `data_size` above 16384.
    public init(payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        let header = try PipeHeader(from: &reader)
        guard header.type == .data else {
            throw WireError.invalidField(name: "hvsock pipe packet type", value: UInt64(header.type.rawValue))
        }
        let size = try Self.checkedDataSize(header.length)
        self.data = try reader.readBytes(size)
    }

    /// Parses a payload with Linux's receive validation (07 §4.2, `hvs_update_recv_data`) on top
    /// of ``init(payload:)``: the packet (`len8 × 8`) is at least 24 bytes and
    /// `data_size` ≤ packet length − 24.
    /// - Parameters:
    ///   - payload: the packet's payload (from `offset8 × 8` to `len8 × 8`).
    ///   - packetLength: the packet's length from its descriptor, `len8 × 8`.
    /// - Throws: as ``validate(dataSize:packetLength:)`` and ``init(payload:)``.
    public init(payload: ArraySlice<UInt8>, packetLength: Int) throws(WireError) {
        var reader = WireReader(payload)
        let header = try PipeHeader(from: &reader)
        _ = try Self.validate(dataSize: header.length, packetLength: packetLength)
        try self.init(payload: payload)
    }

    /// Linux's receive check of one packet (07 §4.2): the packet holds at least the 24-byte
    /// header, and `data_size` is at most 16384 and at most packet length − 24.
    /// - Parameters:
    ///   - dataSize: the pipe header's `data_size`, as the peer wrote it.
    ///   - packetLength: the packet's length from its descriptor, `len8 × 8`.
    /// - Returns: `dataSize` as an `Int`.
    /// - Throws: ``WireError/truncated(needed:available:)`` for a packet shorter than 24 bytes
    ///   or data longer than the packet; ``WireError/limitExceeded(name:value:limit:)`` for
    ///   `data_size` above 16384. Linux turns each into EIO.
    @discardableResult
    public static func validate(dataSize: UInt32, packetLength: Int) throws(WireError) -> Int {
        guard packetLength >= HvSock.headerLength else {
            throw WireError.truncated(needed: HvSock.headerLength, available: max(packetLength, 0))
        }
        let size = try Self.checkedDataSize(dataSize)
        let room = packetLength - HvSock.headerLength
        guard size <= room else { throw WireError.truncated(needed: size, available: room) }
        return size
    }

    /// The payload of a DATA pipe packet carrying `data`: pipe header {DATA, count} and the
    /// bytes, unpadded (the packet encoder pads to 8).
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` above 16384 bytes.
    public static func payload<C: Collection>(_ data: C) throws(WireError) -> [UInt8] where C.Element == UInt8 {
        try WireError.check("hvsock data_size", data.count, limit: HvSock.mtu)
        var writer = WireWriter(capacity: PipeHeader.wireSize + data.count)
        // Exact: at most 16384.
        PipeHeader(type: .data, length: UInt32(data.count)).write(to: &writer)
        writer.writeBytes(data)
        return writer.bytes
    }

    /// The payload of a FIN: a DATA pipe header with `data_size` 0.
    public static let finPayload: [UInt8] = [1, 0, 0, 0, 0, 0, 0, 0]

    /// The in-band ring packet (descriptor included) carrying `data`: flags 0, transaction id 0,
    /// padded to 8 bytes (07 §4).
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` above 16384 bytes.
    public static func packet<C: Collection>(_ data: C) throws(WireError) -> [UInt8] where C.Element == UInt8 {
        try PacketEncoder.inBand(payload: try Self.payload(data))
    }

    /// The FIN packet: a DATA packet with no bytes (32 ring bytes with its trailer).
    public static func finPacket() -> [UInt8] {
        // An 8-byte payload is within every packet limit, so this never takes the fallback.
        (try? PacketEncoder.inBand(payload: Self.finPayload)) ?? []
    }

    /// A peer's `data_size` as an `Int`, checked against ``HvSock/mtu``.
    private static func checkedDataSize(_ dataSize: UInt32) throws(WireError) -> Int {
        guard let size = Int(exactly: dataSize), size <= HvSock.mtu else {
            throw WireError.limitExceeded(name: "hvsock data_size", value: UInt64(dataSize), limit: UInt64(HvSock.mtu))
        }
        return size
    }
}
