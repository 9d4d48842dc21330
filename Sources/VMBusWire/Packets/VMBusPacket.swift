/// A GPA-direct packet (type 9, 03 §4): guest buffers described by page numbers, then an
/// in-band payload (e.g. a SCSI request).
public struct GpaDirectPacket: Hashable, Sendable {
    /// Descriptor + reserved u32 + range_cnt u32.
    public static let headerSize = 24
    /// Linux `MAX_PAGE_BUFFER_COUNT` / the multipage array size.
    public static let linuxPageArraySize = 32

    public var descriptor: PacketDescriptor
    /// Zero when sent; receivers may see garbage (OpenVMM), so it is kept as read.
    public var reserved: UInt32
    /// At least one range.
    public var ranges: [GpaRange]
    /// The in-band payload after the range area (with the sender's padding).
    public var payload: ArraySlice<UInt8>

    /// Whether the range area is larger than its ranges, as in Linux's multipage flavour, which
    /// always reserves 32 PFN slots.
    public var hasPaddedRangeArea: Bool {
        self.descriptor.payloadOffset > Self.headerSize + self.ranges.reduce(0) { $0 + $1.wireSize }
    }
}

/// A transfer-page packet (type 7, 03 §5): ranges inside a transfer page set the receiver
/// registered earlier (netvsc receive buffer, set id 0xCAFE), then an in-band payload.
public struct TransferPagePacket: Hashable, Sendable {
    /// Descriptor + set id, sender_owns_set, reserved, range_cnt.
    public static let headerSize = 24
    /// `NETVSC_RECEIVE_BUFFER_ID`.
    public static let netvscReceiveBufferID: UInt16 = 0xCAFE

    public var descriptor: PacketDescriptor
    public var transferPageSetID: UInt16
    /// Linux's `sender_owns_set`; OpenVMM treats bytes 18–19 as reserved.
    public var senderOwnsSet: UInt8
    public var reserved: UInt8
    public var ranges: [TransferPageRange]
    /// The device message after the range list.
    public var payload: ArraySlice<UInt8>
}

/// A ring packet, parsed (03). The input is exactly the `len8 × 8` bytes of one packet as
/// copied out of a ring; payloads are slices of it (no copy).
public enum VMBusPacket: Hashable, Sendable {
    /// Type 6: payload right after the descriptor (or after `offset8 × 8` bytes).
    case inBand(PacketDescriptor, payload: ArraySlice<UInt8>)
    /// Type 0xB: the answer to a request, same transaction id.
    case completion(PacketDescriptor, payload: ArraySlice<UInt8>)
    /// Type 9.
    case gpaDirect(GpaDirectPacket)
    /// Type 7.
    case transferPages(TransferPagePacket)
    /// Any other type: a guest may pass it to its driver (as Linux does); a strict host
    /// rejects it with ``PacketDescriptor/validateStrictly()``. `body` is everything after the
    /// descriptor.
    case other(PacketDescriptor, body: ArraySlice<UInt8>)

    /// The packet's descriptor.
    public var descriptor: PacketDescriptor {
        switch self {
        case .inBand(let d, _), .completion(let d, _), .other(let d, _): return d
        case .gpaDirect(let p): return p.descriptor
        case .transferPages(let p): return p.descriptor
        }
    }

    /// Parses one packet.
    /// - Throws: ``WireError/truncated(needed:available:)`` if fewer than `len8 × 8` bytes are
    ///   given, ``WireError/trailingBytes(count:)`` if more, ``WireError/invalidField(name:value:)``
    ///   for `offset8 < 2`, `len8 < offset8`, a range count of 0 or one the range area cannot
    ///   hold, a bad range, or ranges running past `offset8 × 8`.
    public static func parse(_ bytes: ArraySlice<UInt8>) throws(WireError) -> VMBusPacket {
        var reader = WireReader(bytes)
        let descriptor = try PacketDescriptor(from: &reader)
        guard bytes.count >= descriptor.totalLength else {
            throw WireError.truncated(needed: descriptor.totalLength, available: bytes.count)
        }
        guard bytes.count == descriptor.totalLength else {
            throw WireError.trailingBytes(count: bytes.count - descriptor.totalLength)
        }
        let start = bytes.startIndex
        let payload = bytes[(start + descriptor.payloadOffset)...]
        // The area between the descriptor and the payload: type-specific extension.
        let extensionArea = bytes[(start + PacketDescriptor.wireSize)..<(start + descriptor.payloadOffset)]
        switch descriptor.type {
        case .dataInBand: return .inBand(descriptor, payload: payload)
        case .completion: return .completion(descriptor, payload: payload)
        case .dataUsingGpaDirect:
            return .gpaDirect(try Self.parseGpaDirect(descriptor, extensionArea, payload))
        case .dataUsingTransferPages:
            return .transferPages(try Self.parseTransferPages(descriptor, extensionArea, payload))
        default:
            return .other(descriptor, body: bytes[(start + PacketDescriptor.wireSize)...])
        }
    }

