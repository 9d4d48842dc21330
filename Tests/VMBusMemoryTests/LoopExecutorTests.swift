import Testing
import VMBusMemory

/// The executor half of an event loop, driven by hand: the test plays the loop.
@Suite struct LoopExecutorTests {
    @Test func aJobForASleepingLoopRingsItAndRunsOnlyWhenTheLoopRunsIt() async throws {
        let executor = try LoopExecutor()
        #expect(executor.prepareToSleep())
        let ran = Locked(false)
        let task = Task(executorPreference: executor) {
            ran.withLock { $0 = true }
            return 42
        }
        // Creating the task queued its first job; the loop was asleep, so the eventfd rang.
        #expect(executor.wake.drain() == 1)
        #expect(!ran.withLock { $0 })
        executor.awoke()
        var batch: [UnownedJob] = []
        #expect(executor.runPending(&batch))
        #expect(ran.withLock { $0 })
        #expect(await task.value == 42)
        #expect(!executor.runPending(&batch))
    }

    @Test func anAwakeLoopIsNotRungAndQueuedJobsKeepItAwake() async throws {
        let executor = try LoopExecutor()
        let task = Task(executorPreference: executor) { 7 }
        // Not asleep: no ring; and with a job queued the loop must not block.
        #expect(executor.wake.drain() == 0)
        #expect(!executor.prepareToSleep())
        var batch: [UnownedJob] = []
        #expect(executor.runPending(&batch))
        #expect(await task.value == 7)
        #expect(executor.prepareToSleep())
    }

    @Test func jobsOfAnEndedLoopRunElsewhere() async throws {
        let executor = try LoopExecutor()
        let queued = Task(executorPreference: executor) { 1 }
        executor.end()
        // Queued before the end, and enqueued after it: both finish with no loop running them.
        #expect(await queued.value == 1)
        #expect(await Task(executorPreference: executor) { 2 }.value == 2)
    }

    @Test func aPausedLoopsJobsRunElsewhereUntilItCarriesOn() async throws {
        let executor = try LoopExecutor()
        executor.pause(true)
        // Nobody runs the loop's queue: the job must have gone elsewhere.
        #expect(await Task(executorPreference: executor) { 3 }.value == 3)
        executor.pause(false)
        let task = Task(executorPreference: executor) { 4 }
        var batch: [UnownedJob] = []
        #expect(executor.runPending(&batch))
        #expect(await task.value == 4)
    }
}

@Suite struct ThreadNameTests {
    @Test func aStartedThreadCarriesItsNameCutToFifteenBytes() async {
        let names = await withCheckedContinuation { (done: CheckedContinuation<[String], Never>) in
            ThreadName.start("vmbus-name-test") {
                let first = ThreadName.current
                ThreadName.set("a-name-longer-than-fifteen-bytes")
                done.resume(returning: [first, ThreadName.current])
            }
        }
        #expect(names == ["vmbus-name-test", "a-name-longer-t"])
    }
}
