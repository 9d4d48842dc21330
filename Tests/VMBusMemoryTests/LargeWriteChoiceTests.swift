import CLinux
import Testing
import VMBusMemory

/// The writer's choice between plain and streaming stores for large payloads
/// (`clinux_copy_choice`), driven with made-up timings: which kind it settles on, how fast it
/// follows a change of placement, and what it ignores.
struct LargeWriteChoiceTests {
    /// Runs `writes` large writes through the choice, answering every timed one with the cost
    /// `cost(streaming)` in ticks per 256 bytes; returns how many writes used each kind.
    func drive(_ choice: inout clinux_copy_choice, writes: Int, cost: (Bool) -> UInt64) -> (plain: Int, streaming: Int) {
        var used = (plain: 0, streaming: 0)
        for _ in 0..<writes {
            var timed: Int32 = 0
            let streaming = clinux_copy_choice_next(&choice, &timed) != 0
            if streaming { used.streaming += 1 } else { used.plain += 1 }
            if timed != 0 { clinux_copy_choice_record(&choice, streaming ? 1 : 0, cost(streaming) * 64, 16384) }
        }
        return used
    }

    @Test func settlesOnStreamingWhenPlainStoresAreDear() {
        var choice = clinux_copy_choice()
        let used = self.drive(&choice, writes: 1000) { streaming in streaming ? 100 : 250 }
        #expect(choice.streaming == 1)
        #expect(choice.streaming_cost == 100 && choice.plain_cost == 250)
        // The first few dozen writes are plain (the default) while both are measured; after that
        // only one timed write in eight tries plain again.
        #expect(used.plain < 1000 / 16 / 8 + 40)
    }

    @Test func settlesOnPlainWhenTheReaderSharesTheCache() {
        var choice = clinux_copy_choice()
        let used = self.drive(&choice, writes: 1000) { streaming in streaming ? 300 : 100 }
        #expect(choice.streaming == 0)
        #expect(used.streaming <= 1000 / 128 + 2)
    }

    /// The hypervisor moves the vCPUs: the cheaper kind changes, and the writer follows within a
    /// few exploration periods of 128 writes.
    @Test func followsAPlacementChange() {
        var choice = clinux_copy_choice()
        _ = self.drive(&choice, writes: 2000) { streaming in streaming ? 300 : 100 }
        #expect(choice.streaming == 0)
        var writes = 0
        while choice.streaming == 0 && writes < 100_000 {
            _ = self.drive(&choice, writes: 16) { streaming in streaming ? 100 : 300 }
            writes += 16
        }
        #expect(choice.streaming == 1)
        #expect(writes <= 128 * 12, "took \(writes) writes to follow")
    }

    /// Costs within an eighth of each other never flip the choice back and forth.
    @Test func nearCostsDoNotFlip() {
        var choice = clinux_copy_choice()
        _ = self.drive(&choice, writes: 500) { streaming in streaming ? 300 : 100 }
        #expect(choice.streaming == 0)
        var flips = 0
        var last = choice.streaming
        for round in 0..<200 {
            // Plain is at most 6 % dearer, in alternating directions of noise.
            _ = self.drive(&choice, writes: 128) { streaming in streaming ? 100 : (round % 2 == 0 ? 106 : 98) }
            if choice.streaming != last { flips += 1 }
            last = choice.streaming
        }
        #expect(flips == 0)
    }

    /// One absurd sample (a preempted copy) moves the average by a bounded step, not to the
    /// outlier.
    @Test func anOutlierIsClamped() {
        var choice = clinux_copy_choice()
        _ = self.drive(&choice, writes: 500) { streaming in streaming ? 300 : 100 }
        let before = choice.plain_cost
        clinux_copy_choice_record(&choice, 0, 1_000_000_000, 16384)
        #expect(choice.plain_cost <= before + before * 4 / 8)
        #expect(choice.streaming == 0)
    }

    @Test(arguments: [(UInt8(1), false), (UInt8(2), true)])
    func aForcedKindIsNeverTimed(forced: UInt8, streaming: Bool) {
        var choice = clinux_copy_choice()
        choice.forced = forced
        for _ in 0..<300 {
            var timed: Int32 = 7
            #expect((clinux_copy_choice_next(&choice, &timed) != 0) == streaming)
            #expect(timed == 0)
        }
    }

    /// The mode set on a ring reaches its writer's state, and setting it starts afresh.
    @Test func aRingReportsItsMode() throws {
        let ring = try SharedRingMemory.doubleMappedAnonymous(ringSize: 4096 + 65536)
        #expect(ring.largeWriteStores == .adaptive)
        ring.largeWriteStores = .streaming
        #expect(ring.largeWriteStores == .streaming)
        ring.largeWriteStores = .adaptive
        let payload = [UInt8](repeating: 7, count: 16384)
        for n in 0..<64 { ring.copyIn(to: (n % 3) * 16384, from: payload[...]) }
        let costs = ring.largeWriteCosts
        #expect(costs.plain > 0 && costs.streamingCost > 0, "both kinds were timed: \(costs)")
    }
}
