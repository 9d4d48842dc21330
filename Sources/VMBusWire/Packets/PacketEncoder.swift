/// Packet and ring sizes (OpenVMM's `PacketSize`; 03 §3–§5). "Length" is `len8 × 8`; ring
/// bytes add the 8-byte trailer.
public enum PacketSize {
    /// `len8 × 8` of an in-band packet or completion with `payload` bytes.
    public static func inBand(payload: Int) -> Int { align8(PacketDescriptor.wireSize + payload) }

    /// `len8 × 8` of a compact GPA-direct packet.
    public static func gpaDirect(ranges: [GpaRange], payload: Int) -> Int {
        align8(GpaDirectPacket.headerSize + ranges.reduce(0) { $0 + $1.wireSize } + payload)
    }

    /// `len8 × 8` of a transfer-page packet with `count` ranges.
    public static func transferPages(count: Int, payload: Int) -> Int {
        align8(TransferPagePacket.headerSize + 8 * count + payload)
    }

    /// Ring bytes a packet of `length` consumes.
    public static func ringBytes(length: Int) -> Int { length + PacketDescriptor.trailerSize }

    /// `n` rounded up to a multiple of 8.
    public static func align8(_ n: Int) -> Int { (n + 7) & ~7 }
}

/// Builds ring packets (the bytes of `len8 × 8`, without the ring trailer), padding each with
/// zeros to 8 bytes as Linux does.
public enum PacketEncoder {
    /// An in-band packet (type 6). Set `.completionRequested` and a non-zero transaction id
    /// when an answer is wanted (03 §6: Hyper-V does not answer id 0).
    public static func inBand<C: Collection>(payload: C, flags: PacketFlags = [], transactionID: UInt64 = 0)
        throws(WireError) -> [UInt8] where C.Element == UInt8
    {
        try Self.simple(.dataInBand, payload: payload, flags: flags, transactionID: transactionID)
    }

    /// A completion (type 0xB) answering `transactionID`; completions never request one.
    public static func completion<C: Collection>(payload: C, transactionID: UInt64) throws(WireError) -> [UInt8]
    where C.Element == UInt8 {
        try Self.simple(.completion, payload: payload, flags: [], transactionID: transactionID)
    }

    /// A packet of any type with the payload right after the descriptor.
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

    /// A GPA-direct packet in Linux's MPB form: any number of ranges, packed back to back.
    public static func gpaDirect<C: Collection>(
        ranges: [GpaRange], payload: C, flags: PacketFlags = .completionRequested, transactionID: UInt64
    ) throws(WireError) -> [UInt8] where C.Element == UInt8 {
        let area = ranges.reduce(0) { $0 + $1.wireSize }
        return try Self.gpaDirect(ranges: ranges, areaSize: area, payload: payload, flags: flags, transactionID)
    }

    /// A GPA-direct packet in Linux's page-buffer form: each range covers part of one page.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` above 32 ranges, or
    ///   ``WireError/invalidField(name:value:)`` for a range that spans pages.
    public static func pageBuffer<C: Collection>(
        ranges: [GpaRange], payload: C, flags: PacketFlags = .completionRequested, transactionID: UInt64
    ) throws(WireError) -> [UInt8] where C.Element == UInt8 {
        try WireError.check("page buffer count", ranges.count, limit: GpaDirectPacket.linuxPageArraySize)
        for range in ranges where range.pfns.count != 1 {
            throw WireError.invalidField(name: "page buffer PFN count", value: UInt64(range.pfns.count))
        }
        return try Self.gpaDirect(ranges: ranges, payload: payload, flags: flags, transactionID: transactionID)
    }

    /// A GPA-direct packet in Linux's multipage form: one range with a fixed 32-slot PFN
    /// array (descriptor area 288 bytes), unused slots zero.
    public static func multipage<C: Collection>(
        range: GpaRange, payload: C, flags: PacketFlags = .completionRequested, transactionID: UInt64
    ) throws(WireError) -> [UInt8] where C.Element == UInt8 {
        try WireError.check("multipage PFN count", range.pfns.count, limit: GpaDirectPacket.linuxPageArraySize)
        return try Self.gpaDirect(
            ranges: [range], areaSize: 8 + 8 * GpaDirectPacket.linuxPageArraySize, payload: payload, flags: flags,
            transactionID)
    }

    /// A transfer-page packet (type 7), as a host's netvsp sends it.
    public static func transferPages<C: Collection>(
        setID: UInt16, ranges: [TransferPageRange], payload: C, flags: PacketFlags = .completionRequested,
        transactionID: UInt64
    ) throws(WireError) -> [UInt8] where C.Element == UInt8 {
        let offset = TransferPagePacket.headerSize + 8 * ranges.count
        let length = PacketSize.align8(offset + payload.count)
        var writer = WireWriter(capacity: length)
        try Self.descriptor(.dataUsingTransferPages, offset: offset, length: length, flags, transactionID)
            .write(to: &writer)
        writer.writeUInt16(setID)
        writer.writeUInt8(0)
        writer.writeUInt8(0)
        writer.writeUInt32(UInt32(ranges.count))
        for range in ranges {
            writer.writeUInt32(range.byteCount)
            writer.writeUInt32(range.byteOffset)
        }
        writer.writeBytes(payload)
        writer.writeZeros(length - writer.count)
        return writer.bytes
    }

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
        writer.writeUInt32(UInt32(ranges.count))
        for range in ranges { range.write(to: &writer) }
        writer.writeZeros(offset - writer.count)
        writer.writeBytes(payload)
        writer.writeZeros(length - writer.count)
        return writer.bytes
    }

    /// A descriptor for a packet of `length` bytes with the payload at `offset`.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` when `len8` would not fit u16.
    private static func descriptor(
        _ type: PacketType, offset: Int, length: Int, _ flags: PacketFlags, _ transactionID: UInt64
    ) throws(WireError) -> PacketDescriptor {
        try WireError.check("packet length", length, limit: PacketDescriptor.maximumPacketLength)
        // offset ≤ length and both ≤ 524280 here, so the 8-byte units fit a u16.
        return PacketDescriptor(
            type: type, offset8: UInt16((offset + 7) / 8), len8: UInt16(length / 8), flags: flags,
            transactionID: transactionID)
    }
}
