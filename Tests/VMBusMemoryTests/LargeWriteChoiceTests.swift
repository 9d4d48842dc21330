import CLinux
import Testing
import VMBusMemory

/// The writer's choice between plain and streaming stores for large payloads
/// (`clinux_copy_choice`), driven with a made-up clock: which kind it settles on, how fast it
/// follows a change of placement, what it costs to keep looking, and what it ignores.
struct LargeWriteChoiceTests {
    /// A writer whose 16 KiB writes each take `cost(streaming)` ticks per 256 bytes of its clock.
    struct Writer {
        var choice = clinux_copy_choice()
        var clock: UInt64 = 1_000
        var used = (plain: 0, streaming: 0)

        mutating func write(_ writes: Int, cost: (Bool) -> UInt64) {
            for _ in 0..<writes {
                let streaming = clinux_copy_choice_next(&self.choice, 16384, self.clock) != 0
                if streaming { self.used.streaming += 1 } else { self.used.plain += 1 }
                self.clock += cost(streaming) * 64
            }
        }
    }

    @Test func settlesOnStreamingWhenItMovesTheRingFaster() {
        var writer = Writer()
        writer.write(32 * 200) { streaming in streaming ? 100 : 250 }
        #expect(writer.choice.streaming == 1)
        #expect(writer.choice.streaming_cost == 100 && writer.choice.plain_cost == 250)
        // Plain only for the first epoch (the default) and one epoch in 64 after: plain costs
        // more than half as much again.
        #expect(writer.used.plain <= 32 * (1 + 200 / 64 + 1))
    }

    @Test func settlesOnPlainWhenTheReaderSharesTheCache() {
        var writer = Writer()
        writer.write(32 * 200) { streaming in streaming ? 300 : 100 }
        #expect(writer.choice.streaming == 0)
        #expect(writer.used.streaming <= 32 * (1 + 200 / 64 + 1))
    }

    /// Close costs are re-checked more often (one epoch in 16), far ones rarely (one in 64).
    @Test func triesACloseAlternativeMoreOften() {
        var close = Writer()
        close.write(32 * 640) { streaming in streaming ? 130 : 100 }
        var far = Writer()
        far.write(32 * 640) { streaming in streaming ? 300 : 100 }
        #expect(close.choice.streaming == 0 && far.choice.streaming == 0)
        #expect(close.used.streaming >= 32 * (640 / 16 - 1))
        #expect(far.used.streaming <= 32 * (640 / 64 + 2))
    }

    /// The hypervisor moves the vCPUs: the faster kind changes, and the writer follows within
    /// a few dozen epochs.
    @Test(arguments: [false, true])
    func followsAPlacementChange(startStreaming: Bool) {
        var writer = Writer()
        let before: (Bool) -> UInt64 = { streaming in streaming == startStreaming ? 100 : 300 }
        let after: (Bool) -> UInt64 = { streaming in streaming == startStreaming ? 300 : 100 }
        writer.write(32 * 100, cost: before)
        #expect((writer.choice.streaming == 1) == startStreaming)
        var epochs = 0
        while (writer.choice.streaming == 1) == startStreaming && epochs < 10_000 {
            writer.write(32, cost: after)
            epochs += 1
        }
        #expect((writer.choice.streaming == 1) != startStreaming)
        #expect(epochs <= 40, "took \(epochs) epochs to follow")
    }

    /// Costs within an eighth of each other never flip the choice back and forth.
    @Test func nearCostsDoNotFlip() {
        var writer = Writer()
        writer.write(32 * 20) { streaming in streaming ? 300 : 100 }
        #expect(writer.choice.streaming == 0)
        var flips = 0
        var last = writer.choice.streaming
        for round in 0..<400 {
            // Streaming now as fast as plain, which wobbles by a few percent either way.
            writer.write(32) { streaming in streaming ? 100 : (round % 2 == 0 ? 106 : 96) }
            if writer.choice.streaming != last { flips += 1 }
            last = writer.choice.streaming
        }
        #expect(flips == 0)
    }

    /// One absurd epoch (the writer preempted, or idle) moves the average by a bounded step.
    @Test func anOutlierIsClamped() {
        var writer = Writer()
        writer.write(32 * 20) { streaming in streaming ? 300 : 100 }
        let before = writer.choice.plain_cost
        clinux_copy_choice_record(&writer.choice, 0, 1_000_000_000)
        #expect(writer.choice.plain_cost <= before + before * 4 / 8)
        #expect(writer.choice.streaming == 0)
    }

    @Test(arguments: [(UInt8(1), false), (UInt8(2), true)])
    func aForcedKindIsNeverTimed(forced: UInt8, streaming: Bool) {
        var choice = clinux_copy_choice()
        choice.forced = forced
        for n in 0..<300 {
            #expect(clinux_copy_choice_due(&choice) == 0)
            #expect((clinux_copy_choice_next(&choice, 16384, UInt64(n)) != 0) == streaming)
        }
        #expect(choice.plain_cost == 0 && choice.streaming_cost == 0)
    }

    /// The mode set on a ring reaches its writer's state, setting it starts afresh, and a
    /// ring's writes time both kinds.
    @Test func aRingReportsItsMode() throws {
        let ring = try SharedRingMemory.doubleMappedAnonymous(ringSize: 4096 + 65536)
        #expect(ring.largeWriteStores == .adaptive)
        ring.largeWriteStores = .streaming
        #expect(ring.largeWriteStores == .streaming)
        ring.largeWriteStores = .adaptive
        let payload = [UInt8](repeating: 7, count: 16384)
        for n in 0..<(3 * 32 + 1) { ring.copyIn(to: (n % 3) * 16384, from: payload[...]) }
        let costs = ring.largeWriteCosts
        #expect(costs.plain > 0 && costs.streamingCost > 0, "both kinds were timed: \(costs)")
    }
}
