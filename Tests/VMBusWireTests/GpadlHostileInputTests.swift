import Testing
import VMBusWire

/// A well-formed 30-page GPADL: header (1 range header + 26 PFNs) and one body of 4 PFNs.
private func thirtyPages() throws -> (header: GpadlHeader, bodies: [GpadlBody]) {
    try Gpadl.split(channel: 1, handle: 2, ranges: [try pageRange(30)])
}

@Suite struct GpadlHostileInputTests {
    // MARK: Message parsing

    @Test func partialWordsFollowThePolicy() throws {
        // UEFI sends maximum-length messages: 240 − 8 − 12 leaves 27 words and 4 odd bytes.
        let (header, _) = try Gpadl.split(channel: 1, handle: 2, ranges: [try pageRange(26)])
        let bytes = try written(header.write) + [0xEE, 0xEE, 0xEE, 0xEE]
        #expect(bytes.count + 8 == 240)
        var ignoring = WireReader(bytes)
        #expect(try GpadlHeader(from: &ignoring) == header && ignoring.remaining == 0)
        var rejecting = WireReader(bytes)
        #expect(throws: WireError.trailingBytes(count: 4)) { try GpadlHeader(from: &rejecting, trailingBytes: .reject) }
        let body = GpadlBody(gpadl: 2, words: [1, 2])
        var bodyBytes = WireReader(try written(body.write) + [0xEE])
        #expect(try GpadlBody(from: &bodyBytes) == body)
        bodyBytes = WireReader(try written(body.write) + [0xEE])
        #expect(throws: WireError.trailingBytes(count: 1)) { try GpadlBody(from: &bodyBytes, trailingBytes: .reject) }
    }

    @Test func shortMessagesAreTruncated() throws {
        let (header, _) = try thirtyPages()
        let headerBytes = try written(header.write)
        for length in 0..<12 {
            var reader = WireReader(Array(headerBytes.prefix(length)))
            #expect(isTruncated(wireError { () throws(WireError) in try GpadlHeader(from: &reader) }), "header \(length)")
        }
        let bodyBytes = try written(GpadlBody(gpadl: 2, words: [1]).write)
        for length in 0..<8 {
            var reader = WireReader(Array(bodyBytes.prefix(length)))
            #expect(isTruncated(wireError { () throws(WireError) in try GpadlBody(from: &reader) }), "body \(length)")
        }
    }

