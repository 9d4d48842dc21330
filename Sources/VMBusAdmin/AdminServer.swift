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
    }
    let state = Locked(State())

    /// Listens at `path` (a stale socket file there is replaced, a live one refused); serving
    /// begins with ``start()``.
    /// - Throws: `MemoryError` when the path is in use or cannot be bound.
    public init(path: String) throws(MemoryError) {
        self.path = path
        self.listener = try LocalSocket.listen(path: path)
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
        let thread = Thread { [self] in self.acceptLoop() }
        thread.name = "vmbus-admin-accept"
        thread.start()
    }

    /// Stops accepting clients and removes the socket file. Requests already being served run
    /// to their end.
    public func stop() {
        self.state.withLock { $0.stopped = true }
        self.listener.shutdown()
        LocalSocket.removeFile(path: self.path)
    }

    func acceptLoop() {
        while true {
            guard let client = try? self.listener.accept() else {
                if self.state.withLock({ $0.stopped }) { return }
                // Out of descriptors, say: without a pause the loop would spin on the error.
                usleep(10_000)
                continue
            }
            // Each client's request is read on its own thread: a client that connects and
            // never sends must hold up neither the next client nor a thread of the cooperative
            // pool, which every task of the process shares.
            let thread = Thread { [self] in self.receiveRequest(from: client) }
            thread.name = "vmbus-admin-client"
            thread.start()
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
        Task { await self.serve(request, session) }
    }

    func serve(_ request: AdminRequest, _ session: AdminSession) async {
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
