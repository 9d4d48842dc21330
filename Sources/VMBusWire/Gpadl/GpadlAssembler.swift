/// Splitting a GPADL's ranges into channel messages (guest side, 04 §4).
public enum Gpadl {
    /// Most words a whole range list can have: `range_buflen` is a u16 count of bytes.
    public static let maximumWords = Int(UInt16.max) / 8

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

    /// The GPADL_HEADER and GPADL_BODY messages that describe `ranges`: 27 words in the
    /// header (1 range header + 26 PFNs for a single range), 28 per body (04 §4).
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` if the list does not fit the
    ///   u16 `range_buflen` or has more than 65535 ranges; ``WireError/invalidField(name:value:)``
    ///   for an empty list.
    public static func split(channel childRelID: UInt32, handle gpadl: UInt32, ranges: [GpaRange])
        throws(WireError) -> (header: GpadlHeader, bodies: [GpadlBody])
    {
        guard !ranges.isEmpty else { throw WireError.invalidField(name: "rangecount", value: 0) }
        try WireError.check("rangecount", ranges.count, limit: UInt16.max)
        let words = Self.words(ranges)
        guard words.count <= Self.maximumWords else {
            throw WireError.limitExceeded(
                name: "range_buflen", value: UInt64(words.count) * 8, limit: UInt64(Self.maximumWords * 8))
        }
        let headerWords = min(words.count, GpadlHeader.maximumWords)
        let header = GpadlHeader(
            childRelID: childRelID, gpadl: gpadl, rangeBufferLength: UInt16(words.count * 8),
            rangeCount: UInt16(ranges.count), words: Array(words[0..<headerWords]))
        let bodies = stride(from: headerWords, to: words.count, by: GpadlBody.maximumWords).map {
            GpadlBody(gpadl: gpadl, words: Array(words[$0..<min($0 + GpadlBody.maximumWords, words.count)]))
        }
        return (header, bodies)
    }
}

/// Rebuilds a GPADL's ranges from its header and body messages (host side, 04 §4).
///
/// Every count and length is cross-checked: `range_buflen` is a non-zero multiple of 8 that
/// can hold `rangecount` ranges; bodies must name the header's handle; the ranges must consume
/// exactly `range_buflen / 8` words, each range valid (byte count ≠ 0, offset ≤ 0xFFF, one
/// PFN per page). Storage is reserved only for the words `range_buflen` announces, which a u16
/// bounds to 8191.
public struct GpadlAssembler: Hashable, Sendable {
    /// The owning channel, from the header.
    public let childRelID: UInt32
    /// The handle bodies must carry.
    public let gpadl: UInt32
    /// Ranges announced by the header.
    public let rangeCount: Int
    /// Words announced by the header (`range_buflen / 8`).
    public let expectedWords: Int
    /// What to do with words beyond `expectedWords` in the last message. UEFI sends
    /// maximum-length messages, so `.ignore` (OpenVMM's behaviour) is the default.
    public let excessWords: TrailingBytePolicy
    /// Words received so far.
    public private(set) var words: [UInt64]

    /// Starts reassembly from a header message.
    public init(header: GpadlHeader, excessWords: TrailingBytePolicy = .ignore) throws(WireError) {
        let length = Int(header.rangeBufferLength)
        guard length > 0, length % 8 == 0 else {
            throw WireError.invalidField(name: "range_buflen", value: UInt64(length))
        }
        // Each range is at least two words: its header and one PFN.
        guard header.rangeCount >= 1, Int(header.rangeCount) * 16 <= length else {
            throw WireError.invalidField(name: "rangecount", value: UInt64(header.rangeCount))
        }
        self.childRelID = header.childRelID
        self.gpadl = header.gpadl
        self.rangeCount = Int(header.rangeCount)
        self.expectedWords = length / 8
        self.excessWords = excessWords
        self.words = []
        self.words.reserveCapacity(self.expectedWords)
        try self.take(header.words)
    }

    /// Whether every announced word has arrived.
    public var isComplete: Bool { self.words.count == self.expectedWords }

    /// Words still missing.
    public var missingWords: Int { self.expectedWords - self.words.count }

    /// Adds a body message.
    /// - Throws: ``WireError/invalidField(name:value:)`` for another handle or a body after the
    ///   list is complete; ``WireError/limitExceeded(name:value:limit:)`` for extra words
    ///   under `.reject`.
    public mutating func append(_ body: GpadlBody) throws(WireError) {
        guard body.gpadl == self.gpadl else {
            throw WireError.invalidField(name: "GPADL body handle", value: UInt64(body.gpadl))
        }
        guard !self.isComplete else {
            throw WireError.invalidField(name: "GPADL body after completion", value: UInt64(body.gpadl))
        }
        try self.take(body.words)
    }

    private mutating func take(_ new: [UInt64]) throws(WireError) {
        let missing = self.missingWords
        if new.count > missing && self.excessWords == .reject {
            throw WireError.limitExceeded(
                name: "GPADL words", value: UInt64(self.words.count + new.count), limit: UInt64(self.expectedWords))
        }
        self.words.append(contentsOf: new.prefix(missing))
    }

    /// The ranges, once complete.
    /// - Throws: ``WireError/truncated(needed:available:)`` if words are missing;
    ///   ``WireError/invalidField(name:value:)`` if the ranges do not consume exactly the
    ///   announced words or one of them is invalid.
    public func finish() throws(WireError) -> [GpaRange] {
        guard self.isComplete else {
            throw WireError.truncated(needed: self.expectedWords * 8, available: self.words.count * 8)
        }
        var ranges: [GpaRange] = []
        ranges.reserveCapacity(self.rangeCount)
        var index = 0
        for _ in 0..<self.rangeCount {
            guard index < self.words.count else {
                throw WireError.invalidField(name: "rangecount", value: UInt64(self.rangeCount))
            }
            let header = self.words[index]
            let byteCount = UInt32(truncatingIfNeeded: header)
            let byteOffset = UInt32(truncatingIfNeeded: header >> 32)
            let pages = try GpaRange.pageCount(byteCount: byteCount, byteOffset: byteOffset)
            guard pages <= self.words.count - index - 1 else {
                throw WireError.invalidField(name: "GPADL range PFN count", value: UInt64(pages))
            }
            ranges.append(try GpaRange(
                byteCount: byteCount, byteOffset: byteOffset, pfns: Array(self.words[(index + 1)...(index + pages)])))
            index += 1 + pages
        }
        guard index == self.words.count else {
            throw WireError.invalidField(name: "range_buflen", value: UInt64(self.expectedWords * 8))
        }
        return ranges
    }

    /// Reassembles a whole GPADL in one call.
    public static func assemble(header: GpadlHeader, bodies: [GpadlBody], excessWords: TrailingBytePolicy = .ignore)
        throws(WireError) -> [GpaRange]
    {
        var assembler = try GpadlAssembler(header: header, excessWords: excessWords)
        for body in bodies { try assembler.append(body) }
        return try assembler.finish()
    }
}
