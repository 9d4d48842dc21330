import VMBusMemory

extension Channel {
    /// Stops delivering packets at a packet boundary, for a host that hands its channels to
    /// another process (a takeover) or saves them: the reader finishes the packet it holds,
    /// publishes its read index and parks; an interrupt handler finishes its run and is not
    /// started again. Packets the peer writes meanwhile stay in the ring — the shared ring and
    /// its indices are then the whole receive state, and whoever attaches to the ring next reads
    /// on from exactly there. Sending is not held: the device decides when its own sends stop.
    ///
    /// - Returns: `true` once quiet; `false` if the reader or the handler was still busy with a
    ///   packet at the timeout (e.g. waiting for ring room the peer never gives). The hold stays
    ///   either way; ``release()`` ends it.
    public func hold(timeout: Duration) async -> Bool {
        self.isHeld.store(true, ordering: .releasing)
        // A reader asleep in its wait must wake to see the hold.
        self.kickReader()
        let deadline = ContinuousClock.now + timeout
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            self?.wakeHolders()
        }
        defer { timer.cancel() }
        while true {
            let epoch = self.receiver.withLock { $0.holdEpoch }
            if self.isQuiet { return true }
            if ContinuousClock.now >= deadline { return false }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let changed: Bool = self.receiver.withLock { state in
                    guard state.holdEpoch == epoch else { return true }
                    state.holdWaiters.append(continuation)
                    return false
                }
                if changed { continuation.resume() }
            }
        }
    }

    /// Ends a hold: the reader reads on, the handler runs for anything that arrived meanwhile.
    public func release() {
        self.isHeld.store(false, ordering: .releasing)
        self.kickReader()
        if self.hasInterruptHandler.load(ordering: .acquiring) { self.runInterruptHandler() }
    }

    /// Whether the channel is held (``hold(timeout:)``).
    public var held: Bool { self.isHeld.load(ordering: .acquiring) }

    /// No packet is being handled: no reader, or a parked one; no handler running; closed
    /// channels are quiet too.
    var isQuiet: Bool {
        if self.isClosed.load(ordering: .acquiring) { return true }
        let readerQuiet = self.receiver.withLock { !$0.readerActive || $0.readerParked }
        let handlerQuiet = self.interruptHandler.withLock { !$0.running }
        return readerQuiet && handlerQuiet
    }

    /// Something a holder waits for happened (a reader parked, a handler ended, the timeout).
    func wakeHolders() {
        let waiters = self.receiver.withLock { state in
            state.holdEpoch &+= 1
            defer { state.holdWaiters = [] }
            return state.holdWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// The reader's side of a hold: parked until released or closed.
    func parkWhileHeld() async {
        self.receiver.withLock { $0.readerParked = true }
        self.wakeHolders()
        while self.isHeld.load(ordering: .acquiring) && !self.isClosed.load(ordering: .acquiring) {
            await self.waitForInput()
        }
        self.receiver.withLock { $0.readerParked = false }
    }
}
