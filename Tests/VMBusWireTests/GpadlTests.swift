import Testing
import VMBusWire

/// A single range of `pages` whole pages starting at PFN 0x100.
func pageRange(_ pages: Int, firstPFN: UInt64 = 0x100) throws -> GpaRange {
    try GpaRange(byteCount: UInt32(pages * 4096), byteOffset: 0, pfns: (0..<UInt64(pages)).map { firstPFN + $0 })
}

@Suite struct GpadlTests {
    /// 04 §4's table: pages → PFNs in the header, body messages, PFNs in the last body.
    @Test(arguments: [(8, 8, 0, 0), (12, 12, 0, 0), (64, 26, 2, 10), (1026, 26, 36, 20), (4096, 26, 146, 10)])
    func splitMatchesTheTableOfSpec04(_ row: (pages: Int, headerPFNs: Int, bodies: Int, lastPFNs: Int)) throws {
        let (header, bodies) = try Gpadl.split(channel: 7, handle: 0xE1E10, ranges: [try pageRange(row.pages)])
        #expect(header.words.count - 1 == row.headerPFNs)
        #expect(bodies.count == row.bodies)
        if let last = bodies.last { #expect(last.words.count == row.lastPFNs) }
        #expect(Int(header.rangeBufferLength) == 8 + 8 * row.pages && header.rangeCount == 1)
        // Message sizes: header 28 + 8 × PFNs, bodies 16 + 8 × n, all within 240.
        let headerBytes = try ChannelMessage.gpadlHeader(header).encode()
        #expect(headerBytes.count == 28 + 8 * row.headerPFNs)
        for body in bodies {
            let bytes = try ChannelMessage.gpadlBody(body).encode()
            #expect(bytes.count == 16 + 8 * body.words.count && bytes.count <= 240)
        }
        #expect(try GpadlAssembler.assemble(header: header, bodies: bodies, excessWords: .reject)
            == [try pageRange(row.pages)])
    }

    @Test func multiRangeListsSurviveMessagesAndReassembly() throws {
        let ranges = [try pageRange(30), try GpaRange(gpa: 0x7_0123, length: 9000), try pageRange(1, firstPFN: 9)]
        let (header, bodies) = try Gpadl.split(channel: 3, handle: 42, ranges: ranges)
        #expect(header.rangeCount == 3 && Int(header.rangeBufferLength) == 8 * Gpadl.words(ranges).count)
        // Through the channel-message dispatch and back, as a host would receive them.
        let received = try ([ChannelMessage.gpadlHeader(header)] + bodies.map { .gpadlBody($0) }).map {
            try ChannelMessage.parse(try $0.encode(), version: .win10_5_3, trailingBytes: .reject)
        }
        guard case .gpadlHeader(let h) = received[0] else {
            Issue.record("first message is not a header")
            return
        }
        var assembler = try GpadlAssembler(header: h)
        for message in received.dropFirst() {
            guard case .gpadlBody(let body) = message else {
                Issue.record("not a body")
                return
            }
            #expect(!assembler.isComplete)
            try assembler.append(body)
        }
        #expect(assembler.isComplete && assembler.childRelID == 3 && assembler.gpadl == 42)
        #expect(try assembler.finish() == ranges)
    }

    @Test func headerFieldsSitAtTheirSpecOffsets() throws {
        let (header, _) = try Gpadl.split(channel: 0x0A0B_0C0D, handle: 0xE1E10, ranges: [try pageRange(1)])
        let bytes = try ChannelMessage.gpadlHeader(header).encode()
        #expect(Array(bytes) == [8, 0, 0, 0, 0, 0, 0, 0, 0x0D, 0x0C, 0x0B, 0x0A, 0x10, 0x1E, 0x0E, 0,
                                 16, 0, 1, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    }

