import Testing

@testable import VMBusChannel

@Suite struct PollWindowTests {
    /// Gaps just longer than the poll grow the window to cover them, never past the ceiling;
    /// idle gaps shrink it back to the configured poll, never below.
    @Test func theWindowFollowsTheGapsItSleptThrough() {
        var window = PollWindow(base: 30)
        #expect(window.current == 30 && window.ceiling == 480)
        window.learn(gapMicroseconds: 45)
        #expect(window.current == 67)  // 45 + 45 / 2 beats twice 30
        window.learn(gapMicroseconds: 50)
        #expect(window.current == 134)  // doubling beats 75
        window.learn(gapMicroseconds: 400)
        #expect(window.current == 480)  // 600 is past the ceiling
        window.learn(gapMicroseconds: 10_000)
        #expect(window.current == 240)
        for _ in 0..<10 { window.learn(gapMicroseconds: 1_000_000) }
        #expect(window.current == 30)
    }

    @Test func noPollNoLearning() {
        var window = PollWindow(base: 0)
        window.learn(gapMicroseconds: 5)
        #expect(window.current == 0)
        var large = PollWindow(base: 200)
        #expect(large.ceiling == 1000)
        large.learn(gapMicroseconds: 900)
        #expect(large.current == 1000)
    }
}
