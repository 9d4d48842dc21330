import Testing
import VMBusWire

/// The 03 §4 worked packet (one 3-PFN range, 8-byte payload) with `mutate` applied.
private func workedPacket(_ mutate: (inout [UInt8]) -> Void) throws -> [UInt8] {
    var bytes = try PacketEncoder.gpaDirect(ranges: [try makeWorkedRange()], payload: [UInt8](repeating: 0, count: 8),
                                            transactionID: 1)
    mutate(&bytes)
    return bytes
}

/// Little-endian bytes of a u32.
private func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }

@Suite struct PacketHostileInputTests {
    @Test func everyProperPrefixIsTruncated() throws {
        for sample in try packetSamples() {
            for length in 0..<sample.bytes.count {
                let error = wireError { () throws(WireError) in try VMBusPacket.parse(sample.bytes[0..<length]) }
                #expect(isTruncated(error), "\(sample.name) prefix \(length): \(String(describing: error))")
            }
        }
        // The counts say what was missing from where reading stopped.
        let bytes = try PacketEncoder.inBand(payload: [UInt8](1...40))
        #expect(throws: WireError.truncated(needed: 16, available: 15)) { try VMBusPacket.parse(bytes[0..<15]) }
        #expect(throws: WireError.truncated(needed: 40, available: 0)) { try VMBusPacket.parse(bytes[0..<16]) }
    }

    @Test func bytesBeyondLen8AreTrailing() throws {
        for sample in try packetSamples() {
            #expect(throws: WireError.trailingBytes(count: 8), "\(sample.name)") {
                try VMBusPacket.parse(sample.bytes + [UInt8](repeating: 0, count: 8))
            }
            #expect(throws: WireError.trailingBytes(count: 1), "\(sample.name)") { try VMBusPacket.parse(sample.bytes + [0]) }
        }
    }

    @Test func impossibleDescriptorLengthsNameTheirField() throws {
        #expect(throws: WireError.invalidField(name: "offset8", value: 0)) { try VMBusPacket.parse(try workedPacket { $0[2] = 0 }) }
        #expect(throws: WireError.invalidField(name: "offset8", value: 1)) { try VMBusPacket.parse(try workedPacket { $0[2] = 1 }) }
        #expect(throws: WireError.invalidField(name: "len8", value: 6)) { try VMBusPacket.parse(try workedPacket { $0[4] = 6 }) }
        #expect(throws: WireError.invalidField(name: "len8", value: 0)) { try VMBusPacket.parse(try workedPacket { $0[4] = 0 }) }
        // A huge len8 with few bytes is truncation, not an allocation.
        #expect(throws: WireError.truncated(needed: 524_264, available: 48)) {
            try VMBusPacket.parse(try workedPacket { $0[4] = 0xFF; $0[5] = 0xFF })
        }
    }

    @Test func gpaDirectRangeCountsAreBoundedByTheArea() throws {
        #expect(throws: WireError.invalidField(name: "range_cnt", value: 0)) {
            try VMBusPacket.parse(try workedPacket { $0 = patched32($0, at: 20, 0) })
        }
        // 0xFFFF_FFFF ranges are refused from the 40-byte area before any array is reserved.
        #expect(throws: WireError.invalidField(name: "range_cnt", value: 0xFFFF_FFFF)) {
            try VMBusPacket.parse(try workedPacket { $0 = patched32($0, at: 20, 0xFFFF_FFFF) })
        }
        // The area holds 32 bytes of ranges: at most 2 by size, but the second one is not there.
        #expect(throws: WireError.invalidField(name: "range_cnt", value: 3)) {
            try VMBusPacket.parse(try workedPacket { $0 = patched32($0, at: 20, 3) })
        }
        #expect(throws: WireError.invalidField(name: "GPA range extends past offset8", value: 7)) {
            try VMBusPacket.parse(try workedPacket { $0 = patched32($0, at: 20, 2) })
        }
    }

    @Test func gpaDirectRangesAreValidated() throws {
        #expect(throws: WireError.invalidField(name: "byte_offset", value: 0x1000)) {
            try VMBusPacket.parse(try workedPacket { $0 = patched32($0, at: 28, 0x1000) })
        }
        #expect(throws: WireError.invalidField(name: "byte_count", value: 0)) {
            try VMBusPacket.parse(try workedPacket { $0 = patched32($0, at: 24, 0) })
        }
        // 0x10000 bytes need 17 PFNs: the range runs into the payload.
        #expect(throws: WireError.invalidField(name: "GPA range extends past offset8", value: 7)) {
            try VMBusPacket.parse(try workedPacket { $0 = patched32($0, at: 24, 0x1_0000) })
        }
        // byte_offset + byte_count beyond u32 neither overflows nor allocates: it is over the limit.
        #expect(throws: WireError.limitExceeded(name: "range PFN count", value: 1_048_577, limit: 65535)) {
            try VMBusPacket.parse(try workedPacket {
                $0.replaceSubrange(24..<32, with: le32(0xFFFF_FFFF) + le32(0xFFF))
            })
        }
        // Fewer pages than PFNs present is slack, not an error: 1 byte needs 1 PFN of the 3.
        guard let packet = try parseGpaDirect(try workedPacket { $0.replaceSubrange(24..<32, with: le32(1) + le32(0)) })
        else { return }
        #expect(packet.ranges.map(\.pfns) == [[0x1234]] && packet.rangeAreaLayout == .padded(slackBytes: 16))
    }

    @Test func extensionsMustFitBeforeThePayload() throws {
        // offset8 2 leaves no room for reserved and range_cnt.
        for type in [PacketType.dataUsingGpaDirect, .dataUsingTransferPages] {
            let thin = try PacketEncoder.simple(type, payload: [UInt8](repeating: 0, count: 8), flags: [], transactionID: 0)
            #expect(throws: WireError.invalidField(name: "offset8", value: 2)) { try VMBusPacket.parse(thin) }
        }
        var transfer = try PacketEncoder.transferPages(setID: 1, ranges: [.init(byteCount: 1, byteOffset: 0)],
                                                       payload: [UInt8](), transactionID: 1)
        #expect(transfer[2] == 4)
        transfer.replaceSubrange(20..<24, with: le32(2))
        #expect(throws: WireError.invalidField(name: "range_cnt", value: 2)) { try VMBusPacket.parse(transfer) }
        transfer.replaceSubrange(20..<24, with: le32(0xFFFF_FFFF))
        #expect(throws: WireError.invalidField(name: "range_cnt", value: 0xFFFF_FFFF)) { try VMBusPacket.parse(transfer) }
    }

    @Test func garbageInReservedFieldsIsKept() throws {
        let gpa = try workedPacket { $0.replaceSubrange(16..<20, with: [1, 2, 3, 4]) }
        guard let packet = try parseGpaDirect(gpa) else { return }
        #expect(packet.reserved == 0x0403_0201)
        #expect(try VMBusPacket.gpaDirect(packet).encode() == gpa)
        var transfer = try PacketEncoder.transferPages(setID: 1, ranges: [], payload: [UInt8](), transactionID: 1)
        transfer[18] = 0xAA
        transfer[19] = 0xBB
        guard case .transferPages(let parsed) = try VMBusPacket.parse(transfer) else {
            Issue.record("not transfer pages")
            return
        }
        #expect(parsed.senderOwnsSet == 0xAA && parsed.reserved == 0xBB)
        #expect(try VMBusPacket.transferPages(parsed).encode() == transfer)
    }

    /// Every 1-bit flip of every sample either parses into a packet that re-encodes to the
    /// same length or throws: no trap, no other outcome.
    @Test func singleBitFlipsNeverTrap() throws {
        for sample in try packetSamples() where sample.bytes.count <= 128 {
            for bit in 0..<(sample.bytes.count * 8) {
                var bytes = sample.bytes
                bytes[bit / 8] ^= 1 << UInt8(bit % 8)
                guard let packet = try? VMBusPacket.parse(bytes) else { continue }
                #expect(try packet.encode().count == bytes.count, "\(sample.name) bit \(bit)")
                #expect(try VMBusPacket.parse(try packet.encode()) == packet, "\(sample.name) bit \(bit)")
            }
        }
    }
}