    @Test func partialWordsAreIgnoredOrRejectedByPolicy() throws {
        // UEFI sends maximum-length messages: 240 bytes leave 4 bytes that are not a word.
        let (header, _) = try Gpadl.split(channel: 1, handle: 2, ranges: [try pageRange(26)])
        let bytes = try ChannelMessage.gpadlHeader(header).encode() + [0xEE, 0xEE, 0xEE, 0xEE]
        #expect(bytes.count == 240)
        #expect(try ChannelMessage.parse(bytes, version: .win8) == .gpadlHeader(header))
        #expect(throws: WireError.trailingBytes(count: 4)) {
            try ChannelMessage.parse(bytes, version: .win8, trailingBytes: .reject)
        }
        for length in 0..<20 {
            let error = wireError { () throws(WireError) in try ChannelMessage.parse(bytes[0..<length], version: .win8) }
            #expect(isTruncated(error), "prefix \(length)")
        }
    }

    @Test func excessWordsFollowThePolicy() throws {
        let (header, bodies) = try Gpadl.split(channel: 1, handle: 2, ranges: [try pageRange(30)])
        var padded = bodies[0]
        padded.words += [0xDEAD, 0xBEEF]
        #expect(try GpadlAssembler.assemble(header: header, bodies: [padded]) == [try pageRange(30)])
        #expect(throws: WireError.limitExceeded(name: "GPADL words", value: 33, limit: 31)) {
            try GpadlAssembler.assemble(header: header, bodies: [padded], excessWords: .reject)
        }
    }

    @Test func hostileHeadersAndBodiesAreRejected() throws {
        let good = try Gpadl.split(channel: 1, handle: 2, ranges: [try pageRange(30)])
        func header(_ mutate: (inout GpadlHeader) -> Void) -> GpadlHeader {
            var h = good.header
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
        #expect(throws: WireError.invalidField(name: "rangecount", value: 16)) {
            try GpadlAssembler(header: header { $0.rangeCount = 16 })
        }
        var assembler = try GpadlAssembler(header: good.header)
        #expect(throws: WireError.truncated(needed: 248, available: 216)) { try assembler.finish() }
        #expect(throws: WireError.invalidField(name: "GPADL body handle", value: 3)) {
            try assembler.append(GpadlBody(gpadl: 3, words: good.bodies[0].words))
        }
        try assembler.append(good.bodies[0])
        #expect(throws: WireError.invalidField(name: "GPADL body after completion", value: 2)) {
            try assembler.append(good.bodies[0])
        }
        // Words left over after the announced ranges.
        let tooLong = header { $0.rangeBufferLength += 8 }
        #expect(throws: WireError.invalidField(name: "range_buflen", value: 256)) {
            try GpadlAssembler.assemble(header: tooLong, bodies: [GpadlBody(gpadl: 2, words: good.bodies[0].words + [0])])
        }
        // A range header claiming more pages than there are words.
        var big = good.header
        big.words[0] = UInt64(40 * 4096)
        #expect(throws: WireError.invalidField(name: "GPADL range PFN count", value: 40)) {
            try GpadlAssembler.assemble(header: big, bodies: good.bodies)
        }
        // Two ranges announced, one present.
        #expect(throws: WireError.invalidField(name: "rangecount", value: 2)) {
            try GpadlAssembler.assemble(header: header { $0.rangeCount = 2 }, bodies: good.bodies)
        }
    }

    @Test func listsTooBigForTheMessagesAreRefused() throws {
        #expect(throws: WireError.limitExceeded(name: "range_buflen", value: 65544, limit: 65528)) {
            try Gpadl.split(channel: 1, handle: 1, ranges: [try pageRange(8192)])
        }
        #expect(throws: WireError.invalidField(name: "rangecount", value: 0)) {
            try Gpadl.split(channel: 1, handle: 1, ranges: [])
        }
        var header = try Gpadl.split(channel: 1, handle: 1, ranges: [try pageRange(26)]).header
        header.words.append(0)
        #expect(throws: WireError.limitExceeded(name: "GPADL header words", value: 28, limit: 27)) {
            try ChannelMessage.gpadlHeader(header).encode()
        }
        #expect(throws: WireError.limitExceeded(name: "GPADL body words", value: 29, limit: 28)) {
            try ChannelMessage.gpadlBody(GpadlBody(gpadl: 1, words: [UInt64](repeating: 0, count: 29))).encode()
        }
    }
}
