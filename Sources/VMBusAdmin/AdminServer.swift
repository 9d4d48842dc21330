import Foundation
import VMBusMemory

/// Serves the admin protocol (docs/ADMIN.md) on a Unix socket: each connection carries one
/// request, answered by the handler registered for its command.
///
/// A program embedding the host creates one, registers its commands (the integration
/// services come with ``registerIntegrationServices(host:services:exported:)``), then starts
/// it:
///
/// ```swift
/// let admin = try AdminServer(path: "/run/vm.admin")
/// admin.registerIntegrationServices(host: host, services: registry)
/// admin.register("hello") { request, session in session.output("hello, guest \(request.guest)") }
/// admin.start()
/// ```
///
/// Clients are not trusted: a malformed request, a wrong magic or an unsupported version gets
/// a failure answer naming the problem, and the server goes on serving the next client.
public final class AdminServer: Sendable {
    /// A command: it reads its request, answers through the session, and throws to fail (the
    /// error's description is the failure message the client sees).
    public typealias Handler = @Sendable (AdminRequest, AdminSession) async throws -> Void

    /// The socket's path.
    public let path: String
    let listener: LocalSocket

    struct State {
        var handlers: [String: Handler] = [:]
        var stopped = false
        /// A takeover is handing the listener over: accept nothing meanwhile.
        var paused = false
        /// The listener now belongs to another process.
        var handedOff = false
        /// Requests being served.
        var inFlight = 0
    }
    let state = Locked(State())
    /// The accept thread waits on the listener and on ``control`` (rung to make it look at
    /// ``State``), so a takeover can stop it without touching the listener.
    let poll: EventPoll
    let control: EventFD
    let resumed = WakeSignal()
    /// Notified whenever a request ends.
    let requestEnded = WakeSignal()

    /// Listens at `path` (a stale socket file there is replaced, a live one refused); serving
    /// begins with ``start()``.
    /// - Throws: `MemoryError` when the path is in use or cannot be bound.
    public convenience init(path: String) throws(MemoryError) {
        try self.init(path: path, listener: try LocalSocket.listen(path: path))
    }

    /// Serves on a listening socket this process already has — one handed over by a host
    /// this one took over from (docs/SERVICING.md). `path` is where it is bound.
    public init(path: String, listener: LocalSocket) throws(MemoryError) {
        self.path = path
        self.listener = listener
        self.poll = try EventPoll()
        self.control = try EventFD.nonBlocking()
        try self.poll.add(listener.fileDescriptor, token: 0)
        try self.poll.add(self.control.fileDescriptor, token: 1)
    }

    /// Serves `name` with `handler` from now on, replacing any handler registered for it.
    public func register(_ name: String, _ handler: @escaping Handler) {
        self.state.withLock { $0.handlers[name] = handler }
    }

    /// The registered commands, sorted.
    public var commands: [String] {
        self.state.withLock { $0.handlers.keys.sorted() }
    }

    /// Starts accepting clients on a background thread.
    public func start() {
        ThreadName.start("vmbus-admin-accept") { [self] in self.acceptLoop() }
    }

    /// Stops accepting clients and removes the socket file. Requests already being served run
    /// to their end.
    public func stop() {
        let handedOff = self.state.withLock { state in
            state.stopped = true
            return state.handedOff
        }
        self.control.signal()
        // A handed-off listener is the new host's: shutting it down or unlinking its path
        // would end that host's admin socket too.
        guard !handedOff else { return }
        self.listener.shutdown()
        LocalSocket.removeFile(path: self.path)
    }

    /// Stops accepting (a takeover is about to hand the listener over); clients wait in the
    /// listen queue.
    func pauseAccepting() {
        self.state.withLock { $0.paused = true }
        self.control.signal()
    }

    /// Accepts again (the takeover failed).
    func resumeAccepting() {
        self.state.withLock { $0.paused = false }
        self.resumed.notify()
    }

    /// The listener now belongs to another process: accept nothing more, and leave the socket
    /// and its path alone.
    func handOff() {
        self.state.withLock {
            $0.handedOff = true
            $0.paused = false
        }
        self.resumed.notify()
    }

    func acceptLoop() {
        while true {
            guard let tokens = try? self.poll.wait(timeoutMilliseconds: -1) else { return }
            if tokens.contains(1) { self.control.drain() }
            while self.state.withLock({ $0.paused && !$0.stopped && !$0.handedOff }) { self.resumed.wait(timeout: .seconds(1)) }
            if self.state.withLock({ $0.stopped || $0.handedOff }) { return }
            guard tokens.contains(0) else { continue }
            guard let client = try? self.listener.accept() else {
                if self.state.withLock({ $0.stopped }) { return }
                // Out of descriptors, say: without a pause the loop would spin on the error.
                usleep(10_000)
                continue
            }
            // Each client's request is read on its own thread: a client that connects and
            // never sends must hold up neither the next client nor a thread of the cooperative
            // pool, which every task of the process shares.
            ThreadName.start("vmbus-admin-client") { [self] in self.receiveRequest(from: client) }
        }
    }

    func receiveRequest(from client: LocalSocket) {
        guard let datagram = try? client.receive(maximumLength: AdminProtocol.maximumDatagramLength) else { return }
        // No command takes descriptors with its request: close any a client sent, or each
        // such request would leak them into this process.
        for fd in datagram.fds { DescriptorIO.close(fd) }
        guard !datagram.isEndOfStream else { return }
        let session = AdminSession(connection: client)
        let request: AdminRequest
        do {
            guard !datagram.truncated else { throw AdminProtocolError.tooLong }
            request = try AdminProtocol.parseRequest(datagram.bytes)
        } catch {
            session.end(failure: "\(error)")
            return
        }
        self.state.withLock { $0.inFlight += 1 }
        Task { await self.serve(request, session) }
    }

    /// Waits (blocking) until every request being served has been answered, at most
    /// `timeout`: a host that handed over answers its takeover and `service` requests before
    /// it exits. Returns whether all were answered.
    public func finishRequests(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while self.state.withLock({ $0.inFlight > 0 }) {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return false }
            self.requestEnded.wait(timeout: left)
        }
        return true
    }

    func serve(_ request: AdminRequest, _ session: AdminSession) async {
        defer {
            self.state.withLock { $0.inFlight -= 1 }
            self.requestEnded.notify()
        }
        let handler = self.state.withLock { $0.handlers[request.command] }
        do {
            guard let handler else {
                let known = self.commands.joined(separator: ", ")
                throw AdminError("unknown command '\(request.command)'; known: \(known)")
            }
            try await handler(request, session)
            session.end(failure: nil)
        } catch {
            session.end(failure: "\(error)")
        }
    }
}
