/// Builds ring packets: the `len8 × 8` bytes of one packet, trailer excluded, padded with zeros
/// to a multiple of 8 as Linux's `vmbus_sendpacket` family does (03 §3–§5, §8).
///
/// Every encoder computes `offset8` and `len8` and throws
/// ``WireError/limitExceeded(name:value:limit:)`` ("packet length") when `len8` would not fit
/// its u16 (``PacketDescriptor/maximumPacketLength``).
public enum PacketEncoder {
    /// An in-band packet (type 6, offset8 2).
    ///
    /// Set `.completionRequested` and a non-zero `transactionID` when an answer is wanted:
    /// Hyper-V does not answer a request with id 0 (03 §6).
    public static func inBand<C: Collection>(payload: C, flags: PacketFlags = [], transactionID: UInt64 = 0)
        throws(WireError) -> [UInt8] where C.Element == UInt8
    {
        try Self.simple(.dataInBand, payload: payload, flags: flags, transactionID: transactionID)
    }

    /// A completion (type 0xB, offset8 2) answering `transactionID`. Completions never request
    /// a completion themselves, so the flags are 0.
    public static func completion<C: Collection>(payload: C, transactionID: UInt64) throws(WireError) -> [UInt8]
    where C.Element == UInt8 {
        try Self.simple(.completion, payload: payload, flags: [], transactionID: transactionID)
    }

    /// A packet of any type, unknown ones included, with the payload right after the
    /// descriptor (offset8 2) and the flags as given (unknown bits included).
    public static func simple<C: Collection>(
        _ type: PacketType, payload: C, flags: PacketFlags, transactionID: UInt64
    ) throws(WireError) -> [UInt8] where C.Element == UInt8 {
        let length = PacketSize.inBand(payload: payload.count)
        var writer = WireWriter(capacity: length)
        try Self.descriptor(type, offset: PacketDescriptor.wireSize, length: length, flags, transactionID)
            .write(to: &writer)
        writer.writeBytes(payload)
        writer.writeZeros(length - writer.count)
        return writer.bytes
    }

    // MARK: GPA direct (type 9)

    /// A GPA-direct packet in Linux's MPB form (`vmbus_sendpacket_mpb_desc`): any number of
    /// ranges of any size, back to back, then the payload.
    /// - Throws: ``WireError/invalidField(name:value:)`` ("range_cnt") for no ranges.
    public static func gpaDirect<C: Collection>(
        ranges: [GpaRange], payload: C, flags: PacketFlags = .completionRequested, transactionID: UInt64
    ) throws(WireError) -> [UInt8] where C.Element == UInt8 {
        let area = ranges.reduce(0) { $0 + $1.wireSize }
        return try Self.gpaDirect(ranges: ranges, areaSize: area, payload: payload, flags: flags, transactionID)
    }

    /// A GPA-direct packet in Linux's page-buffer form (`vmbus_channel_packet_page_buffer`):
    /// up to 32 ranges (`MAX_PAGE_BUFFER_COUNT`), each inside one page (`hv_page_buffer`,
    /// 16 bytes). Like Linux, only the page buffers in use are sent.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` ("page buffer count") above 32
    ///   ranges; ``WireError/invalidField(name:value:)`` ("page buffer PFN count") for a range
    ///   that spans pages, or ("range_cnt") for none.
    public static func pageBuffer<C: Collection>(
        ranges: [GpaRange], payload: C, flags: PacketFlags = .completionRequested, transactionID: UInt64
    ) throws(WireError) -> [UInt8] where C.Element == UInt8 {
        try WireError.check("page buffer count", ranges.count, limit: GpaDirectPacket.linuxPageArraySize)
        for range in ranges where range.pfns.count != 1 {
            throw WireError.invalidField(name: "page buffer PFN count", value: UInt64(range.pfns.count))
        }
        return try Self.gpaDirect(ranges: ranges, payload: payload, flags: flags, transactionID: transactionID)
    }

