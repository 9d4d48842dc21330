import Dispatch
import Foundation
import Testing
import VMBusChannel
import VMBusMemory
import VMBusWire

/// Answers every in-band packet with a completion echoing it, from the interrupt handler.
func echoFromInterrupts(_ channel: Channel, runs: Locked<Int>) {
    channel.onInterrupt {
        runs.withLock { $0 += 1 }
        var answer: [UInt8] = []
        _ = try? channel.drain { descriptor, payload in
            answer.removeAll(keepingCapacity: true)
            answer.append(span: payload)
            _ = try? channel.trySend(completion: answer[...], transactionID: descriptor.transactionID)
        }
    }
}

/// Blocking work on a thread of its own, not on the cooperative pool.
private func offThePool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { (done: CheckedContinuation<T, Never>) in
        Thread { done.resume(returning: body()) }.start()
    }
}

@Suite struct InterruptHandlerTests {
    /// A handler replaced while it runs is not run again: the run that a signal during it
    /// asks for calls the handler installed now. (Running the old one again let a finished
    /// ping-pong's drain take the next ping-pong's first answer, and the bench hung.)
    @Test func aHandlerReplacedDuringARunIsNotRunAgain() async throws {
        let pair = try ChannelPair(pages: 4)
        let inFirst = DispatchSemaphore(value: 0)
        let proceed = DispatchSemaphore(value: 0)
        let secondRan = DispatchSemaphore(value: 0)
        let firstCalls = Locked(0)
        let secondCalls = Locked(0)
        pair.guest.onInterrupt {
            // Call 1 is the run onInterrupt starts at once; call 2 is the signal's, below.
            let call = firstCalls.withLock { calls in
                calls += 1
                return calls
            }
            if call == 2 {
                inFirst.signal()
                proceed.wait()
            }
        }
        // A signal, on a thread of its own: its run blocks inside the first handler.
        let signaller = Thread { pair.guest.interrupt() }
        signaller.start()
        await offThePool { inFirst.wait() }
        // Replaced during that run: this asks for one more run, which must be the new one's.
        pair.guest.onInterrupt {
            secondCalls.withLock { $0 += 1 }
            secondRan.signal()
        }
        proceed.signal()
        let ran = await offThePool { secondRan.wait(timeout: .now() + 30) == .success }
        #expect(ran)
        #expect(firstCalls.withLock { $0 } == 2, "the replaced handler ran again")
        #expect(secondCalls.withLock { $0 } >= 1)
    }

    /// Requests answered entirely from interrupt handlers on both ends, with no reader task:
    /// every answer is its own request's, byte-exact.
    @Test func requestsAreAnsweredFromInterruptHandlers() async throws {
        let pair = try ChannelPair(pages: 4)
        let hostRuns = Locked(0)
        echoFromInterrupts(pair.host, runs: hostRuns)
        // The guest's handler only drains: draining completes the waiting requests.
        pair.guest.onInterrupt { _ = try? pair.guest.drain { _, _ in } }
        for round in 0..<2000 {
            // In-band payloads are whole 8-byte units on the wire: sizes are multiples of 8.
            let request = pattern(8 * (1 + round % 90), seed: round)
            #expect(try await pair.guest.request(request[...]) == request)
        }
        #expect(hostRuns.withLock { $0 } >= 2000)
        #expect(pair.guest.outstandingRequests == 0)
    }

    /// Many requests in flight at once from several tasks: each gets its own answer.
    @Test func concurrentRequestsEachGetTheirOwnAnswer() async throws {
        let pair = try ChannelPair(pages: 8)
        echoFromInterrupts(pair.host, runs: Locked(0))
        pair.guest.onInterrupt { _ = try? pair.guest.drain { _, _ in } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for round in 0..<200 {
                        let request = pattern(8 * (2 + (task * 31 + round) % 25), seed: task * 1000 + round)
                        let answer = try await pair.guest.request(request[...])
                        #expect(answer == request)
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// A packet the peer writes while the handler drains gets no signal (the ring was not
    /// empty), and the drain need not see it (here it takes one packet per run, as a drain
    /// that read the write index just before the write would): the handler runs again for it.
    @Test func aPacketWrittenDuringTheDrainIsNotStranded() throws {
        let pair = try ChannelPair(pages: 4)
        #expect(try pair.guest.trySend(inBand: pattern(16, seed: 1)[...]))
        let seen = Locked<[[UInt8]]>([])
        let signalsBefore = Locked(-1)
        pair.host.onInterrupt {
            _ = try? pair.host.drain(limit: 1) { _, payload in
                var bytes: [UInt8] = []
                bytes.append(span: payload)
                let first = seen.withLock { list in
                    list.append(bytes)
                    return list.count == 1
                }
                if first {
                    signalsBefore.withLock { $0 = pair.signalCounts.toHost }
                    _ = try? pair.guest.trySend(inBand: pattern(16, seed: 2)[...])
                }
            }
        }
        #expect(pair.signalCounts.toHost == signalsBefore.withLock { $0 }, "the second write was not signalled")
        #expect(seen.withLock { $0 } == [pattern(16, seed: 1), pattern(16, seed: 2)])
    }

    /// Packets already in the ring when the handler is installed are handled at once, and a
    /// removed handler is not called again.
    @Test func installingDrainsWhatIsThereAndRemovingStops() throws {
        let pair = try ChannelPair(pages: 4)
        for i in 0..<5 { #expect(try pair.guest.trySend(inBand: pattern(16, seed: i)[...])) }
        let seen = Locked<[[UInt8]]>([])
        pair.host.onInterrupt {
            _ = try? pair.host.drain { _, payload in
                var bytes: [UInt8] = []
                bytes.append(span: payload)
                seen.withLock { $0.append(bytes) }
            }
        }
        #expect(seen.withLock { $0 } == (0..<5).map { pattern(16, seed: $0) })
        pair.host.onInterrupt(nil)
        #expect(try pair.guest.trySend(inBand: pattern(8)[...]))
        #expect(seen.withLock { $0.count } == 5)
        // The packet waits in the ring for whoever reads next.
        #expect(try pair.host.drain { _, _ in } == 1)
    }
}
