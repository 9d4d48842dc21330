import VMBusChannel
import VMBusGuest
import VMBusMemory
import VMBusWire

extension EchoClient {
    /// Times `rounds` echo round trips driven entirely by the channel's interrupt handler: each
    /// answer, seen on the thread that took the host's signal, sends the next request from that
    /// same handler. No task is woken between round trips — the shape of a driver whose data
    /// path lives in its interrupt handler (Linux's `HV_CALL_ISR` channels) — so a round trip
    /// costs the two signals and the two ring passes, not a scheduler hand-off. Only the last
    /// answer resumes the caller.
    ///
    /// Requests are in-band packets without a completion flag, which the echo device answers
    /// in kind. Requires an ``interruptDriven`` client; its usual handler is restored after.
    /// - Returns: each round trip's duration, in order.
    public func pingPong(rounds: Int, payload: [UInt8], device relid: UInt32? = nil) async throws -> [Duration] {
        precondition(rounds > 0, "pingPong needs at least one round")
        let channel = try self.channel(for: relid)
        guard self.interruptDriven else { throw BusError.invalidChannel(channel.relid) }
        let run = Locked(PingPongRun(rounds: rounds))
        let samples: Result<[Duration], ChannelError> = await withCheckedContinuation { continuation in
            run.withLock { $0.continuation = continuation }
            channel.onInterrupt {
                // Answers come one at a time (one request is ever in flight); count them in the
                // drain, act after it, outside the ring.
                var answers = 0
                let outcome: ChannelError?
                do throws(ChannelError) {
                    _ = try channel.drain { descriptor, _ in if descriptor.type == .dataInBand { answers += 1 } }
                    outcome = nil
                } catch {
                    outcome = error
                }
                let now = ContinuousClock.now
                let next: PingPongRun.Next = run.withLock { $0.answered(answers, at: now, failure: outcome) }
                switch next {
                case .wait: return
                case .send:
                    do throws(ChannelError) {
                        // One request in flight in a ring of pages: it always fits.
                        guard try channel.trySend(inBand: payload[...]) else { throw ChannelError.timedOut }
                    } catch {
                        run.withLock { $0.finish(.failure(error)) }?.resume(returning: .failure(error))
                    }
                case .finish(let result, let continuation):
                    continuation.resume(returning: result)
                }
            }
            run.withLock { $0.started = ContinuousClock.now }
            do throws(ChannelError) {
                guard try channel.trySend(inBand: payload[...]) else { throw ChannelError.timedOut }
            } catch {
                run.withLock { $0.finish(.failure(error)) }?.resume(returning: .failure(error))
            }
        }
        channel.onInterrupt { _ = try? channel.drain { _, _ in } }
        return try samples.get()
    }
}

/// The state of one ``EchoClient/pingPong(rounds:payload:device:)`` between its handler runs.
struct PingPongRun: ~Copyable {
    var remaining: Int
    var samples: [Duration]
    var started = ContinuousClock.now
    var continuation: CheckedContinuation<Result<[Duration], ChannelError>, Never>?

    init(rounds: Int) {
        self.remaining = rounds
        self.samples = []
        self.samples.reserveCapacity(rounds)
    }

    enum Next {
        case wait
        case send
        case finish(Result<[Duration], ChannelError>, CheckedContinuation<Result<[Duration], ChannelError>, Never>)
    }

    /// `count` answers arrived at `now` (or the drain failed): what the handler does next.
    mutating func answered(_ count: Int, at now: ContinuousClock.Instant, failure: ChannelError?) -> Next {
        guard self.continuation != nil else { return .wait }
        if let failure, let continuation = self.finish(.failure(failure)) { return .finish(.failure(failure), continuation) }
        guard count > 0 else { return .wait }
        self.samples.append(now - self.started)
        self.remaining -= 1
        if self.remaining == 0, let continuation = self.finish(.success(self.samples)) {
            return .finish(.success(self.samples), continuation)
        }
        self.started = now
        return .send
    }

    /// Takes the continuation, once.
    mutating func finish(_ result: Result<[Duration], ChannelError>) -> CheckedContinuation<Result<[Duration], ChannelError>, Never>? {
        defer { self.continuation = nil }
        return self.continuation
    }
}
