/// A GPA-direct packet (type 9, 03 §4): guest buffers described by page numbers, then an
/// in-band payload such as a SCSI request. Linux sends every one with completion requested;
/// hosts never send them.
///
/// ```
/// offset 0   descriptor (16)
/// offset 16  reserved   u32     zero when sent; receivers may see garbage (OpenVMM)
/// offset 20  range_cnt  u32     ≥ 1
/// offset 24  ranges     range_cnt gpa_range records back to back (GpaRange)
///            [slack]            up to offset8 × 8, tolerated (see RangeAreaLayout)
/// offset8×8  payload
/// ```
public struct GpaDirectPacket: Hashable, Sendable {
    /// Descriptor + reserved u32 + range_cnt u32 (Linux's "0x18").
    public static let headerSize = 24
    /// Linux `MAX_PAGE_BUFFER_COUNT` and `MAX_MULTIPAGE_BUFFER_COUNT`: 32 page buffers, or 32
    /// PFNs in the multipage array.
    public static let linuxPageArraySize = 32
    /// Linux `MAX_PAGE_BUFFER_PACKET`: 0x18 + 32 × 16 = 536 descriptor bytes.
    public static let maximumPageBufferAreaEnd = headerSize + linuxPageArraySize * 16
    /// Linux `MAX_MULTIPAGE_BUFFER_PACKET`: 0x18 + 264 = 288 descriptor bytes, the size of the
    /// `vmbus_channel_packet_multipage_buffer` struct with all 32 PFN slots.
    public static let maximumMultipageAreaEnd = headerSize + GpaRange.wireSize(pageCount: linuxPageArraySize)

    /// How the range area between byte 24 and `offset8 × 8` was laid out by the sender.
    public enum RangeAreaLayout: Hashable, Sendable {
        /// The ranges end exactly at `offset8 × 8`: Linux's MPB and page-buffer forms, and its
        /// multipage form, which trims the unused slots of its 32-PFN array before sending.
        case compact
        /// One range in an untrimmed 32-slot multipage array: a 288-byte descriptor area
        /// (`MAX_MULTIPAGE_BUFFER_PACKET`) with the unused PFN slots as slack.
        case fullMultipageArray
        /// Any other gap of `slackBytes` between the last range and `offset8 × 8`.
        case padded(slackBytes: Int)
    }

    /// The descriptor, type 9.
    public var descriptor: PacketDescriptor
    /// Bytes 16–19, kept as read: OpenVMM notes receivers may see garbage there.
    public var reserved: UInt32
    /// The ranges, at least one, each valid (``GpaRange``).
    public var ranges: [GpaRange]
    /// The in-band payload after `offset8 × 8`, the sender's zero padding included. A slice of
    /// the parsed bytes, not a copy.
    public var payload: ArraySlice<UInt8>

    /// A packet from its parts, unchecked (``VMBusPacket/encode()`` checks the lengths).
    public init(descriptor: PacketDescriptor, reserved: UInt32 = 0, ranges: [GpaRange], payload: ArraySlice<UInt8>) {
        self.descriptor = descriptor
        self.reserved = reserved
        self.ranges = ranges
        self.payload = payload
    }

    /// Bytes the ranges take, without any slack.
    public var rangesWireSize: Int { self.ranges.reduce(0) { $0 + $1.wireSize } }

    /// How the sender laid out the range area.
    public var rangeAreaLayout: RangeAreaLayout {
        let end = Self.headerSize + self.rangesWireSize
        let areaEnd = self.descriptor.payloadOffset
        if areaEnd <= end { return .compact }
        if self.ranges.count == 1, areaEnd == Self.maximumMultipageAreaEnd { return .fullMultipageArray }
        return .padded(slackBytes: areaEnd - end)
    }

    /// Whether the range area is larger than its ranges (any layout but ``RangeAreaLayout/compact``).
    public var hasPaddedRangeArea: Bool { self.rangeAreaLayout != .compact }

    /// Parses the parts after the descriptor.
    /// - Parameters:
    ///   - area: bytes 16 ..< `offset8 × 8`: reserved, range_cnt, the ranges and any slack.
    ///   - payload: bytes from `offset8 × 8` to `len8 × 8`.
    init(descriptor: PacketDescriptor, area: ArraySlice<UInt8>, payload: ArraySlice<UInt8>) throws(WireError) {
        // offset8 ≥ 3: reserved and range_cnt must sit before the payload (02 §9.3).
        guard area.count >= Self.headerSize - PacketDescriptor.wireSize else {
            throw WireError.invalidField(name: "offset8", value: UInt64(descriptor.offset8))
        }
        var reader = WireReader(area)
        let reserved = try reader.readUInt32()
        let count = try reader.readUInt32()
        // Each range takes at least 16 bytes (header and one PFN), so the area bounds the count:
        // checked before anything is reserved for it.
        guard count >= 1, count <= reader.remaining / GpaRange.wireSize(pageCount: 1),
            let rangeCount = Int(exactly: count)
        else {
            throw WireError.invalidField(name: "range_cnt", value: UInt64(count))
        }
        var ranges: [GpaRange] = []
        ranges.reserveCapacity(rangeCount)
        for _ in 0..<rangeCount {
            do {
                ranges.append(try GpaRange(from: &reader))
            } catch .truncated {
                // The reader ends at offset8 × 8: this range runs into the payload.
                throw WireError.invalidField(name: "GPA range extends past offset8", value: UInt64(descriptor.offset8))
            }
        }
        self.init(descriptor: descriptor, reserved: reserved, ranges: ranges, payload: payload)
    }

    /// Writes everything after the descriptor up to `offset8 × 8`: reserved, range_cnt, the
    /// ranges, then zeros for any slack.
    /// - Throws: ``WireError/invalidField(name:value:)`` ("offset8") if the ranges do not fit.
    func writeArea(to writer: inout WireWriter) throws(WireError) {
        guard Self.headerSize + self.rangesWireSize <= self.descriptor.payloadOffset else {
            throw WireError.invalidField(name: "offset8", value: UInt64(self.descriptor.offset8))
        }
        writer.writeUInt32(self.reserved)
        writer.writeUInt32(UInt32(truncatingIfNeeded: self.ranges.count))
        for range in self.ranges { range.write(to: &writer) }
    }
}
