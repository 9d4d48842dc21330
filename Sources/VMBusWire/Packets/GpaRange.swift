/// A `gpa_range` record: a byte range of guest memory described by 4 KiB page numbers
/// (03 §4). GPA-direct packets and GPADLs (04 §3.7) both use it.
///
/// `byte_count u32, byte_offset u32, pfn u64[k]` with `k = ceil((byte_offset + byte_count) / 4096)`.
public struct GpaRange: Hashable, Sendable {
    /// The Hyper-V page size; PFNs are always 4 KiB frame numbers.
    public static let pageSize = 4096
    /// Largest `byte_offset`: an offset into the first page.
    public static let maximumByteOffset: UInt32 = 0xFFF
    /// Largest PFN count a parser accepts in one range: `len8` and `range_buflen` are u16s, so
    /// no legitimate range carries more than 65535 PFNs.
    public static let maximumPageCount = 65535

    /// Bytes described (never 0).
    public var byteCount: UInt32
    /// Offset into the first page (≤ 0xFFF).
    public var byteOffset: UInt32
    /// One 4 KiB frame number per page touched.
    public var pfns: [UInt64]

    /// A checked range.
    /// - Throws: ``WireError/invalidField(name:value:)`` if `byteCount` is 0, `byteOffset` is
    ///   above 0xFFF, or `pfns` does not hold exactly one PFN per page the range touches.
    public init(byteCount: UInt32, byteOffset: UInt32, pfns: [UInt64]) throws(WireError) {
        let pages = try Self.pageCount(byteCount: byteCount, byteOffset: byteOffset)
        guard pfns.count == pages else { throw WireError.invalidField(name: "PFN count", value: UInt64(pfns.count)) }
        self.byteCount = byteCount
        self.byteOffset = byteOffset
        self.pfns = pfns
    }

    /// The range of `length` bytes at guest physical address `gpa`, over consecutive pages.
    public init(gpa: UInt64, length: UInt32) throws(WireError) {
        let offset = UInt32(truncatingIfNeeded: gpa & 0xFFF)
        let pages = try Self.pageCount(byteCount: length, byteOffset: offset)
        let first = gpa >> 12
        guard first <= UInt64.max - UInt64(pages) else { throw WireError.invalidField(name: "gpa", value: gpa) }
        try self.init(byteCount: length, byteOffset: offset, pfns: (0..<UInt64(pages)).map { first + $0 })
    }

    /// `ceil((byteOffset + byteCount) / 4096)`, after checking the header fields.
    public static func pageCount(byteCount: UInt32, byteOffset: UInt32) throws(WireError) -> Int {
        guard byteCount != 0 else { throw WireError.invalidField(name: "byte_count", value: 0) }
        guard byteOffset <= Self.maximumByteOffset else {
            throw WireError.invalidField(name: "byte_offset", value: UInt64(byteOffset))
        }
        // In 64 bits the sum cannot overflow.
        let end = UInt64(byteOffset) + UInt64(byteCount)
        return Int((end + UInt64(Self.pageSize) - 1) / UInt64(Self.pageSize))
    }

    /// Reads a range, checking the PFN count against the named limit and the bytes present
    /// before allocating for them.
    public init(from reader: inout WireReader) throws(WireError) {
        let byteCount = try reader.readUInt32()
        let byteOffset = try reader.readUInt32()
        let pages = try Self.pageCount(byteCount: byteCount, byteOffset: byteOffset)
        try WireError.check("range PFN count", pages, limit: Self.maximumPageCount)
        try reader.require(pages * 8)
        var pfns: [UInt64] = []
        pfns.reserveCapacity(pages)
        for _ in 0..<pages { pfns.append(try reader.readUInt64()) }
        self.byteCount = byteCount
        self.byteOffset = byteOffset
        self.pfns = pfns
    }

    public func write(to writer: inout WireWriter) {
        writer.writeUInt32(self.byteCount)
        writer.writeUInt32(self.byteOffset)
        for pfn in self.pfns { writer.writeUInt64(pfn) }
    }

    /// Bytes on the wire: 8 + 8 per PFN.
    public var wireSize: Int { 8 + 8 * self.pfns.count }

    /// The range header as one u64 word (as it appears in GPADL word lists).
    public var headerWord: UInt64 { UInt64(self.byteCount) | UInt64(self.byteOffset) << 32 }
}

/// A `vmtransfer_page_range`: bytes inside a transfer page set (03 §5).
public struct TransferPageRange: Hashable, Sendable {
    public var byteCount: UInt32
    /// Offset from the start of the transfer page set.
    public var byteOffset: UInt32

    public init(byteCount: UInt32, byteOffset: UInt32) {
        self.byteCount = byteCount
        self.byteOffset = byteOffset
    }
}
