import VMBusMemory

/// How much one connection has in flight: requests and bytes of data. The reading thread takes
/// credit before it starts a request (and before it reads a write's data), and blocks while
/// there is none, which stops it reading the socket: the client's requests then wait in its own
/// buffers, not in server memory. Credit comes back once the reply has left (``NBDOutbox``).
final class NBDCredits: Sendable {
    private struct State {
        var requests = 0
        var bytes = 0
    }

    let maximumRequests: Int
    let maximumBytes: Int
    private let state = Locked(State())
    /// The reading thread's wait (it is the only waiter).
    private let returned = WakeSignal()

    init(maximumRequests: Int, maximumBytes: Int) {
        self.maximumRequests = max(1, maximumRequests)
        self.maximumBytes = max(1, maximumBytes)
    }

    /// Takes credit for one request of `bytes` bytes, blocking until there is room. A request
    /// larger than the byte budget goes when nothing else is in flight.
    func acquire(bytes: Int) {
        while !self.state.withLock({ state in
            let fits = state.requests < self.maximumRequests && (state.bytes + bytes <= self.maximumBytes || state.requests == 0)
            if fits {
                state.requests += 1
                state.bytes += bytes
            }
            return fits
        }) {
            // A notification is remembered, so one that came since the look above is not lost;
            // the timeout only bounds a wait nobody ends.
            self.returned.wait(timeout: .seconds(1))
        }
    }

    /// Returns the credit of a request whose reply has left (or was dropped).
    func release(bytes: Int) {
        self.state.withLock { state in
            state.requests -= 1
            state.bytes -= bytes
        }
        self.returned.notify()
    }

    /// Blocks until every request has returned its credit.
    func waitUntilIdle() {
        while self.state.withLock({ $0.requests }) > 0 {
            self.returned.wait(timeout: .seconds(1))
        }
    }

    /// Requests in flight.
    var inFlight: Int { self.state.withLock { $0.requests } }
}

/// A connection's replies on their way out: request tasks queue them as they complete, in any
/// order, and one writing thread sends them — a reply's header and data always together, so
/// replies never interleave, and no task ever blocks on a slow client's socket. Small replies
/// queued together leave in one write.
final class NBDOutbox: Sendable {
    /// One reply: its header, a read's data, and the credit it holds.
    struct Reply: Sendable {
        var header: [UInt8]
        var data: [UInt8]
        var credit: Int
    }

    private struct State {
        var replies: [Reply] = []
        var closed = false
        var failed = false
    }

    private let state = Locked(State())
    /// The writing thread's wait (it is the only waiter).
    private let queued = WakeSignal()
    let socket: StreamSocket
    let credits: NBDCredits

    /// Data at least this long is written on its own rather than copied into a batch.
    static let batchLimit = 64 * 1024

    init(socket: StreamSocket, credits: NBDCredits) {
        self.socket = socket
        self.credits = credits
    }

    /// Queues a reply (from any task).
    func send(_ reply: Reply) {
        self.state.withLock { $0.replies.append(reply) }
        self.queued.notify()
    }

    /// Ends the writing thread once the queue is empty.
    func close() {
        self.state.withLock { $0.closed = true }
        self.queued.notify()
    }

    /// Whether a write failed (the client is gone); replies since were dropped.
    var hasFailed: Bool { self.state.withLock { $0.failed } }

    /// The writing thread's body: sends replies until ``close()``. If the socket fails, the
    /// socket is shut down (the reading thread then sees the end of the stream) and later
    /// replies are dropped; credit is returned either way, so the connection can finish.
    func run() {
        while true {
            let (batch, closed, failed) = self.state.withLock { state in
                defer { state.replies.removeAll(keepingCapacity: true) }
                return (state.replies, state.closed, state.failed)
            }
            if batch.isEmpty {
                if closed { return }
                self.queued.wait(timeout: .seconds(1))
                continue
            }
            if !failed {
                do {
                    try self.write(batch)
                } catch {
                    self.state.withLock { $0.failed = true }
                    self.socket.shutdown()
                }
            }
            for reply in batch { self.credits.release(bytes: reply.credit) }
        }
    }

    private func write(_ batch: [Reply]) throws(MemoryError) {
        var pending: [UInt8] = []
        for reply in batch {
            pending += reply.header
            if reply.data.count < Self.batchLimit {
                pending += reply.data
            } else {
                try self.socket.write(pending[...])
                pending.removeAll(keepingCapacity: true)
                try self.socket.write(reply.data[...])
            }
        }
        if !pending.isEmpty { try self.socket.write(pending[...]) }
    }
}
