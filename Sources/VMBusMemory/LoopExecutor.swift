/// An event loop's thread as a task executor (issue 16), for the loop that owns it: a task
/// that prefers it (`Task(executorPreference: channel.taskExecutor)`) is resumed by the loop
/// itself, right after the loop took the doorbell that woke it, instead of being handed to the
/// cooperative pool. A reader task's round trip then costs the wake-ups a socket's does — one per side —
/// rather than two per side (the loop's, then a pool thread's), and none while the loop is
/// still spinning after the last packet.
///
/// Jobs queue under a lock and run in batches between the loop's event batches. While the
/// loop blocks in `epoll_wait` it is marked asleep, and the job that finds it so rings ``wake``
/// (one eventfd write), so a job from another thread never waits for the next event. Once the
/// loop has ended, queued and later jobs go to the global concurrent executor: a task that
/// preferred a gone loop still finishes.
///
/// The loop's side: poll ``wake`` with its other descriptors (and ``EventFD/drain()`` it when
/// it fires); call ``prepareToSleep()`` before a blocking wait and ``awoke()`` after it,
/// ``runPending(_:)`` after each batch of events, and ``end()`` when it stops. It lives here,
/// not with the loop, because running a job hands the runtime an unowned executor reference.
public final class LoopExecutor: TaskExecutor, Sendable {
    struct Queue {
        var jobs: [UnownedJob] = []
        /// The loop is blocked (or about to block) in `epoll_wait`: a new job must ring.
        var sleeping = false
        /// Jobs go to the global concurrent executor: the loop has ended, or is paused.
        var ended = false
        var paused = false
    }

    /// Rung when a job arrives for a sleeping loop; the loop polls it with its other descriptors.
    public let wake: EventFD
    let queue = Locked(Queue())

    /// An executor with an empty queue and its wake eventfd.
    /// - Throws: ``MemoryError/system(call:errno:)`` if the eventfd cannot be made.
    public init() throws(MemoryError) {
        self.wake = try EventFD.nonBlocking()
    }

    /// Queues `job` for the loop (or, while it is paused and once it ended, for the global
    /// concurrent executor).
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let (elsewhere, ring) = self.queue.withLock { queue in
            guard !queue.ended && !queue.paused else { return (true, false) }
            queue.jobs.append(job)
            defer { queue.sleeping = false }
            return (false, queue.sleeping)
        }
        if elsewhere { globalConcurrentExecutor.enqueue(ExecutorJob(job)) }
        if ring { self.wake.signal() }
    }

    /// The loop is about to block: `false` (stay awake) when jobs are waiting.
    public func prepareToSleep() -> Bool {
        self.queue.withLock { queue in
            guard queue.jobs.isEmpty else { return false }
            queue.sleeping = true
            return true
        }
    }

    /// The loop is back from a blocking wait.
    public func awoke() {
        self.queue.withLock { $0.sleeping = false }
    }

    /// Runs the jobs queued so far on the calling (loop) thread; jobs they enqueue wait for
    /// the next call, so the loop's own events are not starved. `batch` is the loop's reusable
    /// buffer: no allocation per batch once it has grown. - Returns: whether any job ran.
    public func runPending(_ batch: inout [UnownedJob]) -> Bool {
        self.queue.withLock { swap(&batch, &$0.jobs) }
        guard !batch.isEmpty else { return false }
        // SAFETY: the executor is `self`, alive for the whole call.
        let executor = unsafe self.asUnownedTaskExecutor()
        for job in batch { unsafe job.runSynchronously(on: executor) }
        batch.removeAll(keepingCapacity: true)
        return true
    }

    /// The loop has ended: what is queued, and whatever comes later, runs elsewhere.
    public func end() {
        self.handOff { $0.ended = true }
    }

    /// The loop pauses (`paused`, a host takeover parks it) or carries on: while it is paused
    /// its tasks run elsewhere, as they must — holding a channel waits for its reader.
    public func pause(_ paused: Bool) {
        self.handOff { $0.paused = paused }
    }

    func handOff(_ change: (inout Queue) -> Void) {
        let left = self.queue.withLock { queue in
            change(&queue)
            guard queue.ended || queue.paused else { return [UnownedJob]() }
            defer { queue.jobs.removeAll(keepingCapacity: true) }
            return queue.jobs
        }
        for job in left { globalConcurrentExecutor.enqueue(ExecutorJob(job)) }
    }
}
