/// A ring packet, parsed (03).
///
/// The input of ``parse(_:strict:)-(ArraySlice<UInt8>,_)`` is exactly the `len8 × 8` bytes of
/// one packet as copied out of a ring, descriptor first, trailer excluded. Payloads are slices
/// of it, never copies.
public enum VMBusPacket: Hashable, Sendable {
    /// Type 6: the payload starts at `offset8 × 8` (right after the descriptor when it is 2).
    case inBand(PacketDescriptor, payload: ArraySlice<UInt8>)
    /// Type 0xB: the answer to a request, carrying its transaction id.
    case completion(PacketDescriptor, payload: ArraySlice<UInt8>)
    /// Type 9: guest buffers by page number, then a payload.
    case gpaDirect(GpaDirectPacket)
    /// Type 7: ranges of a transfer page set, then a payload.
    case transferPages(TransferPagePacket)
    /// Any other type. `body` is everything after the descriptor. A guest may hand such a
    /// packet to its driver, as Linux does; a strict reader rejects it (`strict: true`, or
    /// ``PacketDescriptor/validateStrictly()``).
    case other(PacketDescriptor, body: ArraySlice<UInt8>)

    /// The packet's descriptor.
    public var descriptor: PacketDescriptor {
        switch self {
        case .inBand(let d, _), .completion(let d, _), .other(let d, _): return d
        case .gpaDirect(let p): return p.descriptor
        case .transferPages(let p): return p.descriptor
        }
    }

    // MARK: Parsing

    /// Parses one packet.
    /// - Parameters:
    ///   - bytes: the packet's `len8 × 8` bytes.
    ///   - strict: also apply OpenVMM's host-side checks (02 §9.3,
    ///     ``PacketDescriptor/validateStrictly()``): only types 6, 7, 9 and 0xB, no flag bit but
    ///     bit 0. Off by default so a guest can tolerate unknown types.
    /// - Throws: ``WireError/truncated(needed:available:)`` if fewer than `len8 × 8` bytes are
    ///   given; ``WireError/trailingBytes(count:)`` if more; ``WireError/invalidField(name:value:)``
    ///   for `offset8 < 2`, `len8 < offset8`, an extension that does not fit before
    ///   `offset8 × 8`, a range count of 0 or one the area cannot hold, a bad range;
    ///   ``WireError/limitExceeded(name:value:limit:)`` for a range above
    ///   ``GpaRange/maximumPageCount`` PFNs; under `strict`, ``WireError/unknownType(_:)``.
    public static func parse(_ bytes: ArraySlice<UInt8>, strict: Bool = false) throws(WireError) -> VMBusPacket {
        var reader = WireReader(bytes)
        let descriptor = try PacketDescriptor(from: &reader)
        let afterDescriptor = descriptor.totalLength - PacketDescriptor.wireSize
        try reader.require(afterDescriptor)
        if reader.remaining > afterDescriptor { throw WireError.trailingBytes(count: reader.remaining - afterDescriptor) }
        if strict { try descriptor.validateStrictly() }

        // The descriptor checks make 16 ≤ offset8 × 8 ≤ len8 × 8 = bytes.count.
        let start = bytes.startIndex
        let body = bytes[(start + PacketDescriptor.wireSize)...]
        let area = bytes[(start + PacketDescriptor.wireSize)..<(start + descriptor.payloadOffset)]
        let payload = bytes[(start + descriptor.payloadOffset)...]
        switch descriptor.type {
        case .dataInBand: return .inBand(descriptor, payload: payload)
        case .completion: return .completion(descriptor, payload: payload)
        case .dataUsingGpaDirect:
            return .gpaDirect(try GpaDirectPacket(descriptor: descriptor, area: area, payload: payload))
        case .dataUsingTransferPages:
            return .transferPages(try TransferPagePacket(descriptor: descriptor, area: area, payload: payload))
        default:
            return .other(descriptor, body: body)
        }
    }

    /// Parses a whole array (see ``parse(_:strict:)-(ArraySlice<UInt8>,_)``).
    public static func parse(_ bytes: [UInt8], strict: Bool = false) throws(WireError) -> VMBusPacket {
        try Self.parse(bytes[...], strict: strict)
    }

    // MARK: Encoding

    /// Writes the packet back: the descriptor as it is, the type's extension, zeros up to
    /// `offset8 × 8` (slack in a GPA-direct range area comes back as zeros), then the payload.
    /// Parsing the result gives the same packet. Use ``PacketEncoder`` to build new packets; it
    /// computes `offset8` and `len8`.
    /// - Throws: ``WireError/invalidField(name:value:)`` ("offset8" or "len8") if the
    ///   descriptor's lengths do not match the contents of a hand-built packet.
    public func encode() throws(WireError) -> [UInt8] {
        let descriptor = self.descriptor
        var writer = WireWriter(capacity: descriptor.totalLength)
        descriptor.write(to: &writer)
        switch self {
        case .other(_, let body):
            writer.writeBytes(body)
        case .inBand(_, let payload), .completion(_, let payload):
            try Self.writePayload(payload, of: descriptor, to: &writer)
        case .gpaDirect(let packet):
            try packet.writeArea(to: &writer)
            try Self.writePayload(packet.payload, of: descriptor, to: &writer)
        case .transferPages(let packet):
            try packet.writeArea(to: &writer)
            try Self.writePayload(packet.payload, of: descriptor, to: &writer)
        }
        guard writer.count == descriptor.totalLength else {
            throw WireError.invalidField(name: "len8", value: UInt64(descriptor.len8))
        }
        return writer.bytes
    }

    /// Pads with zeros up to `offset8 × 8`, then writes the payload.
    private static func writePayload(
        _ payload: ArraySlice<UInt8>, of descriptor: PacketDescriptor, to writer: inout WireWriter
    ) throws(WireError) {
        guard writer.count <= descriptor.payloadOffset else {
            throw WireError.invalidField(name: "offset8", value: UInt64(descriptor.offset8))
        }
        writer.writeZeros(descriptor.payloadOffset - writer.count)
        writer.writeBytes(payload)
    }
}