    /// Parses a whole array (see ``parse(_:)-(ArraySlice<UInt8>)``).
    public static func parse(_ bytes: [UInt8]) throws(WireError) -> VMBusPacket {
        try Self.parse(bytes[...])
    }

    private static func parseGpaDirect(
        _ descriptor: PacketDescriptor, _ area: ArraySlice<UInt8>, _ payload: ArraySlice<UInt8>
    ) throws(WireError) -> GpaDirectPacket {
        guard area.count >= GpaDirectPacket.headerSize - PacketDescriptor.wireSize else {
            throw WireError.invalidField(name: "offset8", value: UInt64(descriptor.offset8))
        }
        var reader = WireReader(area)
        let reserved = try reader.readUInt32()
        let count = try reader.readUInt32()
        // Every range takes at least 16 bytes (header + one PFN): bound the count by the area
        // before reserving anything for it.
        guard count >= 1, Int(count) <= reader.remaining / 16 else {
            throw WireError.invalidField(name: "range_cnt", value: UInt64(count))
        }
        var ranges: [GpaRange] = []
        ranges.reserveCapacity(Int(count))
        for _ in 0..<count {
            do {
                ranges.append(try GpaRange(from: &reader))
            } catch .truncated {
                // The ranges ran past offset8 × 8 into the payload.
                throw WireError.invalidField(name: "GPA range extends past offset8", value: UInt64(descriptor.offset8))
            }
        }
        return GpaDirectPacket(descriptor: descriptor, reserved: reserved, ranges: ranges, payload: payload)
    }

    private static func parseTransferPages(
        _ descriptor: PacketDescriptor, _ area: ArraySlice<UInt8>, _ payload: ArraySlice<UInt8>
    ) throws(WireError) -> TransferPagePacket {
        guard area.count >= TransferPagePacket.headerSize - PacketDescriptor.wireSize else {
            throw WireError.invalidField(name: "offset8", value: UInt64(descriptor.offset8))
        }
        var reader = WireReader(area)
        let setID = try reader.readUInt16()
        let owns = try reader.readUInt8()
        let reserved = try reader.readUInt8()
        let count = try reader.readUInt32()
        guard Int(count) <= reader.remaining / 8 else {
            throw WireError.invalidField(name: "range_cnt", value: UInt64(count))
        }
        var ranges: [TransferPageRange] = []
        ranges.reserveCapacity(Int(count))
        for _ in 0..<count {
            ranges.append(TransferPageRange(byteCount: try reader.readUInt32(), byteOffset: try reader.readUInt32()))
        }
        return TransferPagePacket(
            descriptor: descriptor, transferPageSetID: setID, senderOwnsSet: owns, reserved: reserved,
            ranges: ranges, payload: payload)
    }

    /// Writes the packet back: the descriptor as it is, the extension, zeros up to
    /// `offset8 × 8`, then the payload. Parsing the result gives the same packet.
    /// - Throws: ``WireError/invalidField(name:value:)`` if the descriptor's lengths do not
    ///   match its contents (a hand-built packet; use ``PacketEncoder`` to build new ones).
    public func encode() throws(WireError) -> [UInt8] {
        let descriptor = self.descriptor
        var writer = WireWriter(capacity: descriptor.totalLength)
        descriptor.write(to: &writer)
        let payload: ArraySlice<UInt8>
        switch self {
        case .inBand(_, let p), .completion(_, let p):
            payload = p
        case .other(_, let body):
            writer.writeBytes(body)
            payload = []
        case .gpaDirect(let p):
            writer.writeUInt32(p.reserved)
            writer.writeUInt32(UInt32(truncatingIfNeeded: p.ranges.count))
            for range in p.ranges { range.write(to: &writer) }
            payload = p.payload
        case .transferPages(let p):
            writer.writeUInt16(p.transferPageSetID)
            writer.writeUInt8(p.senderOwnsSet)
            writer.writeUInt8(p.reserved)
            writer.writeUInt32(UInt32(truncatingIfNeeded: p.ranges.count))
            for range in p.ranges {
                writer.writeUInt32(range.byteCount)
                writer.writeUInt32(range.byteOffset)
            }
            payload = p.payload
        }
        if case .other = self {} else {
            guard writer.count <= descriptor.payloadOffset else {
                throw WireError.invalidField(name: "offset8", value: UInt64(descriptor.offset8))
            }
            writer.writeZeros(descriptor.payloadOffset - writer.count)
            writer.writeBytes(payload)
        }
        guard writer.count == descriptor.totalLength else {
            throw WireError.invalidField(name: "len8", value: UInt64(descriptor.len8))
        }
        return writer.bytes
    }
}
