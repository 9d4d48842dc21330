import VMBusWire

/// The comparing half of one connection's replay, the same for either side: what has been
/// compared and found, which streams already differed, and the peer's choices learnt so far.
struct ReplayRun {
    var outcome: ReplayGuest.Outcome
    var comparison = ReplayComparison()
    /// Streams whose first difference was found: the rest of them are not compared.
    var diverged: Set<ReplayStream> = []
    /// Streams on which the peer once sent nothing in time: the rest wait only briefly.
    var missed: Set<ReplayStream> = []
    let timeout: Duration
    /// Messages compared as a host compares a guest's (its GPADL choices learnt), or exactly.
    let peerIsGuest: Bool

    init(connection: UInt32, timeout: Duration, peerIsGuest: Bool) {
        self.outcome = ReplayGuest.Outcome(connection: connection)
        self.timeout = timeout
        self.peerIsGuest = peerIsGuest
    }

    mutating func differ(_ step: ReplayStep, got: ReplayItem?, stop: Bool) {
        self.outcome.differences.append(ReplayDifference(
            connection: self.outcome.connection, record: step.record + 1, stream: step.item.stream,
            expected: ReplayComparison.describe(step.item), got: got.map(ReplayComparison.describe)))
        if stop { self.diverged.insert(step.item.stream) }
    }

    /// Whether a step on a stream that already differed is skipped (and counted so).
    mutating func skips(_ step: ReplayStep) -> Bool {
        guard self.diverged.contains(step.item.stream) else { return false }
        self.outcome.skipped += 1
        return true
    }

    /// Sends a captured packet on its channel (a completion carrying the peer's live id, a
    /// timed answer made from the live request). - Returns: whether it was sent; a packet on a
    /// stream that already differed is skipped, and one that cannot be sent is a difference.
    mutating func send(_ step: ReplayStep, on link: ReplayLink) -> Bool {
        guard case .packet(let relid, let bytes) = step.item, !self.skips(step) else { return false }
        guard link.send(self.comparison.rewritten(bytes, relid: relid), relid: relid, timeout: self.timeout) else {
            self.differ(step, got: nil, stop: true)
            return false
        }
        return true
    }

    /// Compares the bytes the peer left in a buffer with the captured ones; `read` reads the
    /// live memory at a GPADL offset.
    mutating func expectBuffer(_ step: ReplayStep, read: (UInt32, UInt64, Int) -> [UInt8]?) {
        guard case .buffer(let relid, let gpadl, let offset, let bytes) = step.item else { return }
        self.outcome.compared += 1
        let live = read(gpadl, offset, bytes.count)
        if live != bytes {
            self.differ(step, got: live.map { .buffer(relid: relid, gpadl: gpadl, offset: offset, bytes: $0) }, stop: true)
        }
    }

    /// Waits for the peer's answer to `step` and compares it. - Returns: whether it was as
    /// captured, and the live item taken (equal, or the peer's different answer to the same
    /// thing; `nil` if none came).
    mutating func expect(_ step: ReplayStep, from inbox: ReplayInbox) -> (matched: Bool, live: ReplayItem?) {
        let stream = step.item.stream
        // Once the peer failed to send something on this stream, the rest get only a short
        // wait each: a peer unlike the captured one must not cost a timeout per step.
        let wait = self.missed.contains(stream) ? min(self.timeout, ReplayInbox.grace) : self.timeout
        var comparison = self.comparison
        let peerIsGuest = self.peerIsGuest
        let (taken, instead) = inbox.take(stream, until: .now + wait) { whole in
            let live = step.cut ? whole.cut(like: step.item) : whole
            switch (step.item, live) {
            case (.packet(let relid, let captured), .packet(_, let bytes)):
                // Learns the peer's choices only from the packet it accepts.
                var trial = comparison
                guard trial.packetMatches(captured, bytes, relid: relid) else { return false }
                comparison = trial
                return true
            case (.message(_, let captured), .message(_, let bytes)):
                // The port is where it was posted, not what it says.
                return peerIsGuest ? comparison.messageMatches(captured, bytes) : captured == bytes
            default:
                return step.item == live
            }
        } answers: { live in
            ReplayComparison.answersTheSame(step.item, live)
        }
        self.comparison = comparison
        self.outcome.compared += 1
        if taken != nil { return (true, taken) }
        if instead == nil { self.missed.insert(stream) }
        // Control goes on after a difference: the other channels' messages still come.
        self.differ(step, got: instead, stop: stream != .control)
        return (false, instead)
    }

    /// What the peer sent beyond the script: on the socket, differences; on a channel, extra
    /// packets a timer-driven service may send in a longer session (listed, not counted) —
    /// unless `strict`.
    mutating func finish(_ inbox: ReplayInbox, steps: Int, strict: Bool) {
        for (stream, items) in inbox.leftovers().sorted(by: { $0.key.description < $1.key.description }) {
            for item in items {
                if stream == .control || strict {
                    self.outcome.differences.append(ReplayDifference(
                        connection: self.outcome.connection, record: steps, stream: stream, expected: "nothing more",
                        got: ReplayComparison.describe(item)))
                } else {
                    self.outcome.extra.append("\(stream): \(ReplayComparison.describe(item))")
                }
            }
        }
        self.outcome.ended = inbox.ended
    }
}
