import Testing
import VMBusWire

/// The range of 03 §4's worked example: 0x2000 bytes starting 0x100 bytes into page 0x1234.
func makeWorkedRange() throws -> GpaRange { try GpaRange(gpa: 0x1234 << 12 | 0x100, length: 0x2000) }

/// One packet of every kind and flavour, built by the encoders.
func packetSamples() throws -> [(String, [UInt8])] {
    let workedRange = try makeWorkedRange()
    let payload40 = [UInt8](1...40)
    let onePage = try GpaRange(byteCount: 100, byteOffset: 8, pfns: [7])
    return [
        ("in-band", try PacketEncoder.inBand(payload: [UInt8](1...100), transactionID: 0x1122)),
        ("in-band empty", try PacketEncoder.inBand(payload: [UInt8]())),
        ("completion", try PacketEncoder.completion(payload: [UInt8](1...13), transactionID: 9)),
        ("gpa-direct mpb", try PacketEncoder.gpaDirect(ranges: [workedRange, onePage], payload: payload40, transactionID: 5)),
        ("gpa-direct page buffer", try PacketEncoder.pageBuffer(ranges: [onePage, onePage], payload: payload40, transactionID: 6)),
        ("gpa-direct multipage", try PacketEncoder.multipage(range: workedRange, payload: payload40, transactionID: 7)),
        ("transfer pages", try PacketEncoder.transferPages(
            setID: TransferPagePacket.netvscReceiveBufferID,
            ranges: [.init(byteCount: 1500, byteOffset: 0), .init(byteCount: 60, byteOffset: 4096)],
            payload: payload40, transactionID: 8)),
        ("unknown type", try PacketEncoder.simple(PacketType(rawValue: 0x77), payload: [1, 2, 3],
                                                  flags: PacketFlags(rawValue: 0x8001), transactionID: 1)),
    ]
}

@Suite struct PacketTests {
    @Test func hundredByteInBandPacketMatchesSpec02WorkedExample() throws {
        let bytes = try PacketEncoder.inBand(payload: [UInt8](repeating: 0xAB, count: 100), transactionID: 0x0102_0304)
        #expect(bytes.count == 120)
        #expect(Array(bytes[0..<16]) == [6, 0, 2, 0, 15, 0, 0, 0, 4, 3, 2, 1, 0, 0, 0, 0])
        #expect(Array(bytes[116..<120]) == [0, 0, 0, 0])
        let descriptor = try VMBusPacket.parse(bytes).descriptor
        #expect(descriptor.len8 == 15 && descriptor.ringBytes == 128 && descriptor.payloadLength == 104)
    }

    @Test func fortyByteRequestWithCompletionIsSevenUnits() throws {
        let bytes = try PacketEncoder.inBand(payload: [UInt8](repeating: 1, count: 40),
                                             flags: .completionRequested, transactionID: 3)
        #expect(bytes.count == 56)
        #expect(Array(bytes[0..<8]) == [6, 0, 2, 0, 7, 0, 1, 0])
        #expect(PacketSize.ringBytes(length: PacketSize.inBand(payload: 40)) == 64)
    }

    @Test func gpaDirectWorkedExampleOfSpec03() throws {
        let workedRange = try makeWorkedRange()
        #expect(workedRange.pfns == [0x1234, 0x1235, 0x1236] && workedRange.byteOffset == 0x100)
        let bytes = try PacketEncoder.gpaDirect(ranges: [workedRange], payload: [UInt8](repeating: 2, count: 40),
                                                transactionID: 1)
        guard case .gpaDirect(let packet) = try VMBusPacket.parse(bytes) else {
            Issue.record("not GPA direct")
            return
        }
        #expect(packet.descriptor.offset8 == 7 && packet.descriptor.len8 == 12)
        #expect(packet.descriptor.ringBytes == 104 && packet.descriptor.flags == .completionRequested)
        #expect(packet.ranges == [workedRange] && packet.payload.count == 40 && !packet.hasPaddedRangeArea)
        // reserved, range_cnt, then byte_count 0x2000 and byte_offset 0x100.
        #expect(Array(bytes[16..<32]) == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0x20, 0, 0, 0, 1, 0, 0])
        #expect(PacketSize.gpaDirect(ranges: [workedRange], payload: 40) == 96)
    }

