/// How long a reader polls its empty ring before it sleeps, learnt from the gaps it slept
/// through.
///
/// A packet that came soon after the poll gave up — a peer descheduled for a moment, a reply
/// slower than usual — means the window was too short: it grows to cover such a gap, up to 4
/// times the configured poll (at most 250 µs: a poll holds a thread of the cooperative pool,
/// which other tasks of the process may need to produce the very packet it waits for). A long
/// gap — the stream went idle — halves it back
/// toward the configured value. A steady stream then stops sleeping through its hiccups
/// (each sleep costs two thread wake-ups, the p99 of a round trip), and an idle one still polls
/// only once per burst, for a bounded time.
struct PollWindow: Hashable, Sendable {
    /// The configured poll (``ChannelOptions/pollMicroseconds``); 0 never polls or learns.
    let base: Int
    /// The next poll's length, in microseconds.
    private(set) var current: Int

    init(base: Int) {
        self.base = max(0, base)
        self.current = self.base
    }

    /// The longest window it learns.
    var ceiling: Int { min(self.base * 4, 250) }

    /// A poll of ``current`` found nothing, and the next packet came `gapMicroseconds` after
    /// the poll began.
    mutating func learn(gapMicroseconds gap: Int) {
        guard self.base > 0 else { return }
        if gap <= self.ceiling {
            self.current = min(self.ceiling, max(self.current * 2, gap + gap / 2))
        } else {
            self.current = max(self.base, self.current / 2)
        }
    }
}
