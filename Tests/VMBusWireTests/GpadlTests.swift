import Testing
import VMBusWire

/// A single range of `pages` whole pages starting at PFN `firstPFN`.
func pageRange(_ pages: Int, firstPFN: UInt64 = 0x100) throws -> GpaRange {
    try GpaRange(byteCount: UInt32(pages * 4096), byteOffset: 0, pfns: (0..<UInt64(pages)).map { firstPFN + $0 })
}

@Suite struct GpadlTests {
    @Test func messageConstantsMatchTheSpec() {
        #expect(GpadlHeader.messageType == 8 && GpadlBody.messageType == 9)
        #expect(GpadlHeader.fixedSize == 20 && GpadlBody.fixedSize == 16)
        #expect(GpadlHeader.maximumWords == 27 && GpadlBody.maximumWords == 28)
        #expect(Gpadl.maximumWords == 8191 && GpadlAssembler.maximumWords == 8191)
        #expect(Gpadl.maximumRangeCount == 4095)
    }

    /// 04 §4's table: pages → PFNs in the header, body messages, PFNs in the last body.
    @Test(arguments: [(8, 8, 0, 0), (12, 12, 0, 0), (64, 26, 2, 10), (1026, 26, 36, 20), (4096, 26, 146, 10)])
    func splitMatchesTheTableOfSpec04(_ row: (pages: Int, headerPFNs: Int, bodies: Int, lastPFNs: Int)) throws {
        let range = try pageRange(row.pages)
        let (header, bodies) = try Gpadl.split(channel: 7, handle: 0xE1E10, ranges: [range])
        #expect(header.words.count - 1 == row.headerPFNs)
        #expect(header.words.first == UInt64(row.pages * 4096))
        #expect(bodies.count == row.bodies)
        #expect(bodies.dropLast().allSatisfy { $0.words.count == 28 })
        if let last = bodies.last { #expect(last.words.count == row.lastPFNs) }
        #expect(Int(header.rangeBufferLength) == 8 + 8 * row.pages && header.rangeCount == 1)
        #expect(header.childRelID == 7 && header.gpadl == 0xE1E10)
        #expect(bodies.allSatisfy { $0.gpadl == 0xE1E10 && $0.messageNumber == 0 })
        // Message sizes (04 §4 step 2, 3): header 28 + 8 × PFNs, bodies 16 + 8 × n, within 240.
        #expect(try written(header.write).count + 8 == 28 + 8 * row.headerPFNs)
        for body in bodies {
            let size = try written(body.write).count + 8
            #expect(size == 16 + 8 * body.words.count && size <= 240)
        }
        #expect(try GpadlAssembler.assemble(header: header, bodies: bodies) == [range])
    }

    @Test func headerAndBodyBytesSitAtTheirSpecOffsets() throws {
        let (header, _) = try Gpadl.split(channel: 0x0A0B_0C0D, handle: 0xE1E10, ranges: [try pageRange(1)])
        // child_relid, gpadl, range_buflen 16, rangecount 1, range header (4096, 0), PFN 0x100.
        #expect(try written(header.write) == [
            0x0D, 0x0C, 0x0B, 0x0A, 0x10, 0x1E, 0x0E, 0x00, 16, 0, 1, 0,
            0x00, 0x10, 0, 0, 0, 0, 0, 0, 0x00, 0x01, 0, 0, 0, 0, 0, 0,
        ])
        let body = GpadlBody(messageNumber: 5, gpadl: 0xE1E10, words: [0x1122_3344_5566_7788])
        #expect(try written(body.write) == [5, 0, 0, 0, 0x10, 0x1E, 0x0E, 0, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
        var reader = WireReader(try written(body.write))
        #expect(try GpadlBody(from: &reader) == body && reader.remaining == 0)
        var headerReader = WireReader(try written(header.write))
        #expect(try GpadlHeader(from: &headerReader) == header)
    }

    @Test func multiRangeListsSplitAndReassemble() throws {
        let ranges = [try pageRange(30), try GpaRange(gpa: 0x7_0123, length: 9000), try pageRange(1, firstPFN: 9),
                      try pageRange(40, firstPFN: 0x9000)]
        let (header, bodies) = try Gpadl.split(channel: 3, handle: 42, ranges: ranges)
        let words = Gpadl.words(ranges)
        #expect(words.count == 31 + 4 + 2 + 41)
        #expect(header.rangeCount == 4 && Int(header.rangeBufferLength) == 8 * words.count)
        #expect(header.words + bodies.flatMap(\.words) == words)
        #expect(header.words.count == 27 && bodies.map(\.words.count) == [28, 23])
        // Through the wire form of each message and back, as a host receives them.
        var headerReader = WireReader(try written(header.write))
        var assembler = try GpadlAssembler(header: try GpadlHeader(from: &headerReader, trailingBytes: .reject))
        for body in bodies {
            #expect(!assembler.isComplete)
            var reader = WireReader(try written(body.write))
            try assembler.append(try GpadlBody(from: &reader, trailingBytes: .reject))
        }
        #expect(assembler.isComplete && assembler.missingWords == 0)
        #expect(assembler.childRelID == 3 && assembler.gpadl == 42 && assembler.rangeCount == 4)
        #expect(try assembler.finish() == ranges)
    }

    @Test func theLargestListSplitsAndReassembles() throws {
        // 8190 PFNs + 1 header word = 8191 words = 65528 bytes, the most range_buflen can say.
        let range = try pageRange(8190)
        let (header, bodies) = try Gpadl.split(channel: 1, handle: 1, ranges: [range])
        #expect(header.rangeBufferLength == 65528 && bodies.count == 292)
        #expect(try GpadlAssembler.assemble(header: header, bodies: bodies) == [range])
        #expect(throws: WireError.limitExceeded(name: "range_buflen", value: 65536, limit: 65528)) {
            try Gpadl.split(channel: 1, handle: 1, ranges: [try pageRange(8191)])
        }
        #expect(throws: WireError.invalidField(name: "rangecount", value: 0)) {
            try Gpadl.split(channel: 1, handle: 1, ranges: [])
        }
    }

    @Test func rangesFromWordsReadsExactly() throws {
        let ranges = [try pageRange(2), try GpaRange(byteCount: 0x20, byteOffset: 0xFF0, pfns: [3, 4])]
        let words = Gpadl.words(ranges)
        #expect(words == [8192, 0x100, 0x101, 0x0000_0FF0_0000_0020, 3, 4])
        #expect(try Gpadl.ranges(fromWords: words[...], rangeCount: 2) == ranges)
        #expect(throws: WireError.invalidField(name: "range_buflen", value: 48)) {
            try Gpadl.ranges(fromWords: words[...], rangeCount: 1)
        }
        #expect(throws: WireError.invalidField(name: "rangecount", value: 3)) {
            try Gpadl.ranges(fromWords: words[...], rangeCount: 3)
        }
        #expect(throws: WireError.invalidField(name: "rangecount", value: 0)) {
            try Gpadl.ranges(fromWords: words[...], rangeCount: 0)
        }
    }
}
