import Testing
import VMBusWire

/// The range of 03 §4's worked example: 0x2000 bytes starting 0x100 bytes into page 0x1234.
func makeWorkedRange() throws -> GpaRange { try GpaRange(gpa: 0x1234 << 12 | 0x100, length: 0x2000) }

/// One packet of every kind and flavour, built by the encoders.
func packetSamples() throws -> [(name: String, bytes: [UInt8])] {
    let workedRange = try makeWorkedRange()
    let payload40 = [UInt8](1...40)
    let onePage = try GpaRange(byteCount: 100, byteOffset: 8, pfns: [7])
    return [
        ("in-band", try PacketEncoder.inBand(payload: [UInt8](1...100), transactionID: 0x1122)),
        ("in-band empty", try PacketEncoder.inBand(payload: [UInt8]())),
        ("in-band request", try PacketEncoder.inBand(payload: payload40, flags: .completionRequested, transactionID: 3)),
        ("completion", try PacketEncoder.completion(payload: [UInt8](1...13), transactionID: 9)),
        ("gpa-direct mpb", try PacketEncoder.gpaDirect(ranges: [workedRange, onePage], payload: payload40, transactionID: 5)),
        ("gpa-direct page buffer", try PacketEncoder.pageBuffer(ranges: [onePage, onePage], payload: payload40, transactionID: 6)),
        ("gpa-direct multipage", try PacketEncoder.multipage(range: workedRange, payload: payload40, transactionID: 7)),
        ("gpa-direct multipage full array", try PacketEncoder.multipage(
            range: workedRange, payload: payload40, transactionID: 7, fullPFNArray: true)),
        ("transfer pages", try PacketEncoder.transferPages(
            setID: TransferPagePacket.netvscReceiveBufferID,
            ranges: [.init(byteCount: 1500, byteOffset: 0), .init(byteCount: 60, byteOffset: 4096)],
            payload: payload40, transactionID: 8)),
        ("transfer pages, no range", try PacketEncoder.transferPages(setID: 1, ranges: [], payload: [9], transactionID: 2)),
        ("unknown type", try PacketEncoder.simple(PacketType(rawValue: 0x77), payload: [1, 2, 3],
                                                  flags: PacketFlags(rawValue: 0x8001), transactionID: 1)),
    ]
}

