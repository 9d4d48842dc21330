import VMBusMemory

/// An NBD server exporting one ``BlockDevice``: `qemu-img`, `qemu-io`, `nbdinfo`, `fio`'s nbd
/// engine or the Linux `nbd-client` can read and write the device over a Unix socket (or TCP).
///
/// ```swift
/// let server = NBDServer(device: disk)
/// try server.start(.unix("/run/disk.sock"))   // listening when this returns
/// // … nbd+unix:///?socket=/run/disk.sock …
/// await server.stop()
/// ```
///
/// - Handshake: fixed newstyle only, no TLS, simple replies only (structured replies and meta
///   contexts are refused with `NBD_REP_ERR_UNSUP`). One export, named ``NBDExport/name``.
/// - Transmission: READ, WRITE, FLUSH, TRIM (if the device discards), WRITE_ZEROES, DISC; FUA
///   on any of them. Many requests in flight per connection (up to the device's queue depth),
///   answered as they complete; any number of connections (up to a limit).
/// - Any alignment is served: unaligned reads are cut from whole sectors, unaligned writes are
///   read-modify-write (see ``NBDBlockAccess``). Requests longer than the device's transfer
///   size are split.
/// - A client breaking the protocol (bad magic, unknown client flags, an option or write larger
///   than the limits) loses its connection; the server and its other clients go on.
public final class NBDServer: Sendable {
    /// What the server can be tuned with.
    public struct Configuration: Sendable {
        /// The maximum block size advertised (1 MiB…32 MiB, whole sectors).
        public var maximumBlockSize: Int
        /// Connections served at once; more are closed as they arrive.
        public var maximumConnections: Int
        /// Bytes of read and write data one connection may hold in flight (at least one
        /// maximum-size request goes through). With ``maximumConnections`` it bounds the data
        /// the server holds for clients to about `maximumConnections × maximumBufferedBytes`,
        /// whatever they send.
        public var maximumBufferedBytes: Int
        /// How long ``NBDServer/stop()`` lets clients read their last replies before it shuts
        /// their sockets down.
        public var stopGrace: Duration
        /// One line per client that breaks the protocol, and per listener failure.
        public var log: @Sendable (String) -> Void

        public init(
            maximumBlockSize: Int = NBDLimits.maximumPayload, maximumConnections: Int = 16,
            maximumBufferedBytes: Int = 64 << 20, stopGrace: Duration = .seconds(10),
            log: @escaping @Sendable (String) -> Void = { _ in }
        ) {
            self.maximumBlockSize = maximumBlockSize
            self.maximumConnections = maximumConnections
            self.maximumBufferedBytes = maximumBufferedBytes
            self.stopGrace = stopGrace
            self.log = log
        }
    }

    private struct Listener {
        let socket: StreamSocket
        let address: StreamAddress
    }

    private struct State {
        var listeners: [Listener] = []
        var connections: [Int: NBDConnection] = [:]
        var nextID = 1
        var stopped = false
        /// Waits for the last connection to end (``stop()``).
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
    }

    /// The export as clients see it.
    public let export: NBDExport
    public let configuration: Configuration
    let access: NBDBlockAccess
    let counters = Locked(NBDServerStatistics())
    private let state = Locked(State())

    /// A server for `device` (nothing listens until ``start(_:)``).
    /// - Parameter exportName: the name clients ask for; `""` is the default export.
    public init(device: any BlockDevice, exportName: String = "", configuration: Configuration = Configuration()) {
        self.export = NBDExport(device: device, name: exportName, maximumPayload: configuration.maximumBlockSize)
        self.configuration = configuration
        self.access = NBDBlockAccess(device)
    }

    /// Listens at `address` and serves every client that connects there. The socket accepts
    /// connections when this returns. May be called for several addresses.
    /// - Returns: the address listened at (with the port chosen for TCP port 0).
    /// - Throws: ``NBDServerError/stopped`` after ``stop()``; ``NBDServerError/listen(address:_:)``
    ///   when the socket cannot be made (a live process owns the Unix path, the port is taken).
    @discardableResult
    public func start(_ address: StreamAddress) throws(NBDServerError) -> StreamAddress {
        guard !self.state.withLock({ $0.stopped }) else { throw NBDServerError.stopped }
        let socket: StreamSocket
        do {
            socket = try StreamSocket.listen(address)
        } catch {
            throw NBDServerError.listen(address: address, error)
        }
        let bound: StreamAddress
        if case .tcp(let host, _) = address, let port = socket.localPort {
            bound = .tcp(host: host, port: port)
        } else {
            bound = address
        }
        let accepted = self.state.withLock { state in
            guard !state.stopped else { return false }
            state.listeners.append(Listener(socket: socket, address: bound))
            return true
        }
        guard accepted else {
            socket.shutdown()
            throw NBDServerError.stopped
        }
        ThreadName.start("nbd-accept") { [weak self] in
            let pause = WakeSignal()
            while true {
                do {
                    let client = try socket.accept()
                    guard let self else { break }
                    self.serve(client)
                } catch {
                    // After stop() the listener is shut down and accept fails for good; any
                    // other failure (out of descriptors, an aborted connection) passes.
                    guard let self, !self.state.withLock({ $0.stopped }) else { break }
                    self.configuration.log("nbd: accept on \(bound) failed: \(error)")
                    pause.wait(timeout: .milliseconds(100))
                }
            }
        }
        return bound
    }

