import Testing

@testable import VMBusChannel

@Suite struct PollWindowTests {
    /// Gaps just longer than the poll grow the window to cover them, never past the ceiling;
    /// idle gaps shrink it back to the configured poll, never below.
    @Test func theWindowFollowsTheGapsItSleptThrough() {
        var window = PollWindow(base: 30)
        #expect(window.current == 30 && window.ceiling == 120)
        window.learn(gapMicroseconds: 45)
        #expect(window.current == 67)  // 45 + 45 / 2 beats twice 30
        window.learn(gapMicroseconds: 50)
        #expect(window.current == 120)  // doubling (134) is past the ceiling
        window.learn(gapMicroseconds: 10_000)
        #expect(window.current == 60)
        for _ in 0..<10 { window.learn(gapMicroseconds: 1_000_000) }
        #expect(window.current == 30)
    }

    @Test func noPollNoLearning() {
        var window = PollWindow(base: 0)
        window.learn(gapMicroseconds: 5)
        #expect(window.current == 0)
        var large = PollWindow(base: 200)
        #expect(large.ceiling == 250)
        large.learn(gapMicroseconds: 240)
        #expect(large.current == 250)
        large.learn(gapMicroseconds: 251)
        #expect(large.current == 200)
    }
}