/// The GPA-direct packet inside `bytes`, or a recorded issue.
func parseGpaDirect(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws -> GpaDirectPacket? {
    guard case .gpaDirect(let packet) = try VMBusPacket.parse(bytes) else {
        Issue.record("not a GPA-direct packet", sourceLocation: sourceLocation)
        return nil
    }
    return packet
}

@Suite struct PacketTests {
    // MARK: Golden vectors from the spec's worked examples

    /// 02 §5.1: a 100-byte in-band packet is 120 bytes (len8 15), 128 ring bytes.
    @Test func hundredByteInBandPacketOfSpec02() throws {
        let payload = [UInt8](repeating: 0xAB, count: 100)
        let bytes = try PacketEncoder.inBand(payload: payload, transactionID: 0x0102_0304)
        let expected: [UInt8] = [6, 0, 2, 0, 15, 0, 0, 0, 4, 3, 2, 1, 0, 0, 0, 0] + payload + [0, 0, 0, 0]
        #expect(bytes == expected)
        let descriptor = try VMBusPacket.parse(bytes).descriptor
        #expect(descriptor.len8 == 15 && descriptor.totalLength == 120)
        #expect(descriptor.ringBytes == 128 && descriptor.payloadOffset == 16 && descriptor.payloadLength == 104)
        #expect(PacketSize.inBand(payload: 100) == 120 && PacketSize.ringBytes(length: 120) == 128)
    }

    /// 03 §3: a 40-byte request with completion requested is len8 7 (56 bytes), 64 ring bytes.
    @Test func fortyByteRequestOfSpec03() throws {
        let payload = [UInt8](1...40)
        let bytes = try PacketEncoder.inBand(payload: payload, flags: .completionRequested, transactionID: 3)
        #expect(bytes == [6, 0, 2, 0, 7, 0, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0] + payload)
        #expect(PacketSize.inBand(payload: 40) == 56)
        #expect(PacketSize.ringBytes(length: PacketSize.inBand(payload: 40)) == 64)
        guard case .inBand(let descriptor, let parsed) = try VMBusPacket.parse(bytes) else {
            Issue.record("not in-band")
            return
        }
        #expect(descriptor.flags == .completionRequested && descriptor.transactionID == 3 && Array(parsed) == payload)
    }

    /// 03 §4: 0x2000 bytes at offset 0x100 span 3 PFNs; descriptor 56 bytes (offset8 7); with a
    /// 40-byte request 96 bytes (len8 12), 104 ring bytes.
    @Test func gpaDirectWorkedExampleOfSpec03() throws {
        let range = try makeWorkedRange()
        #expect(range.pfns == [0x1234, 0x1235, 0x1236] && range.byteOffset == 0x100 && range.byteCount == 0x2000)
        #expect(range.wireSize == 32 && GpaRange.wireSize(pageCount: 3) == 32)
        let payload = [UInt8](1...40)
        let bytes = try PacketEncoder.gpaDirect(ranges: [range], payload: payload, transactionID: 0x1122_3344_5566_7788)
        let expected: [UInt8] = [
            0x09, 0x00, 0x07, 0x00, 0x0C, 0x00, 0x01, 0x00, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
            0, 0, 0, 0, 1, 0, 0, 0,  // reserved, range_cnt 1
            0x00, 0x20, 0, 0, 0x00, 0x01, 0, 0,  // byte_count 0x2000, byte_offset 0x100
            0x34, 0x12, 0, 0, 0, 0, 0, 0, 0x35, 0x12, 0, 0, 0, 0, 0, 0, 0x36, 0x12, 0, 0, 0, 0, 0, 0,
        ] + payload
        #expect(bytes == expected)
        guard let packet = try parseGpaDirect(bytes) else { return }
        #expect(packet.descriptor.offset8 == 7 && packet.descriptor.len8 == 12 && packet.descriptor.ringBytes == 104)
        #expect(packet.ranges == [range] && Array(packet.payload) == payload && packet.rangeAreaLayout == .compact)
        #expect(PacketSize.gpaDirect(ranges: [range], payload: 40) == 96)
    }

    /// 03 §5: two transfer-page ranges make a 40-byte descriptor area, offset8 5.
    @Test func transferPageExampleOfSpec03() throws {
        let ranges = [TransferPageRange(byteCount: 1514, byteOffset: 0x10), TransferPageRange(byteCount: 60, byteOffset: 0x800)]
        let bytes = try PacketEncoder.transferPages(setID: 0xCAFE, ranges: ranges, payload: [UInt8](), transactionID: 0x42)
        #expect(bytes == [
            0x07, 0x00, 0x05, 0x00, 0x05, 0x00, 0x01, 0x00, 0x42, 0, 0, 0, 0, 0, 0, 0,
            0xFE, 0xCA, 0, 0, 2, 0, 0, 0,
            0xEA, 0x05, 0, 0, 0x10, 0, 0, 0, 0x3C, 0, 0, 0, 0x00, 0x08, 0, 0,
        ])
        #expect(PacketSize.transferPages(count: 2, payload: 0) == 40)
        guard case .transferPages(let packet) = try VMBusPacket.parse(bytes) else {
            Issue.record("not transfer pages")
            return
        }
        #expect(packet.descriptor.offset8 == 5 && packet.transferPageSetID == 0xCAFE && packet.ranges == ranges)
        #expect(packet.payload.isEmpty && packet.senderOwnsSet == 0 && packet.reserved == 0)
    }

    // MARK: Types, flags and the descriptor

    @Test func packetTypesHaveTheirSpecValues() {
        let named: [PacketType] = [
            .invalid, .synch, .addTransferPageSet, .removeTransferPageSet, .establishGpadl, .teardownGpadl,
            .dataInBand, .dataUsingTransferPages, .dataUsingGpadl, .dataUsingGpaDirect, .cancelRequest, .completion,
            .dataUsingAdditionalPacket, .additionalData,
        ]
        #expect(named.map(\.rawValue) == Array(0...0xD))
        #expect(named.filter(\.isExchanged) == [.dataInBand, .dataUsingTransferPages, .dataUsingGpaDirect, .completion])
        #expect(PacketType.exchanged == named.filter(\.isExchanged))
        #expect(!PacketType(rawValue: 0xFFFF).isExchanged)
    }

    @Test func flagsKeepUnknownBits() {
        let flags = PacketFlags(rawValue: 0xF001)
        #expect(flags.contains(.completionRequested) && flags.rawValue == 0xF001)
        #expect(flags.subtracting(.known).rawValue == 0xF000)
        #expect(PacketFlags.completionRequested.rawValue == 1)
    }

    @Test func descriptorConstantsMatchTheSpec() {
        #expect(PacketDescriptor.wireSize == 16 && PacketDescriptor.trailerSize == 8)
        #expect(PacketDescriptor.maximumPacketLength == 524_280)
        #expect(PacketDescriptor.noRequestor == 0xFFFF_FFFF_FFFF_FFFF)
        #expect(PacketDescriptor.requestError == 0xFFFF_FFFF_FFFF_FFFE)
        #expect(PacketDescriptor.requestAddressAny == 0xFFFF_FFFF_FFFF_FFFF)
        #expect(PacketDescriptor.requestNoResponse == 0xFFFF_FFFF_FFFF_FFFD)
        #expect(PacketDescriptor.requestInit == 0xFFFF_FFFF_FFFF_FFFD)
        #expect(PacketDescriptor.requestReset == 0xFFFF_FFFF_FFFF_FFFC)
        #expect(PacketDescriptor.unsolicited == 0)
        #expect(GpaDirectPacket.headerSize == 24 && TransferPagePacket.headerSize == 24)
        #expect(GpaDirectPacket.maximumPageBufferAreaEnd == 536 && GpaDirectPacket.maximumMultipageAreaEnd == 288)
    }

    @Test func descriptorWordsAreTheWireBytes() throws {
        let descriptor = PacketDescriptor(
            type: .dataInBand, offset8: 2, len8: 15, flags: PacketFlags(rawValue: 0x8001), transactionID: 0xABCD)
        #expect(descriptor.words.0 == 0x8001_000F_0002_0006 && descriptor.words.1 == 0xABCD)
        var writer = WireWriter()
        descriptor.write(to: &writer)
        #expect(writer.bytes == [6, 0, 2, 0, 15, 0, 1, 0x80, 0xCD, 0xAB, 0, 0, 0, 0, 0, 0])
        var reader = WireReader(writer.bytes)
        #expect(try reader.readUInt64() == descriptor.words.0 && reader.remaining == 8)
        #expect(try PacketDescriptor(words: descriptor.words) == descriptor)
        var fromBytes = WireReader(writer.bytes)
        #expect(try PacketDescriptor(from: &fromBytes) == descriptor && fromBytes.remaining == 0)
    }

    @Test func descriptorsWithImpossibleLengthsAreRejected() {
        #expect(throws: WireError.invalidField(name: "offset8", value: 0)) {
            try PacketDescriptor(words: (0x0002_0000_0006, 0))
        }
        #expect(throws: WireError.invalidField(name: "offset8", value: 1)) {
            try PacketDescriptor(words: (0x0002_0001_0006, 0))
        }
        #expect(throws: WireError.invalidField(name: "len8", value: 2)) {
            try PacketDescriptor(words: (0x0002_0003_0006, 0))
        }
        // len8 == offset8: a packet with an empty payload is fine.
        #expect(throws: Never.self) { try PacketDescriptor(words: (0x0003_0003_0006, 0)) }
    }

    // MARK: Round trips

    @Test func everyKindAndFlavourRoundTripsExactly() throws {
        for sample in try packetSamples() {
            let packet = try VMBusPacket.parse(sample.bytes)
            #expect(sample.bytes.count % 8 == 0 && packet.descriptor.totalLength == sample.bytes.count, "\(sample.name)")
            #expect(try packet.encode() == sample.bytes, "\(sample.name)")
            #expect(try VMBusPacket.parse(try packet.encode()) == packet, "\(sample.name)")
        }
    }

    @Test func parsingASliceKeepsItsIndices() throws {
        let bytes = try PacketEncoder.inBand(payload: [1, 2, 3], transactionID: 1)
        let framed = [0xEE, 0xEE] + bytes + [0xEE]
        guard case .inBand(_, let payload) = try VMBusPacket.parse(framed[2..<(2 + bytes.count)]) else {
            Issue.record("not in-band")
            return
        }
        #expect(payload.startIndex == 18 && Array(payload) == [1, 2, 3, 0, 0, 0, 0, 0])
    }

    @Test func unknownTypesAndFlagsSurviveARoundTrip() throws {
        let bytes = try PacketEncoder.simple(PacketType(rawValue: 0x77), payload: [1, 2, 3],
                                             flags: PacketFlags(rawValue: 0x8001), transactionID: 1)
        guard case .other(let descriptor, let body) = try VMBusPacket.parse(bytes) else {
            Issue.record("not other")
            return
        }
        #expect(descriptor.type.rawValue == 0x77 && descriptor.flags.rawValue == 0x8001)
        #expect(Array(body) == [1, 2, 3, 0, 0, 0, 0, 0])
        #expect(try VMBusPacket.other(descriptor, body: body).encode() == bytes)
        // A known type with an unknown flag is parsed normally and keeps the flag.
        let flagged = try PacketEncoder.simple(.completion, payload: [4], flags: PacketFlags(rawValue: 0x0100),
                                               transactionID: 2)
        #expect(try VMBusPacket.parse(flagged).descriptor.flags.rawValue == 0x0100)
        #expect(try VMBusPacket.parse(flagged).encode() == flagged)
    }

    // MARK: Strict parsing (02 §9.3)

    @Test func strictParsingMirrorsOpenVMM() throws {
        for sample in try packetSamples() where sample.name != "unknown type" {
            #expect(throws: Never.self, "\(sample.name)") { try VMBusPacket.parse(sample.bytes, strict: true) }
            #expect(try VMBusPacket.parse(sample.bytes).descriptor.isStrictlyValid, "\(sample.name)")
        }
        for raw in [0, 1, 2, 3, 4, 5, 8, 0xA, 0xC, 0xD, 0xFFFF] as [UInt16] {
            let bytes = try PacketEncoder.simple(PacketType(rawValue: raw), payload: [1], flags: [], transactionID: 0)
            #expect(throws: WireError.unknownType(UInt32(raw))) { try VMBusPacket.parse(bytes, strict: true) }
            #expect(throws: Never.self) { try VMBusPacket.parse(bytes) }
        }
        let flagged = try PacketEncoder.simple(.dataInBand, payload: [1], flags: PacketFlags(rawValue: 3), transactionID: 1)
        #expect(throws: WireError.invalidField(name: "packet flags", value: 3)) {
            try VMBusPacket.parse(flagged, strict: true)
        }
        let parsedFlagged = try VMBusPacket.parse(flagged)
        #expect(!parsedFlagged.descriptor.isStrictlyValid)
        let thinTransfer = PacketDescriptor(type: .dataUsingTransferPages, offset8: 2, len8: 2)
        #expect(throws: WireError.invalidField(name: "offset8", value: 2)) { try thinTransfer.validateStrictly() }
        // Truncation is still reported as such under strict parsing.
        let request = try PacketEncoder.inBand(payload: [UInt8](1...40), flags: .completionRequested, transactionID: 3)
        #expect(throws: WireError.truncated(needed: 40, available: 39)) {
            try VMBusPacket.parse(request.dropLast(), strict: true)
        }
    }

    // MARK: Encoders and sizes

    @Test func sizeHelpersAgreeWithTheEncoders() throws {
        let range = try makeWorkedRange()
        let page = try GpaRange(byteCount: 10, byteOffset: 0, pfns: [1])
        for payload in 0...17 {
            let bytes = [UInt8](repeating: 0x5A, count: payload)
            #expect(try PacketEncoder.inBand(payload: bytes).count == PacketSize.inBand(payload: payload))
            #expect(try PacketEncoder.gpaDirect(ranges: [range, page], payload: bytes, transactionID: 1).count
                == PacketSize.gpaDirect(ranges: [range, page], payload: payload))
            #expect(try PacketEncoder.pageBuffer(ranges: [page, page, page], payload: bytes, transactionID: 1).count
                == PacketSize.pageBuffer(count: 3, payload: payload))
            #expect(try PacketEncoder.multipage(range: range, payload: bytes, transactionID: 1).count
                == PacketSize.multipage(pageCount: 3, payload: payload))
            #expect(try PacketEncoder.multipage(range: range, payload: bytes, transactionID: 1, fullPFNArray: true).count
                == PacketSize.multipage(pageCount: 3, payload: payload, fullPFNArray: true))
            #expect(try PacketEncoder.transferPages(setID: 1, ranges: [.init(byteCount: 1, byteOffset: 0)], payload: bytes,
                                                    transactionID: 1).count
                == PacketSize.transferPages(count: 1, payload: payload))
        }
    }

    @Test func linuxFlavoursHaveTheirLayouts() throws {
        let range = try makeWorkedRange()
        // Linux trims the multipage array to the PFNs in use: the same bytes as a one-range MPB.
        let trimmed = try PacketEncoder.multipage(range: range, payload: [UInt8](), transactionID: 1)
        #expect(trimmed == (try PacketEncoder.gpaDirect(ranges: [range], payload: [UInt8](), transactionID: 1)))
        // The untrimmed struct: 24 + 8 + 32 × 8 = 288 bytes = MAX_MULTIPAGE_BUFFER_PACKET.
        let full = try PacketEncoder.multipage(range: range, payload: [7], transactionID: 1, fullPFNArray: true)
        guard let packet = try parseGpaDirect(full) else { return }
        #expect(packet.descriptor.offset8 == 36 && packet.descriptor.len8 == 37 && packet.ranges == [range])
        #expect(packet.rangeAreaLayout == .fullMultipageArray && packet.hasPaddedRangeArea)
        #expect(full[56..<288].allSatisfy { $0 == 0 } && Array(packet.payload) == [7, 0, 0, 0, 0, 0, 0, 0])
        // 32 page buffers: 0x18 + 32 × 16 = 536 = MAX_PAGE_BUFFER_PACKET.
        let page = try GpaRange(byteCount: 4096, byteOffset: 0, pfns: [1])
        let pages = try PacketEncoder.pageBuffer(ranges: Array(repeating: page, count: 32), payload: [UInt8](),
                                                 transactionID: 1)
        #expect(pages.count == GpaDirectPacket.maximumPageBufferAreaEnd)
        #expect(try parseGpaDirect(pages)?.rangeAreaLayout == .compact)
    }

    @Test func slackAfterTheRangesIsToleratedAndRecorded() throws {
        let range = try GpaRange(byteCount: 100, byteOffset: 0, pfns: [5])
        // 24 + 16 bytes of range, then 16 bytes of slack before the payload at 56.
        let descriptor = PacketDescriptor(type: .dataUsingGpaDirect, offset8: 7, len8: 8, flags: .completionRequested,
                                          transactionID: 4)
        let bytes = try VMBusPacket.gpaDirect(
            GpaDirectPacket(descriptor: descriptor, ranges: [range], payload: [1, 2, 3, 4, 5, 6, 7, 8])).encode()
        #expect(bytes.count == 64 && bytes[40..<56].allSatisfy { $0 == 0 })
        guard let packet = try parseGpaDirect(bytes) else { return }
        #expect(packet.rangeAreaLayout == .padded(slackBytes: 16) && packet.ranges == [range])
        #expect(Array(packet.payload) == [1, 2, 3, 4, 5, 6, 7, 8])
    }

    @Test func encodersRefuseWhatTheWireCannotCarry() throws {
        #expect(throws: WireError.limitExceeded(name: "packet length", value: 524_288, limit: 524_280)) {
            try PacketEncoder.inBand(payload: [UInt8](repeating: 0, count: 524_265))
        }
        #expect(try PacketEncoder.inBand(payload: [UInt8](repeating: 0, count: 524_264)).count == 524_280)
        let range = try makeWorkedRange()
        let page = try GpaRange(byteCount: 4096, byteOffset: 0, pfns: [1])
        #expect(throws: WireError.limitExceeded(name: "page buffer count", value: 33, limit: 32)) {
            try PacketEncoder.pageBuffer(ranges: Array(repeating: page, count: 33), payload: [UInt8](), transactionID: 1)
        }
        #expect(throws: WireError.invalidField(name: "page buffer PFN count", value: 3)) {
            try PacketEncoder.pageBuffer(ranges: [range], payload: [UInt8](), transactionID: 1)
        }
        let big = try GpaRange(byteCount: 33 * 4096, byteOffset: 0, pfns: Array(1...33))
        #expect(throws: WireError.limitExceeded(name: "multipage PFN count", value: 33, limit: 32)) {
            try PacketEncoder.multipage(range: big, payload: [UInt8](), transactionID: 1)
        }
        #expect(throws: WireError.invalidField(name: "range_cnt", value: 0)) {
            try PacketEncoder.gpaDirect(ranges: [], payload: [UInt8](), transactionID: 1)
        }
        // 65534 transfer-page ranges would need len8 65537.
        let many = [TransferPageRange](repeating: .init(byteCount: 1, byteOffset: 0), count: 65_534)
        #expect(throws: WireError.limitExceeded(name: "packet length", value: 524_296, limit: 524_280)) {
            try PacketEncoder.transferPages(setID: 1, ranges: many, payload: [UInt8](), transactionID: 1)
        }
    }

    @Test func handBuiltPacketsWithWrongLengthsDoNotEncode() throws {
        let short = PacketDescriptor(type: .dataInBand, offset8: 2, len8: 2)
        #expect(throws: WireError.invalidField(name: "len8", value: 2)) {
            try VMBusPacket.inBand(short, payload: [1]).encode()
        }
        let range = try makeWorkedRange()
        let tooSmall = PacketDescriptor(type: .dataUsingGpaDirect, offset8: 4, len8: 8)
        #expect(throws: WireError.invalidField(name: "offset8", value: 4)) {
            try VMBusPacket.gpaDirect(GpaDirectPacket(descriptor: tooSmall, ranges: [range], payload: [])).encode()
        }
    }
}
