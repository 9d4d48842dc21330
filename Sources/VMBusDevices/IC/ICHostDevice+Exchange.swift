import VMBusChannel
import VMBusMemory
import VMBusWire

extension ICHostDevice {
    /// Sends one request of `type` with `body` at the negotiated versions and returns the
    /// guest's answer. One request is in flight at a time; others wait their turn.
    public func transact(_ type: ICMessageType, body: [UInt8]) async throws(ICError) -> ICMessage {
        let (framework, service) = try await self.ready()
        var header = ICMessageHeader(frameworkVersion: framework, messageType: type, messageVersion: service, messageSize: 0)
        header.flags = .hostRequest
        let message: ICMessage
        do { message = try ICMessage(header: header, body: body) } catch { throw ICError.badResponse("request too large: \(error)") }
        return try await self.exchange(message, session: nil)
    }

    /// The version negotiation of 06 §2.2, for one open of the channel.
    func negotiate(_ session: UInt64) async {
        let outcome: Negotiation
        if let request = try? ICNegotiation.request(framework: self.frameworkVersions, service: self.serviceVersions) {
            do throws(ICError) {
                outcome = self.outcome(of: try await self.exchange(request, session: session))
            } catch ICError.timedOut {
                // Linux's kernel holds a negotiation back until the service's daemon runs: the
                // service is not running, which is not a transport timeout. ``finish(_:_:)``
                // recorded it already; a late answer may even have completed it since.
                outcome = .failed(.negotiationUnanswered)
            } catch {
                outcome = .failed(error)
            }
        } else {
            // Version lists too long to send: nothing can be agreed.
            outcome = .failed(.noCommonVersion)
        }
        if let beforeSettling = self.state.withLock({ $0.beforeSettling }) { await beforeSettling() }
        self.settle(session, outcome)
    }

    func outcome(of response: ICMessage) -> Negotiation {
        guard let chosen = try? ICNegotiation.chosen(in: response) else { return .failed(.noCommonVersion) }
        return .ready(framework: chosen.framework, service: chosen.service)
    }

    /// Records the negotiation of `session` — its outcome, or a late answer to it — if it is
    /// still the open one and not settled for good: still pending, or failed only for want of
    /// an answer (a late answer may have completed a timed-out one first; it is not undone).
    /// Wakes waiters.
    func settle(_ session: UInt64, _ outcome: Negotiation) {
        self.state.withLock { state in
            guard state.session?.id == session else { return }
            switch state.session?.negotiation {
            case .pending?, .failed(.negotiationUnanswered)?: state.session?.negotiation = outcome
            case .ready?, .failed?, nil: return
            }
        }
        self.notifyWatchers()
    }

