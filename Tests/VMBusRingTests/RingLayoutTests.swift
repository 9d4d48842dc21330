import Testing
import VMBusRing
import VMBusWire

@Suite struct RingLayoutTests {
    @Test func hundredBytePacketsMatchSpec02WorkedExample() throws {
        var ring = try RingPair(ringSize: 16384)
        let payload = [UInt8](repeating: 0xAB, count: 100)
        #expect(try ring.send(payload) == (true, true))
        let data = ring.memory.data
        #expect(Array(data[0..<16]) == [6, 0, 2, 0, 15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(Array(data[16..<116]) == payload && Array(data[116..<120]) == [0, 0, 0, 0])
        #expect(Array(data[120..<128]) == [0, 0, 0, 0, 0, 0, 0, 0])
        #expect(ring.memory.load(.writeIndex, ordering: .relaxed) == 128)
        // The reader has not consumed the first packet: the second needs no signal.
        #expect(try ring.send(payload) == (true, false))
        #expect(Array(ring.memory.data[248..<256]) == [0, 0, 0, 0, 0x80, 0, 0, 0])
        #expect(try ring.reader.bytesAvailableToRead() == 256)
        // 95 such packets fit in the 12288-byte data area, the 96th does not.
        for _ in 2..<95 { #expect(try ring.send(payload).0) }
        #expect(try ring.send(payload).0 == false)
        #expect(try ring.writer.bytesAvailableToWrite() == 128)
        #expect(ring.writer.statistics.outFullTotal == 1 && ring.writer.statistics.outFullFirst == 1)
        #expect(try ring.drain().count == 95)
    }

    @Test func wrapExampleOfSpec02() throws {
        var ring = try RingPair(ringSize: 16384, start: 12224)
        let payload = [UInt8](1...100)
        #expect(try ring.send(payload) == (true, true))
        #expect(ring.memory.load(.writeIndex, ordering: .relaxed) == 64)
        #expect(Array(ring.memory.data[56..<64]) == [0, 0, 0, 0, 0xc0, 0x2f, 0, 0])
        #expect(Array(ring.memory.data[12240..<12288]) == Array(payload[0..<48]))
        #expect(try ring.reader.bytesAvailableToRead() == 128)
        #expect(try ring.drain() == [padded(payload)])
        #expect(ring.memory.load(.readIndex, ordering: .relaxed) == 64)
    }

    /// Every ring size in a small set × every 8-aligned start × payload sizes around the
    /// 8-byte boundaries and the largest packet: what goes in comes out, indices agree.
    @Test(arguments: [8192, 12288, 16384])
    func everyStartPositionAndSizeRoundTrips(_ ringSize: Int) throws {
        let dataSize = ringSize - 4096
        let maximumPayload = RingSize.maximumPacketLength(dataSize: dataSize) - PacketDescriptor.wireSize
        let sizes = [0, 1, 7, 8, 9, 100, 1000, maximumPayload]
        // Payloads and their padded images made once (the pattern shifts with the start), and
        // one buffer per size so copying out never resizes: 4,000 cases must stay cheap in a
        // debug build and under the thread sanitizer, where building, resizing and comparing
        // arrays element by element took a minute.
        let shifts = 8
        let payloads = (0..<shifts).map { shift in
            sizes.map { size in (0..<size).map { UInt8(truncatingIfNeeded: ($0 &+ shift) &* 31) } }
        }
        let expected = payloads.map { $0.map(padded) }
        // Filled with a byte no payload starts with, and each start's shift differs from the
        // last one's: a copy that did not happen cannot pass.
        var buffers = expected[0].map { [UInt8](repeating: 0xEE, count: $0.count) }
        for start in stride(from: 0, to: dataSize, by: 8) {
            var ring = try RingPair(ringSize: ringSize, start: start)
            let shift = (start / 8) % shifts
            for (index, size) in sizes.enumerated() {
                let sent = try ring.send(payloads[shift][index], transactionID: UInt64(size))
                #expect(sent == (true, true), "ring \(ringSize) start \(start) size \(size)")
                guard let packet = try ring.reader.next() else {
                    Issue.record("ring \(ringSize) start \(start) size \(size): no packet")
                    return
                }
                ring.reader.copyPayload(of: packet, into: &buffers[index])
                #expect(buffers[index] == expected[shift][index], "ring \(ringSize) start \(start) size \(size)")
                #expect(packet.descriptor.transactionID == UInt64(size))
                #expect(try ring.reader.next() == nil)
                _ = try ring.reader.commit()
                #expect(ring.memory.load(.readIndex, ordering: .relaxed) == ring.memory.load(.writeIndex, ordering: .relaxed))
            }
        }
    }

    @Test func largestPacketFillsAllButSixteenBytes() throws {
        var ring = try RingPair(ringSize: 8192)
        #expect(ring.writer.maximumPacketLength == 4080)
        #expect(try ring.send([UInt8](repeating: 1, count: 4064)).0)
        #expect(try ring.writer.bytesAvailableToWrite() == 8)
        #expect(try ring.send([]).0 == false)
    }

    @Test func formattedPacketsAndBatchesShareOneCommit() throws {
        var ring = try RingPair(ringSize: 16384)
        let gpa = try PacketEncoder.gpaDirect(ranges: [try GpaRange(gpa: 0x5000, length: 100)], payload: [UInt8](1...24),
                                              transactionID: 7)
        #expect(try ring.writer.write(packet: gpa[...]))
        #expect(try ring.writer.write(payload: [1, 2, 3][...]))
        #expect(try ring.reader.next() == nil, "nothing is visible before the commit")
        #expect(try ring.writer.commit())
        var buffer: [UInt8] = []
        let first = try #require(try ring.reader.next())
        ring.reader.copyPacket(first, into: &buffer)
        #expect(buffer == gpa)
        guard case .gpaDirect(let parsed) = try VMBusPacket.parse(buffer) else {
            Issue.record("not GPA direct")
            return
        }
        #expect(parsed.descriptor.transactionID == 7 && Array(parsed.payload) == [UInt8](1...24))
        #expect(try ring.reader.next()?.descriptor.payloadLength == 8)
        ring.reader.revert()
        #expect(try ring.reader.next() == first, "revert un-reads the uncommitted packets")
    }

    @Test func ringSizeHelperMatchesLinux() {
        #expect(RingSize.vmbusRingSize(payload: 3 * 4096) == 16384)
        #expect(RingSize.vmbusRingSize(payload: 2 << 20) == (2 << 20) + 4096)
        #expect(RingSize.vmbusRingSize(payload: 100) == 8192)
        #expect(RingSize.vmbusRingSize(payload: 3 * 4096, pageSize: 65536) == 131072)
    }
}

@Suite struct ZeroCopyTests {
    @Test func payloadsAreReadInPlaceUnlessTheyWrap() throws {
        var ring = try RingPair(ringSize: 8192, start: 4096 - 64)
        _ = try ring.send([UInt8](1...8))
        _ = try ring.send([UInt8](30...99))
        let first = try #require(try ring.reader.next())
        let inPlace = ring.reader.withPayload(of: first) { span in (0..<span.count).map { span[$0] } }
        #expect(inPlace == [UInt8](1...8))
        // The second packet wraps past the end of a singly mapped data area: no span.
        let second = try #require(try ring.reader.next())
        #expect(ring.reader.withPayload(of: second) { $0.count } == nil)
        var buffer: [UInt8] = []
        ring.reader.copyPayload(of: second, into: &buffer)
        #expect(buffer == padded([UInt8](30...99)))
    }
}
