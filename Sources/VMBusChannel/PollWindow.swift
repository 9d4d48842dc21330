import Glibc
import Synchronization
import VMBusMemory

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
///
/// Polls that keep failing mean the peer cannot answer within the window — the machine is
/// oversubscribed (many guests on few CPUs), where a poll only takes CPU from the threads it
/// waits for: after ``failureLimit`` failures in a row the reader rests, sleeping at once for
/// its next ``restingWaits`` waits, then tries polling again.
struct PollWindow: Hashable, Sendable {
    /// The configured poll (``ChannelOptions/pollMicroseconds``); 0 never polls or learns.
    let base: Int
    /// The next poll's length, in microseconds, unless resting.
    private(set) var current: Int
    /// Polls in a row that found nothing.
    private(set) var failures = 0
    /// Waits left without polling.
    private(set) var resting = 0

    static let failureLimit = 4
    static let restingWaits = 64

    init(base: Int) {
        self.base = max(0, base)
        self.current = self.base
    }

    /// The longest window it learns.
    var ceiling: Int { min(self.base * 4, 250) }

    /// How long to poll for this wait (0: sleep at once).
    mutating func begin() -> Int {
        guard self.base > 0 else { return 0 }
        if self.resting > 0 {
            self.resting -= 1
            return 0
        }
        return self.current
    }

    /// The poll found a packet.
    mutating func succeeded() {
        self.failures = 0
    }

    /// A poll found nothing, and the next packet came `gapMicroseconds` after the poll began.
    mutating func learn(gapMicroseconds gap: Int) {
        guard self.base > 0 else { return }
        self.failures += 1
        if self.failures >= Self.failureLimit {
            self.failures = 0
            self.resting = Self.restingWaits
            self.current = self.base
        } else if gap <= self.ceiling {
            self.current = min(self.ceiling, max(self.current * 2, gap + gap / 2))
        } else {
            self.current = max(self.base, self.current / 2)
        }
    }
}

/// How many channels of this process poll at once: one fewer than the CPUs (at least one).
///
/// A poll holds a thread of the cooperative pool, which has one thread per CPU: if every
/// thread polled, none would be left for the tasks that produce what the polls wait for. Past
/// the limit a channel sleeps at once, as without polling; one busy stream still polls.
enum PollGate {
    static let limit = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) - 1)
    static let active = Atomic<Int>(0)

    /// Takes a polling slot; `false` when all are taken (then do not poll).
    static func enter() -> Bool {
        let now = Self.active.add(1, ordering: .relaxed).newValue
        if now <= Self.limit { return true }
        Self.active.subtract(1, ordering: .relaxed)
        return false
    }

    /// Gives the slot back.
    static func leave() {
        Self.active.subtract(1, ordering: .relaxed)
    }

    /// Polls `ready` for up to `microseconds`, if a slot is free: spinning for the first 2 µs,
    /// then yielding the CPU on each turn (the thread being waited for may share this core and
    /// would otherwise wait out the poller's time slice). The one poll loop of readers waiting
    /// for data and writers waiting for room.
    /// - Returns: `true` as soon as `ready` does; `false` when the time ran out, or no slot was
    ///   free or nothing was to be polled (then nothing was polled).
    static func poll(microseconds: Int, until ready: () -> Bool) -> Bool {
        guard microseconds > 0, Self.enter() else { return false }
        defer { Self.leave() }
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start + .microseconds(microseconds)
        let yieldAfter = start + .microseconds(2)
        while true {
            let now = clock.now
            if now >= deadline { return false }
            if ready() { return true }
            if now < yieldAfter { spinLoopPause() } else { yieldProcessor() }
        }
    }
}