    /// Stops: no new connections (Unix socket files are removed); every connection stops
    /// reading requests, answers those in flight and closes. Returns when all are closed. A
    /// client that has not read its replies after ``Configuration/stopGrace`` has its socket
    /// shut down and its replies dropped.
    public func stop() async {
        let listeners = self.state.withLock { state in
            state.stopped = true
            return state.listeners
        }
        for listener in listeners {
            listener.socket.shutdown()
            if case .unix(let path) = listener.address { LocalSocket.removeFile(path: path) }
        }
        let open = self.state.withLock { Array($0.connections.values) }
        for connection in open { connection.stop() }
        self.configuration.log("nbd: stopping; \(open.count) connection(s) finishing their requests")
        let grace = self.configuration.stopGrace
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.allConnectionsClosed() }
            group.addTask {
                try? await Task.sleep(for: grace)
                guard !Task.isCancelled else { return }
                for connection in self.state.withLock({ Array($0.connections.values) }) { connection.abort() }
            }
            // Whichever ends first; if the grace ran out, the connections were aborted and the
            // group still waits for them to close.
            await group.next()
            group.cancelAll()
        }
    }

    /// The counters so far.
    public var statistics: NBDServerStatistics {
        var statistics = self.counters.load()
        statistics.activeConnections = self.state.withLock { $0.connections.count }
        return statistics
    }

    /// The addresses listened at.
    public var addresses: [StreamAddress] { self.state.withLock { $0.listeners.map(\.address) } }

    // MARK: Connections

    private func serve(_ client: StreamSocket) {
        let connection: NBDConnection? = self.state.withLock { state in
            guard !state.stopped, state.connections.count < self.configuration.maximumConnections else { return nil }
            let connection = NBDConnection(
                id: state.nextID, socket: client, export: self.export, access: self.access, statistics: self.counters,
                maximumBufferedBytes: self.configuration.maximumBufferedBytes, log: self.configuration.log)
            state.nextID += 1
            state.connections[connection.id] = connection
            return connection
        }
        guard let connection else {
            self.counters.withLock { $0.connectionsRefused += 1 }
            client.shutdown()
            return
        }
        self.counters.withLock { $0.connectionsAccepted += 1 }
        connection.start { [self] connection in self.closed(connection) }
    }

    private func closed(_ connection: NBDConnection) {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.connections[connection.id] = nil
            guard state.connections.isEmpty else { return [] }
            defer { state.idleWaiters = [] }
            return state.idleWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once no connection is open.
    private func allConnectionsClosed() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let idle = self.state.withLock { state in
                if state.connections.isEmpty { return true }
                state.idleWaiters.append(waiter)
                return false
            }
            if idle { waiter.resume() }
        }
    }
}

/// What an ``NBDServer`` has done since it was made.
public struct NBDServerStatistics: Hashable, Sendable {
    /// Connections served.
    public var connectionsAccepted = 0
    /// Connections closed at once: over the limit, or arriving during ``NBDServer/stop()``.
    public var connectionsRefused = 0
    /// Connections open now.
    public var activeConnections = 0
    /// Connections closed because the client broke the protocol.
    public var protocolViolations = 0
    /// Requests answered (every reply, errors included).
    public var requests: UInt64 = 0
    /// Successful requests of each kind.
    public var reads: UInt64 = 0
    public var writes: UInt64 = 0
    public var writeZeroes: UInt64 = 0
    public var trims: UInt64 = 0
    public var flushes: UInt64 = 0
    /// Bytes of successful reads and writes.
    public var bytesRead: UInt64 = 0
    public var bytesWritten: UInt64 = 0
    /// Replies carrying an error.
    public var errors: UInt64 = 0

    public init() {}
}

/// Why an ``NBDServer`` could not listen.
public enum NBDServerError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The listening socket could not be made.
    case listen(address: StreamAddress, MemoryError)
    /// The server was stopped.
    case stopped

    public var description: String {
        switch self {
        case .listen(let address, let error): return "cannot listen at \(address): \(error)"
        case .stopped: return "the NBD server is stopped"
        }
    }
}