    @Test func messagesLongerThanTheSynICPayloadAreRefused() throws {
        // A header with 28 words (a 248-byte message) or a body with 29 cannot come from a
        // 240-byte SynIC payload; both are refused before the words are stored.
        var header = WireReader([UInt8](repeating: 0, count: 12 + 28 * 8))
        #expect(throws: WireError.limitExceeded(name: "GPADL header words", value: 28, limit: 27)) {
            try GpadlHeader(from: &header)
        }
        var body = WireReader([UInt8](repeating: 0, count: 8 + 29 * 8))
        #expect(throws: WireError.limitExceeded(name: "GPADL body words", value: 29, limit: 28)) {
            try GpadlBody(from: &body)
        }
        var tooManyHeaderWords = try thirtyPages().header
        tooManyHeaderWords.words.append(0)
        #expect(throws: WireError.limitExceeded(name: "GPADL header words", value: 28, limit: 27)) {
            try written(tooManyHeaderWords.write)
        }
        #expect(throws: WireError.limitExceeded(name: "GPADL body words", value: 29, limit: 28)) {
            try written(GpadlBody(gpadl: 1, words: [UInt64](repeating: 0, count: 29)).write)
        }
    }

    // MARK: Header cross-checks

    @Test func inconsistentHeadersAreRejected() throws {
        let good = try thirtyPages().header
        func header(_ mutate: (inout GpadlHeader) -> Void) -> GpadlHeader {
            var h = good
            mutate(&h)
            return h
        }
        #expect(throws: WireError.invalidField(name: "range_buflen", value: 0)) {
            try GpadlAssembler(header: header { $0.rangeBufferLength = 0 })
        }
        #expect(throws: WireError.invalidField(name: "range_buflen", value: 252)) {
            try GpadlAssembler(header: header { $0.rangeBufferLength = 252 })
        }
        #expect(throws: WireError.invalidField(name: "rangecount", value: 0)) {
            try GpadlAssembler(header: header { $0.rangeCount = 0 })
        }
        // rangecount × 8 > range_buflen: 5 ranges cannot fit 32 bytes.
        #expect(throws: WireError.invalidField(name: "rangecount", value: 5)) {
            try GpadlAssembler(header: header { $0.rangeBufferLength = 32; $0.rangeCount = 5; $0.words = [] })
        }
        // rangecount × 16 > range_buflen: every range needs its header and one PFN.
        #expect(throws: WireError.invalidField(name: "rangecount", value: 16)) {
            try GpadlAssembler(header: header { $0.rangeCount = 16 })
        }
        #expect(throws: WireError.invalidField(name: "rangecount", value: 0xFFFF)) {
            try GpadlAssembler(header: header { $0.rangeCount = 0xFFFF })
        }
    }

    @Test func aHeaderWithMoreWordsThanAnnouncedFollowsThePolicy() throws {
        // A maximum-length header for a 2-page GPADL: 3 words needed, 27 sent.
        let range = try pageRange(2)
        var header = try Gpadl.split(channel: 1, handle: 2, ranges: [range]).header
        header.words += [UInt64](repeating: 0xDEAD, count: 24)
        #expect(throws: WireError.limitExceeded(name: "GPADL words", value: 27, limit: 3)) {
            try GpadlAssembler(header: header)
        }
        let tolerant = try GpadlAssembler(header: header, excessWords: .ignore)
        #expect(tolerant.isComplete && tolerant.words.count == 3)
        #expect(try tolerant.finish() == [range])
    }

    // MARK: Bodies

    @Test func bodiesAreCheckedAgainstTheHeader() throws {
        let good = try thirtyPages()
        var assembler = try GpadlAssembler(header: good.header)
        #expect(assembler.missingWords == 4)
        #expect(throws: WireError.truncated(needed: 248, available: 216)) { try assembler.finish() }
        #expect(throws: WireError.invalidField(name: "GPADL body handle", value: 3)) {
            try assembler.append(GpadlBody(gpadl: 3, words: good.bodies[0].words))
        }
        // More words than still missing: an error, and nothing is appended.
        #expect(throws: WireError.limitExceeded(name: "GPADL words", value: 33, limit: 31)) {
            try assembler.append(GpadlBody(gpadl: 2, words: good.bodies[0].words + [0xDEAD, 0xBEEF]))
        }
        #expect(assembler.missingWords == 4)
        try assembler.append(GpadlBody(gpadl: 2, words: Array(good.bodies[0].words.prefix(1))))
        try assembler.append(GpadlBody(gpadl: 2, words: []))
        try assembler.append(GpadlBody(gpadl: 2, words: Array(good.bodies[0].words.dropFirst())))
        #expect(assembler.isComplete)
        #expect(throws: WireError.invalidField(name: "GPADL body after completion", value: 2)) {
            try assembler.append(GpadlBody(gpadl: 2, words: []))
        }
        #expect(try assembler.finish() == [try pageRange(30)])
    }

    @Test func excessBodyWordsAreDroppedOnlyWhenAskedTo() throws {
        let good = try thirtyPages()
        var padded = good.bodies[0]
        padded.words += [UInt64](repeating: 0xDEAD, count: 24)
        #expect(try GpadlAssembler.assemble(header: good.header, bodies: [padded], excessWords: .ignore)
            == [try pageRange(30)])
        #expect(throws: WireError.limitExceeded(name: "GPADL words", value: 55, limit: 31)) {
            try GpadlAssembler.assemble(header: good.header, bodies: [padded])
        }
    }

    // MARK: Range validation at the end

    @Test func rangesMustConsumeExactlyTheAnnouncedWords() throws {
        let good = try thirtyPages()
        // One word more than the ranges use.
        var longer = good.header
        longer.rangeBufferLength += 8
        #expect(throws: WireError.invalidField(name: "range_buflen", value: 256)) {
            try GpadlAssembler.assemble(header: longer, bodies: [GpadlBody(gpadl: 2, words: good.bodies[0].words + [0])])
        }
        // A range header claiming more pages than there are words.
        var big = good.header
        big.words[0] = UInt64(40 * 4096)
        #expect(throws: WireError.invalidField(name: "GPADL range PFN count", value: 40)) {
            try GpadlAssembler.assemble(header: big, bodies: good.bodies)
        }
        // Two ranges announced, one present.
        var two = good.header
        two.rangeCount = 2
        #expect(throws: WireError.invalidField(name: "rangecount", value: 2)) {
            try GpadlAssembler.assemble(header: two, bodies: good.bodies)
        }
        // Bad range headers inside a GPADL.
        var offset = good.header
        offset.words[0] = UInt64(30 * 4096) | UInt64(0x1000) << 32
        #expect(throws: WireError.invalidField(name: "byte_offset", value: 0x1000)) {
            try GpadlAssembler.assemble(header: offset, bodies: good.bodies)
        }
        var empty = good.header
        empty.words[0] = 0
        #expect(throws: WireError.invalidField(name: "byte_count", value: 0)) {
            try GpadlAssembler.assemble(header: empty, bodies: good.bodies)
        }
        // byte_count 0xFFFF_FFFF at offset 0xFFF: 1048577 pages, no overflow, more than the words.
        var huge = good.header
        huge.words[0] = 0xFFFF_FFFF | UInt64(0xFFF) << 32
        #expect(throws: WireError.invalidField(name: "GPADL range PFN count", value: 1_048_577)) {
            try GpadlAssembler.assemble(header: huge, bodies: good.bodies)
        }
        // A byte count needing fewer PFNs than sent leaves words over.
        var small = good.header
        small.words[0] = UInt64(29 * 4096)
        #expect(throws: WireError.invalidField(name: "range_buflen", value: 248)) {
            try GpadlAssembler.assemble(header: small, bodies: good.bodies)
        }
    }
}
