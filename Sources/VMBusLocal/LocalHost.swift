import Foundation
import Logging
import VMBusChannel
import VMBusHost
import VMBusMemory
import VMBusWire

/// A host process's side of the local substrate (spec 09): listens on a Unix socket and serves
/// each guest that connects with its own `HostBus` and its own devices.
///
/// A guest that dies (even by SIGKILL) only ends its own connection: its channels close, its
/// GPADL mappings are unmapped, its descriptors are closed, and the host keeps accepting.
/// A malformed frame from a guest ends that guest's connection the same way.
public final class LocalHost: Sendable {
    /// What a host offers.
    public struct Options: Sendable {
        /// The control plane's configuration, the same for every guest.
        public var configuration = HostConfiguration()
        /// Guests served at once; more are refused with "host full".
        public var maximumGuests = 16
        /// The largest guest memory accepted.
        public var maximumMemoryBytes: UInt64 = 64 << 30
        /// How each guest's event loop waits: spin after activity, then block.
        public var waitPolicy = WaitPolicy()
        /// Records every guest's traffic, each guest connection under its own number (its id):
        /// substrate frames, channel messages, and its channels' packets and doorbells.
        public var capture: (any CaptureRecorder)?
        /// 16 guests at once, up to 64 GiB of memory each, the default configuration, no capture.
        public init() {}
    }

    /// One served guest, for status displays.
    public struct GuestInfo: Hashable, Sendable {
        /// The guest's number: its connection's order since start, from 1 (kept across a takeover).
        public var id: Int
        /// The guest memory it announced in HELLO, in bytes.
        public var memoryBytes: UInt64
    }

    /// The listening socket's path.
    public let path: String
    /// The options the host was created with.
    public let options: Options
    let listener: LocalSocket
    let makeDevices: @Sendable (HostBus) -> [any HostDevice]
    let logger: Logger
    let state = Locked(ServerState())
    /// The accept thread waits on the listener and on ``acceptParking``'s control eventfd.
    let acceptPoll: EventPoll
    let acceptParking: LoopPark

    struct ServerState: ~Copyable {
        var connections: [Int: LocalHostConnection] = [:]
        var nextID = 1
        var stopped = false
        var served = 0
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
        /// Connections paused and buses held by ``prepareHandover(timeout:)``.
        var handingOver: [LocalHostConnection] = []
        /// Restored connections whose loops ``start()`` starts.
        var restored: [LocalHostConnection] = []
    }

    /// Listens at `path` (replacing a stale socket file).
    /// - Parameter path: the socket's path. A socket file no process listens on is replaced; a
    ///   path another host listens on, or one that is not a socket, is refused.
    /// - Parameter options: guests served at once, the largest guest memory, the control
    ///   plane's configuration, the event loops' wait policy, capture.
    /// - Parameter logger: where connections, goodbyes and guest mistakes are reported.
    /// - Parameter devices: builds the devices for each new guest (registered on its bus).
    public convenience init(
        path: String, options: Options = Options(), logger: Logger = Logger(label: "vmbus.host"),
        devices: @escaping @Sendable (HostBus) -> [any HostDevice]
    ) throws(MemoryError) {
        try self.init(path: path, listener: try LocalSocket.listen(path: path), options: options, logger: logger, devices: devices)
    }

    init(
        path: String, listener: LocalSocket, options: Options, logger: Logger, devices: @escaping @Sendable (HostBus) -> [any HostDevice]
    ) throws(MemoryError) {
        self.path = path
        self.options = options
        self.listener = listener
        self.makeDevices = devices
        self.logger = logger
        self.acceptPoll = try EventPoll()
        self.acceptParking = try LoopPark()
        try self.acceptPoll.add(listener.fileDescriptor, token: Token.socket)
        try self.acceptPoll.add(self.acceptParking.control.fileDescriptor, token: Token.control)
    }

    /// Starts accepting guests on a background thread (and serving restored ones).
    public func start() {
        let restored = self.state.withLock { state in
            defer { state.restored = [] }
            return state.restored
        }
        for connection in restored {
            // Only now — the old host has let go — do the devices take packets again.
            let refused = connection.bus?.startRestored() ?? []
            if !refused.isEmpty { connection.logger.error("restored channels \(refused) refused their saved state: rescinded") }
            let id = connection.id
            connection.start { [weak self] in self?.released(id) }
        }
        ThreadName.start("vmbus-host-accept") { [self] in
            self.acceptLoop()
            _ = self.acceptParking.ended()
        }
        self.logger.info("listening", metadata: ["socket": "\(self.path)"])
    }

    /// Guests connected now.
    public var guests: [GuestInfo] {
        self.state.withLock { $0.connections.values.map { GuestInfo(id: $0.id, memoryBytes: $0.memoryBytes) }.sorted { $0.id < $1.id } }
    }

    /// Guests served since start (connected ones included).
    public var servedCount: Int { self.state.withLock { $0.served } }

    /// The bus of a connected guest.
    public func bus(guest id: Int) -> HostBus? { self.state.withLock { $0.connections[id]?.bus } }

    /// Stops accepting, says goodbye to every guest and removes the socket file.
    public func stop() {
        let connections: [LocalHostConnection] = self.state.withLock { state in
            state.stopped = true
            return Array(state.connections.values)
        }
        self.listener.shutdown()
        self.acceptParking.control.signal()
        for connection in connections { connection.close(reason: .normal) }
        LocalSocket.removeFile(path: self.path)
    }

    /// Waits until no guest is connected (every connection released).
    public func idle() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now: Bool = self.state.withLock { state in
                if state.connections.isEmpty { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    func released(_ id: Int) {
        let waiters: [CheckedContinuation<Void, Never>] = self.state.withLock { state in
            state.connections[id] = nil
            guard state.connections.isEmpty else { return [] }
            defer { state.idleWaiters = [] }
            return state.idleWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func acceptLoop() {
        while true {
            guard let tokens = try? self.acceptPoll.wait(timeoutMilliseconds: -1) else { return }
            if self.state.withLock({ $0.stopped }) { return }
            if tokens.contains(Token.control) {
                self.acceptParking.control.drain()
                // A takeover: stop accepting until it fails (go on) or succeeds (end here, the
                // listener now belongs to the new process).
                if self.acceptParking.isRequested {
                    guard self.acceptParking.parkHere() else { return }
                    continue
                }
            }
            guard tokens.contains(Token.socket) else { continue }
            guard let socket = try? self.listener.accept() else {
                if self.state.withLock({ $0.stopped }) { return }
                continue
            }
            let admitted: Int? = self.state.withLock { state in
                guard !state.stopped, state.connections.count < self.options.maximumGuests else { return nil }
                defer { state.nextID += 1 }
                return state.nextID
            }
            guard let id = admitted else {
                try? socket.send(SubstrateFrame.refuse(.hostFull, text: "at most \(self.options.maximumGuests) guests").encode())
                continue
            }
            let logger = self.logger
            var connectionLogger = logger
            connectionLogger[metadataKey: "guest"] = "\(id)"
            do {
                let connection = try LocalHostConnection(
                    id: id, socket: socket, options: self.options, logger: connectionLogger, makeDevices: self.makeDevices)
                self.state.withLock {
                    $0.connections[id] = connection
                    $0.served += 1
                }
                connection.start { [weak self] in self?.released(id) }
            } catch {
                logger.error("cannot serve a guest", metadata: ["error": "\(error)"])
            }
        }
    }
}
