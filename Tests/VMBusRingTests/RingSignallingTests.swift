import Testing
import VMBusRing
import VMBusWire

@Suite struct RingSignallingTests {
    @Test func writerSignalsOnlyOnEmptyToNonEmptyWithTheMaskClear() throws {
        var ring = try RingPair(ringSize: 16384)
        #expect(try ring.send([1]).1, "empty → non-empty")
        #expect(try ring.send([2]).1 == false, "already non-empty")
        _ = try ring.drain()
        ring.reader.beginDrain()
        #expect(try ring.send([3]).1 == false, "reader is draining (mask set)")
        #expect(try ring.reader.endDrain(), "the re-check after unmasking finds the data")
        _ = try ring.drain()
        // A batch of three packets gets one decision.
        for byte in [UInt8](4...6) { #expect(try ring.writer.write(payload: [byte][...])) }
        #expect(try ring.writer.commit())
        #expect(try ring.writer.commit() == false, "nothing new to publish")
        #expect(ring.writer.statistics.intrOutEmpty == 2)
    }

    /// 02 §7.3 as a table: the writer wants `pending` bytes; the reader frees some; it signals
    /// only when the freed space is what crossed the threshold.
    @Test(arguments: [
        // (packets in ring, packets read, pending, feature bit, signal)
        (90, 1, 2000, true, false),   // 768 → 896: still not enough
        (90, 10, 1900, true, true),   // 768 → 2048 crosses 1900
        (90, 20, 600, true, false),   // 768 > 600 already before: the writer was not waiting
        (90, 20, 2000, true, true),   // 768 → 3328 crosses 2000
        (90, 20, 2000, false, false), // writer never set the feature bit: it polls
        (90, 20, 0, true, false),     // no pending request
        (90, 20, 3328, true, false),  // exactly 3328 free is not strictly more
        (90, 20, 3327, true, true),   // low bits cleared (OpenVMM): 3320 < 3328
    ])
    func readerSignalsOnlyOnTheCrossing(_ row: (Int, Int, Int, Bool, Bool)) throws {
        let (count, read, pending, feature, expected) = row
        var ring = try RingPair(ringSize: 16384)
        if !feature { ring.memory.store(.featureBits, 0, ordering: .relaxed) }
        for _ in 0..<count { #expect(try ring.send([UInt8](repeating: 9, count: 100)).0) }
        ring.memory.store(.pendingSendSize, UInt32(pending), ordering: .relaxed)
        for _ in 0..<read { _ = try ring.reader.next() }
        // 90 packets of 128 ring bytes leave 768 of 12288 free; each read frees 128.
        #expect(try ring.reader.commit() == expected, "\(row)")
        #expect(ring.reader.statistics.intrInFull == (expected ? 1 : 0))
    }

    @Test func writerPendingSendSizeRechecksAndClears() throws {
        var ring = try RingPair(ringSize: 8192)
        #expect(try ring.send([UInt8](repeating: 1, count: 3000)).0)
        #expect(try ring.send([UInt8](repeating: 1, count: 3000)).0 == false)
        #expect(try ring.writer.setPendingSendSize(3024) == false)
        #expect(ring.memory.load(.pendingSendSize, ordering: .relaxed) == 3024)
        // Reading the first packet frees exactly what the writer asked for: a signal.
        _ = try ring.reader.next()
        #expect(try ring.reader.commit())
        #expect(try ring.writer.setPendingSendSize(3024), "enough room now: the request is withdrawn")
        #expect(ring.memory.load(.pendingSendSize, ordering: .relaxed) == 0)
        #expect(try ring.send([UInt8](repeating: 1, count: 3000)).0)
    }
}

@Suite struct RingStatisticsTests {
    @Test func countersFollowLinuxNames() throws {
        var ring = try RingPair(ringSize: 8192)
        let (_, signal) = try ring.send([1, 2, 3])
        if signal { ring.writer.recordEvent() }
        ring.reader.recordInterrupt()
        _ = try ring.drain()
        #expect(ring.writer.statistics.events == 1 && ring.writer.statistics.intrOutEmpty == 1)
        #expect(ring.reader.statistics.interrupts == 1)
        #expect(ring.writer.statistics.packets == 1 && ring.reader.statistics.packets == 1)
        #expect(ring.writer.statistics.bytes == 24 && ring.reader.statistics.bytes == 24)
        #expect(try ring.writer.bytesAvailableToWrite() == 4096 && ring.reader.bytesAvailableToRead() == 0)
    }
}
