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

extension PollWindowTests {
    /// Four failed polls in a row: the next 64 waits sleep at once, then polling resumes at
    /// the configured length; a success in between resets the count.
    @Test func pollsThatKeepFailingRestForAWhile() {
        var window = PollWindow(base: 20)
        for _ in 0..<3 {
            #expect(window.begin() > 0)
            window.learn(gapMicroseconds: 30)
        }
        window.succeeded()
        for _ in 0..<3 {
            #expect(window.begin() > 0)
            window.learn(gapMicroseconds: 5000)
        }
        #expect(window.begin() > 0)
        window.learn(gapMicroseconds: 5000)
        for _ in 0..<PollWindow.restingWaits { #expect(window.begin() == 0) }
        #expect(window.begin() == 20)
    }
}