    /// A GPA-direct packet in Linux's multipage form (`vmbus_channel_packet_multipage_buffer`):
    /// range_cnt 1, one range of at most 32 PFNs (128 KiB).
    ///
    /// Linux's `vmbus_sendpacket_multipagebuffer` trims the struct's fixed 32-slot PFN array to
    /// the PFNs in use before sending, so by default the result is compact. With
    /// `fullPFNArray` the whole array is sent, unused slots zero: a 288-byte descriptor area
    /// (`MAX_MULTIPAGE_BUFFER_PACKET`), which parsers see as
    /// ``GpaDirectPacket/RangeAreaLayout/fullMultipageArray``.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` ("multipage PFN count") above
    ///   32 PFNs.
    public static func multipage<C: Collection>(
        range: GpaRange, payload: C, flags: PacketFlags = .completionRequested, transactionID: UInt64,
        fullPFNArray: Bool = false
    ) throws(WireError) -> [UInt8] where C.Element == UInt8 {
        try WireError.check("multipage PFN count", range.pfns.count, limit: GpaDirectPacket.linuxPageArraySize)
        let slots = fullPFNArray ? GpaDirectPacket.linuxPageArraySize : range.pfns.count
        return try Self.gpaDirect(
            ranges: [range], areaSize: GpaRange.wireSize(pageCount: slots), payload: payload, flags: flags,
            transactionID)
    }

    // MARK: Transfer pages (type 7)

    /// A transfer-page packet (type 7), as a host's netvsp sends it: offset8 = 3 + range count.
    /// Linux's `sender_owns_set` and the reserved byte are written as zero.
    public static func transferPages<C: Collection>(
        setID: UInt16, ranges: [TransferPageRange], payload: C, flags: PacketFlags = .completionRequested,
        transactionID: UInt64
    ) throws(WireError) -> [UInt8] where C.Element == UInt8 {
        let offset = TransferPagePacket.headerSize + TransferPageRange.wireSize * ranges.count
        let length = PacketSize.align8(offset + payload.count)
        var writer = WireWriter(capacity: length)
        // The descriptor check bounds ranges.count far below u32 before it is written.
        try Self.descriptor(.dataUsingTransferPages, offset: offset, length: length, flags, transactionID)
            .write(to: &writer)
        writer.writeUInt16(setID)
        writer.writeUInt8(0)
        writer.writeUInt8(0)
        writer.writeUInt32(UInt32(truncatingIfNeeded: ranges.count))
        for range in ranges { range.write(to: &writer) }
        writer.writeBytes(payload)
        writer.writeZeros(length - writer.count)
        return writer.bytes
    }

    // MARK: Helpers

    /// A GPA-direct packet whose range area is `areaSize` bytes (the ranges, then zeros).
    private static func gpaDirect<C: Collection>(
        ranges: [GpaRange], areaSize: Int, payload: C, flags: PacketFlags, _ transactionID: UInt64
    ) throws(WireError) -> [UInt8] where C.Element == UInt8 {
        guard !ranges.isEmpty else { throw WireError.invalidField(name: "range_cnt", value: 0) }
        let offset = GpaDirectPacket.headerSize + areaSize
        let length = PacketSize.align8(offset + payload.count)
        var writer = WireWriter(capacity: length)
        try Self.descriptor(.dataUsingGpaDirect, offset: offset, length: length, flags, transactionID)
            .write(to: &writer)
        writer.writeUInt32(0)
        writer.writeUInt32(UInt32(truncatingIfNeeded: ranges.count))
        for range in ranges { range.write(to: &writer) }
        writer.writeZeros(offset - writer.count)
        writer.writeBytes(payload)
        writer.writeZeros(length - writer.count)
        return writer.bytes
    }

    /// The descriptor of a packet of `length` bytes whose payload starts at `offset` (a
    /// multiple of 8 for every caller).
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` when `len8` would not fit u16.
    private static func descriptor(
        _ type: PacketType, offset: Int, length: Int, _ flags: PacketFlags, _ transactionID: UInt64
    ) throws(WireError) -> PacketDescriptor {
        try WireError.check("packet length", length, limit: PacketDescriptor.maximumPacketLength)
        // offset ≤ length ≤ 65535 × 8 here, so both unit counts fit a u16.
        return PacketDescriptor(
            type: type, offset8: UInt16(truncatingIfNeeded: offset / 8), len8: UInt16(truncatingIfNeeded: length / 8),
            flags: flags, transactionID: transactionID)
    }
}