    /// Sends `message` once nothing else is in flight; waits for its answer or the timeout.
    /// - Parameter session: the open it belongs to (negotiation), or `nil` for the open one.
    func exchange(_ message: ICMessage, session wanted: UInt64?) async throws(ICError) -> ICMessage {
        await self.takeTurn()
        defer { self.passTurn() }
        let current: (number: UInt64, session: UInt64, channel: Channel)? = self.state.withLock { state in
            guard let session = state.session, wanted == nil || wanted == session.id else { return nil }
            defer { state.nextNumber += 1 }
            return (state.nextNumber, session.id, session.channel)
        }
        guard let (number, session, channel) = current else { throw ICError.notConnected }
        let deadline = ContinuousClock.now + self.timeout
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<ICMessage, ICError>, Never>) in
            let registered: (ended: Bool, startWatchdog: Bool) = self.state.withLock { state in
                // The session may have ended since the number was taken: nothing will answer.
                guard state.session?.id == session else { return (true, false) }
                state.pending = (number, session, continuation, deadline)
                defer { state.watchdog = true }
                return (false, !state.watchdog)
            }
            if registered.ended {
                continuation.resume(returning: .failure(.notConnected))
                return
            }
            if registered.startWatchdog { self.startWatchdog(until: deadline) }
            // Written at once when the ring has room (it nearly always has: one request at a
            // time); otherwise a task waits for room, so that a guest that stopped reading
            // still lets the request time out.
            let payload = message.encode()
            do {
                if try channel.trySend(inBand: payload[...], transactionID: number) { return }
            } catch {
                self.finish(number, .failure(.notConnected))
                return
            }
            Task {
                do {
                    try await channel.send(inBand: payload[...], transactionID: number)
                } catch {
                    self.finish(number, .failure(.notConnected))
                }
            }
        }
        return try result.get()
    }

    /// Times out requests: one task sleeps until the deadline of the request in flight, checks,
    /// and sleeps again until the next one's, while requests keep coming (a file copy sends
    /// thousands a second; a task and a timer for each cost a thread's wake-up or two each).
    /// It ends when nothing is in flight; the next request starts it again.
    func startWatchdog(until first: ContinuousClock.Instant) {
        Task {
            var wake = first
            while true {
                try? await Task.sleep(until: wake, clock: .continuous)
                enum Next { case stop, sleep(ContinuousClock.Instant), expire(UInt64) }
                let next: Next = self.state.withLock { state in
                    guard let pending = state.pending else {
                        state.watchdog = false
                        return .stop
                    }
                    return ContinuousClock.now >= pending.deadline ? .expire(pending.number) : .sleep(pending.deadline)
                }
                switch next {
                case .stop: return
                case .sleep(let deadline): wake = deadline
                case .expire(let number):
                    self.finish(number, .failure(.timedOut))
                    wake = .now
                }
            }
        }
    }

    /// Completes request `number` (once: a late answer or timer finds nothing to complete).
    func finish(_ number: UInt64, _ result: Result<ICMessage, ICError>) {
        let continuation = self.state.withLock { state -> CheckedContinuation<Result<ICMessage, ICError>, Never>? in
            guard let pending = state.pending, pending.number == number else { return nil }
            state.pending = nil
            // A request that times out while its session is still negotiating is the
            // negotiation (``transact(_:body:)`` waits for it). It fails in the same step that
            // lets go of the request, so an answer landing right after is taken as the late
            // answer; between the two it would have matched neither and been dropped as stale,
            // leaving the service failed for good.
            if case .failure(.timedOut) = result, state.session?.id == pending.session,
                case .pending? = state.session?.negotiation
            {
                state.session?.negotiation = .failed(.negotiationUnanswered)
            }
            return pending.continuation
        }
        continuation?.resume(returning: result)
    }

    /// A packet from the guest on the channel of `session`: the answer to the request in
    /// flight, a late answer to a negotiation that timed out, or stale.
    func response(_ packet: ChannelPacket, session: UInt64) {
        guard packet.descriptor.type == .dataInBand, let message = try? ICMessage(payload: packet.payload),
            message.header.flags.contains(.response)
        else {
            self.state.withLock { $0.stale += 1 }
            return
        }
        enum Route { case answer(UInt64), lateNegotiation, stale }
        let route: Route = self.state.withLock { state in
            if let pending = state.pending, pending.session == session { return .answer(pending.number) }
            if message.header.messageType == .negotiate, case .failed(.negotiationUnanswered)? = state.session?.negotiation,
                state.session?.id == session
            {
                return .lateNegotiation
            }
            // Answers to nothing in flight are stale (from before a reset, or after a timeout):
            // dropped (06 §2.2).
            state.stale += 1
            return .stale
        }
        switch route {
        case .answer(let number): self.finish(number, .success(message))
        case .lateNegotiation: self.settle(session, self.outcome(of: message))
        case .stale: break
        }
    }

    func takeTurn() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now: Bool = self.state.withLock { state in
                if !state.busy {
                    state.busy = true
                    return true
                }
                state.queue.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    func passTurn() {
        let next: CheckedContinuation<Void, Never>? = self.state.withLock { state in
            if state.queue.isEmpty {
                state.busy = false
                return nil
            }
            return state.queue.removeFirst()
        }
        next?.resume()
    }
}
