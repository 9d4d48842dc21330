/// A `gpa_range` record: a byte range of guest memory described by 4 KiB page numbers
/// (03 §4). GPA-direct packets and GPADLs (04 §3.7, §4) share it.
///
/// ```
/// offset 0  byte_count  u32   bytes described, never 0
/// offset 4  byte_offset u32   offset into the first page, 0 … 0xFFF
/// offset 8  pfn_array   u64[k], k = ceil((byte_offset + byte_count) / 4096)
/// ```
///
/// A value always satisfies those rules: every initializer checks them, and the fields cannot
/// be changed afterwards.
public struct GpaRange: Hashable, Sendable {
    /// The Hyper-V page size: PFNs are always 4 KiB frame numbers, whatever the guest's own
    /// page size.
    public static let pageSize = 4096
    /// Largest `byte_offset`: an offset into the first page.
    public static let maximumByteOffset: UInt32 = 0xFFF
    /// Largest PFN count a parser accepts in one range, checked before anything is allocated.
    /// A packet's `len8` and a GPADL's `range_buflen` are u16s, so no legitimate range carries
    /// more than 65535 PFNs; `byte_count` alone could claim 1048577.
    public static let maximumPageCount = 65535
    /// Bytes of the two u32 fields before the PFNs.
    public static let headerSize = 8

    /// Bytes described (never 0).
    public let byteCount: UInt32
    /// Offset into the first page (≤ 0xFFF).
    public let byteOffset: UInt32
    /// One 4 KiB frame number per page the range touches.
    public let pfns: [UInt64]

    /// A checked range.
    /// - Throws: ``WireError/invalidField(name:value:)`` if `byteCount` is 0 ("byte_count"),
    ///   `byteOffset` is above 0xFFF ("byte_offset"), or `pfns` does not hold exactly one PFN
    ///   per page the range touches ("PFN count").
    public init(byteCount: UInt32, byteOffset: UInt32, pfns: [UInt64]) throws(WireError) {
        let pages = try Self.pageCount(byteCount: byteCount, byteOffset: byteOffset)
        guard pfns.count == pages else { throw WireError.invalidField(name: "PFN count", value: UInt64(pfns.count)) }
        self.byteCount = byteCount
        self.byteOffset = byteOffset
        self.pfns = pfns
    }

    /// The range of `length` bytes at guest physical address `gpa`, over consecutive pages.
    /// - Throws: as ``init(byteCount:byteOffset:pfns:)``; `length` 0 is "byte_count".
    public init(gpa: UInt64, length: UInt32) throws(WireError) {
        let offset = UInt32(truncatingIfNeeded: gpa & UInt64(Self.maximumByteOffset))
        let pages = try Self.pageCount(byteCount: length, byteOffset: offset)
        // gpa >> 12 is below 2^52 and pages below 2^21, so the last PFN cannot overflow.
        let first = gpa >> 12
        try self.init(byteCount: length, byteOffset: offset, pfns: (0..<UInt64(pages)).map { first + $0 })
    }

    /// `ceil((byteOffset + byteCount) / 4096)`, after checking both fields. The sum is taken in
    /// 64 bits, where it cannot overflow; the result is at most 1048577.
    /// - Throws: ``WireError/invalidField(name:value:)`` named "byte_count" or "byte_offset".
    public static func pageCount(byteCount: UInt32, byteOffset: UInt32) throws(WireError) -> Int {
        guard byteCount != 0 else { throw WireError.invalidField(name: "byte_count", value: 0) }
        guard byteOffset <= Self.maximumByteOffset else {
            throw WireError.invalidField(name: "byte_offset", value: UInt64(byteOffset))
        }
        let end = UInt64(byteOffset) + UInt64(byteCount)
        let pages = (end + UInt64(Self.pageSize) - 1) / UInt64(Self.pageSize)
        guard let count = Int(exactly: pages) else { throw WireError.invalidField(name: "byte_count", value: end) }
        return count
    }

    /// Bytes a range of `pageCount` PFNs takes on the wire: 8 + 8 × `pageCount`.
    public static func wireSize(pageCount: Int) -> Int { Self.headerSize + 8 * pageCount }

    /// Reads a range. The PFN count implied by the header is checked against
    /// ``maximumPageCount`` and against the bytes left before anything is allocated for it.
    /// - Throws: ``WireError/invalidField(name:value:)`` for a bad header,
    ///   ``WireError/limitExceeded(name:value:limit:)`` ("range PFN count") above the limit,
    ///   ``WireError/truncated(needed:available:)`` when the PFNs are not all there.
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

    /// Writes the header and the PFNs.
    public func write(to writer: inout WireWriter) {
        writer.writeUInt32(self.byteCount)
        writer.writeUInt32(self.byteOffset)
        for pfn in self.pfns { writer.writeUInt64(pfn) }
    }

    /// Bytes on the wire: 8 + 8 per PFN.
    public var wireSize: Int { Self.wireSize(pageCount: self.pfns.count) }

    /// The header as one u64 word, `byte_count | byte_offset << 32`: the form it takes in a
    /// GPADL's word list (04 §3.7).
    public var headerWord: UInt64 { UInt64(self.byteCount) | UInt64(self.byteOffset) << 32 }
}
