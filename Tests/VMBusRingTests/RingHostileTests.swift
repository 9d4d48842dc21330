import Testing
import VMBusRing
import VMBusWire

@Suite struct RingHostileTests {
    func expectBroken(_ ring: inout RingPair, _ expected: RingError) {
        #expect(throws: expected) { try ring.reader.next() }
        #expect(throws: RingError.broken) { try ring.reader.next() }
        #expect(throws: RingError.broken) { try ring.reader.commit() }
    }

    @Test(arguments: [12288 as UInt32, 12289, 4, 0xFFFF_FFF8])
    func impossibleWriteIndicesBreakTheReader(_ value: UInt32) throws {
        var ring = try RingPair(ringSize: 16384)
        ring.memory.store(.writeIndex, value, ordering: .relaxed)
        expectBroken(&ring, .invalidIndex(word: "write_index", value: value, dataSize: 12288))
    }

    @Test func impossibleReadIndexBreaksTheWriter() throws {
        var ring = try RingPair(ringSize: 16384)
        ring.memory.store(.readIndex, 13, ordering: .relaxed)
        let expected = RingError.invalidIndex(word: "read_index", value: 13, dataSize: 12288)
        // The writer works from the space it already knew about; the bad index is caught at the
        // first fresh load — at the latest the commit's signal decision — and the ring breaks.
        #expect(try ring.writer.write(payload: [1][...]))
        #expect(throws: expected) { try ring.writer.commit() }
        #expect(throws: RingError.broken) { try ring.writer.write(payload: [1][...]) }
        #expect(throws: expected) { try OutgoingRing(memory: ring.memory) }
        #expect(throws: expected) { try ring.writer.bytesAvailableToWrite() }
    }

    @Test func aFullRingReloadsAndValidatesTheReadIndex() throws {
        var ring = try RingPair(ringSize: 8192)
        #expect(try ring.send([UInt8](repeating: 1, count: 4000)).0)
        ring.memory.store(.readIndex, 4095, ordering: .relaxed)
        #expect(throws: RingError.invalidIndex(word: "read_index", value: 4095, dataSize: 4096)) {
            try ring.writer.write(payload: [UInt8](repeating: 1, count: 100)[...])
        }
    }

    @Test func badDescriptorsAreTypedErrors() throws {
        var ring = try RingPair(ringSize: 16384)
        _ = try ring.send([UInt8](repeating: 0, count: 40))
        ring.memory.data[2] = 1  // offset8 = 1
        expectBroken(&ring, .invalidDescriptor(.invalidField(name: "offset8", value: 1)))

        var past = try RingPair(ringSize: 16384)
        _ = try past.send([UInt8](repeating: 0, count: 40))
        past.memory.data[4] = 100  // len8 = 100: 800 bytes, 64 published
        expectBroken(&past, .packetPastWriteIndex(length: 800, available: 64))

        var large = try RingPair(ringSize: 16384, maximumPacketLength: 64)
        _ = try large.send([UInt8](repeating: 0, count: 100))
        expectBroken(&large, .packetTooLarge(length: 120, limit: 64))

        var short = try RingPair(ringSize: 16384)
        short.memory.store(.writeIndex, 16, ordering: .relaxed)
        expectBroken(&short, .truncatedDescriptor(available: 16))
    }

    @Test func theCopyKeepsTheValidatedDescriptor() throws {
        var ring = try RingPair(ringSize: 16384)
        _ = try ring.send([UInt8](repeating: 5, count: 40), transactionID: 77)
        let packet = try #require(try ring.reader.next())
        // The peer rewrites the descriptor after it was validated (a double-fetch attack).
        ring.memory.data[4] = 0xFF
        ring.memory.data[8] = 0x99
        var buffer: [UInt8] = []
        ring.reader.copyPacket(packet, into: &buffer)
        #expect(buffer.count == 56 && buffer[4] == 7 && buffer[8] == 77)
    }

    @Test func garbageNeverTrapsTheReader() throws {
        // Deterministic pseudo-random garbage in every position: each read ends in a packet,
        // an empty ring or a typed error, never a trap.
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            seed ^= seed << 13
            seed ^= seed >> 7
            seed ^= seed << 17
            return seed
        }
        var outcomes = [0, 0, 0]
        for _ in 0..<500 {
            let memory = FlatRingMemory(ringSize: 8192)
            for i in 0..<memory.data.count { memory.data[i] = UInt8(truncatingIfNeeded: next()) }
            memory.store(.writeIndex, UInt32(truncatingIfNeeded: next() % 4200) & ~7, ordering: .relaxed)
            var reader = try IncomingRing(memory: memory)
            do {
                while try reader.next() != nil {}
                outcomes[0] += 1
            } catch .broken {
                Issue.record("broken before any error")
            } catch {
                outcomes[1] += 1
            }
            _ = try? reader.commit()
            outcomes[2] += 1
        }
        #expect(outcomes[2] == 500 && outcomes[1] > 0)
    }
}
