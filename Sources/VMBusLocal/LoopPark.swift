import VMBusMemory

/// Pausing an event-loop thread for a takeover (docs/SERVICING.md): the loop stops at a point
/// it chooses — between two batches of events, so no frame is half read and no doorbell half
/// handled — and waits for the outcome: carry on (the takeover failed), or end without
/// touching what it served (the new process has it now).
///
/// The loop polls ``control`` with its other descriptors; when it fires, the loop drains it
/// and, at its next clean point, calls ``parkHere()`` if ``isRequested``.
final class LoopPark: Sendable {
    struct State {
        enum Outcome { case resume, handedOver }
        var requested = false
        var pauser: CheckedContinuation<Bool, Never>?
        var outcome: Outcome?
        var ended = false
        var handedOver = false
    }

    /// Rung to make the loop look at the request.
    let control: EventFD
    let state = Locked(State())
    let signal = WakeSignal()

    init() throws(MemoryError) {
        self.control = try EventFD.nonBlocking()
    }

    var isRequested: Bool { self.state.withLock { $0.requested } }

    /// Asks the loop to park and waits until it has. `false` if the loop had already ended.
    func pause() async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let ended = self.state.withLock { state in
                if state.ended { return true }
                state.requested = true
                state.pauser = continuation
                return false
            }
            if ended {
                continuation.resume(returning: false)
            } else {
                self.control.signal()
            }
        }
    }

    /// Ends a pause: `handedOver` ends the loop; otherwise it carries on.
    func unpause(handedOver: Bool) {
        self.state.withLock { state in
            state.outcome = handedOver ? .handedOver : .resume
            state.requested = false
        }
        self.signal.notify()
    }

    /// The loop's side: reports itself parked, then waits for the outcome. Returns whether the
    /// loop goes on.
    func parkHere() -> Bool {
        let pauser = self.state.withLock { state in
            defer { state.pauser = nil }
            return state.pauser
        }
        pauser?.resume(returning: true)
        while true {
            let outcome: State.Outcome? = self.state.withLock { state in
                guard let outcome = state.outcome else { return nil }
                state.outcome = nil
                if outcome == .handedOver { state.handedOver = true }
                return outcome
            }
            switch outcome {
            case .resume?: return true
            case .handedOver?: return false
            case nil: self.signal.wait(timeout: .seconds(1))
            }
        }
    }

    /// Marks the loop ended (waking a pauser that came too late); `true` if it was handed over.
    func ended() -> Bool {
        let (pauser, handedOver) = self.state.withLock { state in
            state.ended = true
            defer { state.pauser = nil }
            return (state.pauser, state.handedOver)
        }
        pauser?.resume(returning: false)
        return handedOver
    }
}