    @Test func transferPageExampleOfSpec03HasOffset8Five() throws {
        let bytes = try PacketEncoder.transferPages(
            setID: 0xCAFE, ranges: [.init(byteCount: 1, byteOffset: 2), .init(byteCount: 3, byteOffset: 4)],
            payload: [UInt8](), transactionID: 1)
        #expect(bytes.count == 40 && bytes[2] == 5)
        #expect(Array(bytes[16..<24]) == [0xFE, 0xCA, 0, 0, 2, 0, 0, 0])
        #expect(PacketSize.transferPages(count: 2, payload: 0) == 40)
    }

    @Test func linuxFlavoursHaveTheirFixedAreas() throws {
        let workedRange = try makeWorkedRange()
        let multipage = try PacketEncoder.multipage(range: workedRange, payload: [UInt8](), transactionID: 1)
        guard case .gpaDirect(let packet) = try VMBusPacket.parse(multipage) else {
            Issue.record("not GPA direct")
            return
        }
        // 24 + 8 + 32 × 8 = 288 bytes of descriptor: MAX_MULTIPAGE_BUFFER_PACKET.
        #expect(packet.descriptor.offset8 == 36 && packet.hasPaddedRangeArea && packet.ranges == [workedRange])
        let page = try GpaRange(byteCount: 4096, byteOffset: 0, pfns: [1])
        #expect(throws: WireError.limitExceeded(name: "page buffer count", value: 33, limit: 32)) {
            try PacketEncoder.pageBuffer(ranges: Array(repeating: page, count: 33), payload: [UInt8](), transactionID: 1)
        }
        #expect(throws: WireError.invalidField(name: "page buffer PFN count", value: 3)) {
            try PacketEncoder.pageBuffer(ranges: [workedRange], payload: [UInt8](), transactionID: 1)
        }
        // 32 page buffers: 0x18 + 32 × 16 = 536 = MAX_PAGE_BUFFER_PACKET.
        let full = try PacketEncoder.pageBuffer(ranges: Array(repeating: page, count: 32), payload: [UInt8](),
                                                transactionID: 1)
        #expect(full.count == 536)
    }

    @Test func everyKindRoundTripsExactly() throws {
        for (name, bytes) in try packetSamples() {
            let packet = try VMBusPacket.parse(bytes)
            #expect(try packet.encode() == bytes, "\(name)")
            #expect(try VMBusPacket.parse(try packet.encode()) == packet, "\(name)")
        }
    }

    @Test func everyProperPrefixIsTruncated() throws {
        for (name, bytes) in try packetSamples() {
            for length in 0..<bytes.count {
                let error = wireError { () throws(WireError) in try VMBusPacket.parse(bytes[0..<length]) }
                #expect(isTruncated(error), "\(name) prefix \(length): \(String(describing: error))")
            }
            #expect(throws: WireError.trailingBytes(count: 8)) { try VMBusPacket.parse(bytes + [0, 0, 0, 0, 0, 0, 0, 0]) }
        }
    }

    @Test func unknownTypesAndFlagsSurviveAndStrictValidationRejectsThem() throws {
        let bytes = try PacketEncoder.simple(PacketType(rawValue: 0x77), payload: [1, 2, 3],
                                             flags: PacketFlags(rawValue: 0x8001), transactionID: 1)
        guard case .other(let descriptor, let body) = try VMBusPacket.parse(bytes) else {
            Issue.record("not other")
            return
        }
        #expect(descriptor.type.rawValue == 0x77 && descriptor.flags.rawValue == 0x8001)
        #expect(Array(body) == [1, 2, 3, 0, 0, 0, 0, 0])
        #expect(throws: WireError.unknownType(0x77)) { try descriptor.validateStrictly() }
        var inBand = try VMBusPacket.parse(try PacketEncoder.inBand(payload: [1])).descriptor
        try inBand.validateStrictly()
        inBand.flags = PacketFlags(rawValue: 2)
        #expect(throws: WireError.invalidField(name: "packet flags", value: 2)) { try inBand.validateStrictly() }
    }

    @Test func descriptorWordsAreTheWireBytes() throws {
        let descriptor = PacketDescriptor(type: .completion, offset8: 2, len8: 9, flags: [], transactionID: 0xABCD)
        var writer = WireWriter()
        descriptor.write(to: &writer)
        var reader = WireReader(writer.bytes)
        let word0 = try reader.readUInt64()
        let word1 = try reader.readUInt64()
        #expect(word0 == descriptor.words.0 && word1 == descriptor.words.1)
        #expect(try PacketDescriptor(words: descriptor.words) == descriptor)
    }

    @Test func hostileDescriptorsAreRejectedWithTheirField() throws {
        let workedRange = try makeWorkedRange()
        func packet(_ mutate: (inout [UInt8]) -> Void) throws -> [UInt8] {
            var bytes = try PacketEncoder.gpaDirect(ranges: [workedRange], payload: [UInt8](repeating: 0, count: 8),
                                                    transactionID: 1)
            mutate(&bytes)
            return bytes
        }
        #expect(throws: WireError.invalidField(name: "offset8", value: 1)) { try VMBusPacket.parse(try packet { $0[2] = 1 }) }
        #expect(throws: WireError.invalidField(name: "len8", value: 6)) { try VMBusPacket.parse(try packet { $0[4] = 6 }) }
        #expect(throws: WireError.invalidField(name: "range_cnt", value: 0)) {
            try VMBusPacket.parse(try packet { $0[20] = 0 })
        }
        #expect(throws: WireError.invalidField(name: "range_cnt", value: 0xFFFF_FFFF)) {
            try VMBusPacket.parse(try packet { $0.replaceSubrange(20..<24, with: [0xFF, 0xFF, 0xFF, 0xFF]) })
        }
        #expect(throws: WireError.invalidField(name: "byte_offset", value: 0x1000)) {
            try VMBusPacket.parse(try packet { $0.replaceSubrange(28..<32, with: [0, 0x10, 0, 0]) })
        }
        #expect(throws: WireError.invalidField(name: "byte_count", value: 0)) {
            try VMBusPacket.parse(try packet { $0.replaceSubrange(24..<28, with: [0, 0, 0, 0]) })
        }
        // A byte count needing more PFNs than the area holds runs into the payload.
        #expect(throws: WireError.invalidField(name: "GPA range extends past offset8", value: 7)) {
            try VMBusPacket.parse(try packet { $0.replaceSubrange(24..<28, with: [0, 0, 1, 0]) })
        }
        // Extension area too small for a GPA-direct header.
        let tiny = try PacketEncoder.simple(.dataUsingGpaDirect, payload: [UInt8](repeating: 0, count: 8), flags: [],
                                            transactionID: 0)
        #expect(throws: WireError.invalidField(name: "offset8", value: 2)) { try VMBusPacket.parse(tiny) }
        var transfer = try PacketEncoder.transferPages(setID: 1, ranges: [.init(byteCount: 1, byteOffset: 0)],
                                                       payload: [UInt8](), transactionID: 1)
        transfer[20] = 2
        #expect(throws: WireError.invalidField(name: "range_cnt", value: 2)) { try VMBusPacket.parse(transfer) }
    }

    @Test func rangeHeadersAreValidated() throws {
        #expect(throws: WireError.invalidField(name: "PFN count", value: 2)) {
            try GpaRange(byteCount: 1, byteOffset: 0, pfns: [1, 2])
        }
        #expect(try GpaRange.pageCount(byteCount: 0xFFFF_FFFF, byteOffset: 0xFFF) == 1_048_577)
        #expect(try GpaRange.pageCount(byteCount: 4096, byteOffset: 0) == 1)
        #expect(try GpaRange.pageCount(byteCount: 4096, byteOffset: 1) == 2)
        // A range claiming more PFNs than the limit is refused before anything is allocated.
        var writer = WireWriter()
        writer.writeUInt32(0xFFFF_FFFF)
        writer.writeUInt32(0)
        var reader = WireReader(writer.bytes)
        #expect(throws: WireError.limitExceeded(name: "range PFN count", value: 1_048_576, limit: 65535)) {
            try GpaRange(from: &reader)
        }
    }

    @Test func oversizePacketsCannotBeEncoded() {
        #expect(throws: WireError.limitExceeded(name: "packet length", value: 524_288, limit: 524_280)) {
            try PacketEncoder.inBand(payload: [UInt8](repeating: 0, count: 524_272))
        }
    }
}
