/// Rebuilds a GPADL's ranges from its GPADL_HEADER and GPADL_BODY messages (host side, 04 §4).
///
/// Every count and length is cross-checked:
/// * the header: `range_buflen` is a non-zero multiple of 8; `rangecount` ≥ 1 and, since a
///   range is at least two words, `rangecount × 16 ≤ range_buflen` (which implies
///   `rangecount × 8 ≤ range_buflen`);
/// * bodies must carry the header's handle and arrive only while words are missing;
/// * ``finish()`` reads exactly `rangecount` ranges that consume exactly `range_buflen / 8`
///   words, each valid (byte count ≠ 0, offset ≤ 0xFFF, one PFN per page).
///
/// Storage is reserved once, for the `range_buflen / 8` words the header announces, which its
/// u16 bounds to ``Gpadl/maximumWords`` (8191).
///
/// **Excess words.** OpenVMM appends `min(words sent, words still missing)` and drops the
/// rest, because UEFI always posts maximum-length messages whose tail is garbage. This type is
/// strict by default (`excessWords: .reject`): a message carrying more words than are still
/// missing is an error, so a miscounting guest is caught rather than silently truncated. A host
/// that must boot UEFI guests passes `excessWords: .ignore` to get OpenVMM's behaviour.
public struct GpadlAssembler: Hashable, Sendable {
    /// Most words a GPADL can announce (`range_buflen` is a u16 of bytes).
    public static let maximumWords = Gpadl.maximumWords
    /// Most ranges a GPADL can announce and still fit ``maximumWords``.
    public static let maximumRangeCount = Gpadl.maximumRangeCount

    /// The owning channel, from the header.
    public let childRelID: UInt32
    /// The handle bodies must carry.
    public let gpadl: UInt32
    /// Ranges announced by the header.
    public let rangeCount: Int
    /// Words announced by the header (`range_buflen / 8`).
    public let expectedWords: Int
    /// What to do with words beyond ``expectedWords``: `.reject` (the default) throws,
    /// `.ignore` drops them as OpenVMM does for UEFI.
    public let excessWords: TrailingBytePolicy
    /// Words received so far; never more than ``expectedWords``.
    public private(set) var words: [UInt64]

    /// Starts reassembly from a header message.
    /// - Throws: ``WireError/invalidField(name:value:)`` ("range_buflen" or "rangecount") for
    ///   inconsistent header fields; ``WireError/limitExceeded(name:value:limit:)`` ("GPADL
    ///   words") if the header alone carries more words than announced, under `.reject`.
    public init(header: GpadlHeader, excessWords: TrailingBytePolicy = .reject) throws(WireError) {
        // u16 fields widen losslessly.
        let length = Int(header.rangeBufferLength)
        let rangeCount = Int(header.rangeCount)
        guard length > 0, length % 8 == 0 else {
            throw WireError.invalidField(name: "range_buflen", value: UInt64(length))
        }
        guard rangeCount >= 1, rangeCount * 16 <= length else {
            throw WireError.invalidField(name: "rangecount", value: UInt64(rangeCount))
        }
        self.childRelID = header.childRelID
        self.gpadl = header.gpadl
        self.rangeCount = rangeCount
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
    /// - Throws: ``WireError/invalidField(name:value:)`` for another handle ("GPADL body
    ///   handle") or a body after the list is complete ("GPADL body after completion");
    ///   ``WireError/limitExceeded(name:value:limit:)`` ("GPADL words") for more words than
    ///   are missing, under `.reject`. Nothing is appended when it throws.
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
        if new.count > missing, self.excessWords == .reject {
            throw WireError.limitExceeded(
                name: "GPADL words", value: UInt64(self.words.count + new.count), limit: UInt64(self.expectedWords))
        }
        self.words.append(contentsOf: new.prefix(missing))
    }

    /// The ranges, once complete.
    /// - Throws: ``WireError/truncated(needed:available:)`` (in bytes) if words are missing;
    ///   otherwise as ``Gpadl/ranges(fromWords:rangeCount:)``.
    public func finish() throws(WireError) -> [GpaRange] {
        guard self.isComplete else {
            throw WireError.truncated(needed: self.expectedWords * 8, available: self.words.count * 8)
        }
        return try Gpadl.ranges(fromWords: self.words[...], rangeCount: self.rangeCount)
    }

    /// Reassembles a whole GPADL in one call: the header, every body in order, then
    /// ``finish()``.
    public static func assemble(header: GpadlHeader, bodies: [GpadlBody], excessWords: TrailingBytePolicy = .reject)
        throws(WireError) -> [GpaRange]
    {
        var assembler = try GpadlAssembler(header: header, excessWords: excessWords)
        for body in bodies { try assembler.append(body) }
        return try assembler.finish()
    }
}