@Suite struct GpaRangeTests {
    @Test func pageCountsFollowTheFormula() throws {
        #expect(try GpaRange.pageCount(byteCount: 1, byteOffset: 0) == 1)
        #expect(try GpaRange.pageCount(byteCount: 4096, byteOffset: 0) == 1)
        #expect(try GpaRange.pageCount(byteCount: 4096, byteOffset: 1) == 2)
        #expect(try GpaRange.pageCount(byteCount: 0x2000, byteOffset: 0x100) == 3)
        #expect(try GpaRange.pageCount(byteCount: 1, byteOffset: 0xFFF) == 1)
        #expect(try GpaRange.pageCount(byteCount: 2, byteOffset: 0xFFF) == 2)
        #expect(try GpaRange.pageCount(byteCount: 0xFFFF_FFFF, byteOffset: 0xFFF) == 1_048_577)
        #expect(throws: WireError.invalidField(name: "byte_count", value: 0)) {
            try GpaRange.pageCount(byteCount: 0, byteOffset: 0)
        }
        #expect(throws: WireError.invalidField(name: "byte_offset", value: 0x1000)) {
            try GpaRange.pageCount(byteCount: 1, byteOffset: 0x1000)
        }
    }

    @Test func initializersCheckThePFNCount() throws {
        #expect(throws: WireError.invalidField(name: "PFN count", value: 2)) {
            try GpaRange(byteCount: 1, byteOffset: 0, pfns: [1, 2])
        }
        #expect(throws: WireError.invalidField(name: "PFN count", value: 0)) {
            try GpaRange(byteCount: 1, byteOffset: 0, pfns: [])
        }
        #expect(throws: WireError.invalidField(name: "byte_count", value: 0)) { try GpaRange(gpa: 0x1000, length: 0) }
        let range = try GpaRange(gpa: 0xABC_DEF0, length: 0x20)
        #expect(range.byteOffset == 0xEF0 && range.pfns == [0xABCD] && range.headerWord == 0x0000_0EF0_0000_0020)
    }

    @Test func parsedRangesRoundTripAndRefuseHugeCountsFirst() throws {
        let range = try makeWorkedRange()
        var writer = WireWriter()
        range.write(to: &writer)
        #expect(writer.bytes.count == range.wireSize)
        var reader = WireReader(writer.bytes)
        #expect(try GpaRange(from: &reader) == range && reader.remaining == 0)
        for length in 0..<writer.bytes.count {
            var prefix = WireReader(Array(writer.bytes.prefix(length)))
            #expect(isTruncated(wireError { () throws(WireError) in try GpaRange(from: &prefix) }), "prefix \(length)")
        }
        // 0xFFFF_FFFF bytes claim 1048576 PFNs: refused before anything is reserved.
        var huge = WireReader(le32(0xFFFF_FFFF) + le32(0))
        #expect(throws: WireError.limitExceeded(name: "range PFN count", value: 1_048_576, limit: 65535)) {
            try GpaRange(from: &huge)
        }
        // Within the limit but beyond the bytes present: truncated, checked before reserving.
        var short = WireReader(le32(65535 * 4096) + le32(0) + [UInt8](repeating: 0, count: 16))
        #expect(throws: WireError.truncated(needed: 524_280, available: 16)) { try GpaRange(from: &short) }
    }
}
