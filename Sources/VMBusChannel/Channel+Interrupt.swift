import VMBusMemory

/// The handler's slot: at most one run at a time, and a signal during a run asks for one more.
struct InterruptHandlerState {
    var handler: (@Sendable () -> Void)?
    var running = false
    var again = false
}

extension Channel {
    /// Runs `handler` on the substrate's own thread each time the peer signals this channel —
    /// Linux's `HV_CALL_ISR` delivery, for drivers that want no task switch between a packet
    /// arriving and their answer: the handler typically ``drain(limit:_:)``s the ring (which
    /// also completes outstanding ``request(_:)``s) and answers with ``trySend(inBand:transactionID:completionRequested:)``
    /// or ``sendBatch(_:)``.
    ///
    /// The handler must not block or wait: it runs on the event loop (two processes) or on the
    /// peer's sending thread (in process). It never runs twice at once; a signal that arrives
    /// while it runs makes it run once more, so a packet written during a drain is never left
    /// unseen. It is called once right away, for anything already in the ring. Use it instead
    /// of a ``ChannelReader`` (a reader holds the ring; ``drain(limit:_:)`` then reports
    /// ``ChannelError/readerBusy``). `nil` removes it.
    public func onInterrupt(_ handler: (@Sendable () -> Void)?) {
        self.interruptHandler.withLock { $0.handler = handler }
        self.hasInterruptHandler.store(handler != nil, ordering: .releasing)
        if handler != nil { self.runInterruptHandler() }
    }

    /// Runs the handler unless it is running already, then again as long as signals came in
    /// meanwhile or the ring still holds data the handler could not have been signalled for.
    func runInterruptHandler() {
        // A held channel starts no run; ``release()`` starts one.
        guard !self.isHeld.load(ordering: .acquiring) else { return }
        let handler: (@Sendable () -> Void)? = self.interruptHandler.withLock { state in
            guard let handler = state.handler else { return nil }
            guard !state.running else {
                state.again = true
                return nil
            }
            state.running = true
            state.again = false
            return handler
        }
        guard var handler else { return }
        while true {
            let before = self.incomingMemory.load(.readIndex, ordering: .relaxed)
            handler()
            // The writer skips its signal when the ring was not empty before its write (02 §7.2),
            // and a drain works from the write index it saw first: a packet written during the
            // handler may have no signal coming. After the handler's commit, look again (fence:
            // our read-index store against the writer's load of it), as Linux's reader does
            // after unmasking. Only while the handler makes progress: one that leaves packets
            // in the ring on purpose waits for the next signal.
            var unsignalled = false
            if self.incomingMemory.load(.readIndex, ordering: .relaxed) != before && !self.isClosed.load(ordering: .relaxed) {
                self.incomingMemory.fullFence()
                unsignalled = (self.incomingMemory.bytesPending() ?? 0) > 0
            }
            // One decision under the lock: a signal that came during the run (or up to now)
            // also means one more run — of the handler installed now. A handler replaced
            // during this run must not run again: it would take packets meant for its
            // successor (a finished ping-pong's drain swallowing the next one's first answer,
            // which then waited for ever).
            let next: (@Sendable () -> Void)? = self.interruptHandler.withLock { state in
                let again = state.handler != nil && (state.again || unsignalled) && !self.isHeld.load(ordering: .acquiring)
                state.again = false
                if !again { state.running = false }
                return again ? state.handler : nil
            }
            guard let next else {
                // Only a holder waits for a run to end (the lock above orders its hold against
                // this load).
                if self.isHeld.load(ordering: .acquiring) { self.wakeHolders() }
                return
            }
            handler = next
        }
    }
}
