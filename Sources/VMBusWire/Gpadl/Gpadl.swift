/// GPADL range lists: building them from ranges and splitting them into channel messages
/// (guest side, 04 §4), and reading ranges back from words (used by ``GpadlAssembler``).
public enum Gpadl {
    /// Most words a whole range list can have: `range_buflen` is a u16 count of bytes, so
    /// 65535 / 8 = 8191 words (65528 bytes).
    public static let maximumWords = Int(UInt16.max) / 8
    /// Most ranges a list can hold: each range takes at least two words (header and one PFN).
    public static let maximumRangeCount = maximumWords / 2
    /// The most pages one GPADL can describe: one range header word plus 8190 PFNs fill the
    /// 16-bit `range_buflen` (just under 32 MiB; Linux's 31 MiB netvsc buffers stay below it).
    /// Larger buffers need several GPADLs.
    public static let maximumPages = maximumWords - 1

    /// The range list of `ranges` as u64 words: each range's header word, then its PFNs.
    public static func words(_ ranges: [GpaRange]) -> [UInt64] {
        var words: [UInt64] = []
        words.reserveCapacity(ranges.reduce(0) { $0 + 1 + $1.pfns.count })
        for range in ranges {
            words.append(range.headerWord)
            words.append(contentsOf: range.pfns)
        }
        return words
    }

    /// The GPADL_HEADER and GPADL_BODY messages that describe `ranges`, in sending order.
    ///
    /// The word list is cut into the header's 27 words, then bodies of 28: for Linux's single
    /// range that is 1 range header + 26 PFNs in the header and 28 PFNs per body, the table of
    /// 04 §4. `range_buflen` is the byte size of the whole list; `msgnumber` is 0, as Linux
    /// sends it.
    /// - Throws: ``WireError/invalidField(name:value:)`` ("rangecount") for an empty list;
    ///   ``WireError/limitExceeded(name:value:limit:)`` ("range_buflen") if the list does not
    ///   fit the u16 `range_buflen`.
    public static func split(channel childRelID: UInt32, handle gpadl: UInt32, ranges: [GpaRange])
        throws(WireError) -> (header: GpadlHeader, bodies: [GpadlBody])
    {
        guard !ranges.isEmpty else { throw WireError.invalidField(name: "rangecount", value: 0) }
        // Counting first keeps an oversized list from being copied into words at all.
        let wordCount = ranges.reduce(0) { $0 + 1 + $1.pfns.count }
        try WireError.check("range_buflen", wordCount * 8, limit: Self.maximumWords * 8)
        let words = Self.words(ranges)
        // Both fit a u16: ranges.count ≤ wordCount / 2 and wordCount × 8 ≤ 65528.
        let headerWords = min(words.count, GpadlHeader.maximumWords)
        let header = GpadlHeader(
            childRelID: childRelID, gpadl: gpadl, rangeBufferLength: UInt16(truncatingIfNeeded: words.count * 8),
            rangeCount: UInt16(truncatingIfNeeded: ranges.count), words: Array(words[0..<headerWords]))
        let bodies = stride(from: headerWords, to: words.count, by: GpadlBody.maximumWords).map { start in
            GpadlBody(gpadl: gpadl, words: Array(words[start..<min(start + GpadlBody.maximumWords, words.count)]))
        }
        return (header, bodies)
    }

    /// Reads exactly `rangeCount` ranges that consume exactly `words`, each validated like a
    /// parsed ``GpaRange`` (byte count ≠ 0, offset ≤ 0xFFF, one PFN per page touched).
    /// - Throws: ``WireError/invalidField(name:value:)``: "rangecount" if the words end before
    ///   the ranges do, "GPADL range PFN count" if a range claims more PFNs than are left,
    ///   "range_buflen" if words are left over, or the range's own field.
    public static func ranges(fromWords words: ArraySlice<UInt64>, rangeCount: Int) throws(WireError) -> [GpaRange] {
        // Each range takes two words or more, so the words bound what is reserved.
        guard rangeCount >= 1, rangeCount <= words.count / 2 else {
            throw WireError.invalidField(name: "rangecount", value: UInt64(clamping: rangeCount))
        }
        var ranges: [GpaRange] = []
        ranges.reserveCapacity(rangeCount)
        var index = words.startIndex
        for _ in 0..<rangeCount {
            guard index < words.endIndex else {
                throw WireError.invalidField(name: "rangecount", value: UInt64(clamping: rangeCount))
            }
            let header = words[index]
            let byteCount = UInt32(truncatingIfNeeded: header)
            let byteOffset = UInt32(truncatingIfNeeded: header >> 32)
            let pages = try GpaRange.pageCount(byteCount: byteCount, byteOffset: byteOffset)
            let first = index + 1
            guard pages <= words.endIndex - first else {
                throw WireError.invalidField(name: "GPADL range PFN count", value: UInt64(clamping: pages))
            }
            ranges.append(try GpaRange(byteCount: byteCount, byteOffset: byteOffset,
                                       pfns: Array(words[first..<(first + pages)])))
            index = first + pages
        }
        guard index == words.endIndex else {
            throw WireError.invalidField(name: "range_buflen", value: UInt64(clamping: words.count * 8))
        }
        return ranges
    }
}
