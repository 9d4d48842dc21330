import Foundation
import Logging
import VMBusChannel
import VMBusGuest
import VMBusMemory
import VMBusWire

/// Why a local connection could not be made or ended.
public enum LocalError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The socket or memory could not be set up.
    case system(MemoryError)
    /// The host refused the guest (spec 09 §5).
    case refused(SubstrateReason, String)
    /// The host answered HELLO with something else, or closed.
    case protocolError(String)

    public var description: String {
        switch self {
        case .system(let error): return "\(error)"
        case .refused(let reason, let text): return "the host refused: \(reason)\(text.isEmpty ? "" : " (\(text))")"
        case .protocolError(let text): return "substrate protocol error: \(text)"
        }
    }
}

/// A guest process's side of the local substrate (spec 09): its memory (a sealed memfd), one
/// socket to the host, eventfd doorbells, and a `GuestBus` on top. An event-loop thread
/// delivers the host's messages and doorbells.
public final class LocalGuest: Sendable {
    /// How the connection ended.
    public enum Ending: Hashable, Sendable {
        /// This side disconnected.
        case local
        /// The host said goodbye.
        case goodbye(SubstrateReason)
        /// The host vanished (socket closed without goodbye, or a protocol error).
        case hostGone(String)
    }

    struct State: ~Copyable {
        var doorbells: [UInt32: DoorbellPair] = [:]
        var ending: Ending?
        var endingWaiters: [CheckedContinuation<Ending, Never>] = []
        var leaving = false
    }

    /// The guest's bus: register drivers on it, then call `connect()`.
    public let bus: GuestBus
    /// The guest's memory: the sealed memfd the host maps GPADLs from.
    public let memory: GuestMemory
    let socket: LocalSocket
    let loop: EventLoop
    let logger: Logger
    let state = Locked(State())
    let link = GuestLink()
    /// Where this guest's traffic is recorded, as connection 1.
    let capture: CaptureTap?

    /// Creates guest memory, connects, says HELLO and waits for WELCOME, then starts the
    /// event loop. Call `GuestBus.connect()` on ``bus`` next.
    /// - Parameters:
    ///   - path: the host's socket (`vmbus host --listen PATH`).
    ///   - memoryBytes: guest memory (default 256 MiB; sparse until touched).
    ///   - existing: the `memory:` argument: memory to use instead of new memory of
    ///     `memoryBytes` (a resumed guest's).
    ///   - configuration: what the bus proposes to the host (versions, features).
    ///   - monitorPages: give the host monitor pages (it then scans them periodically).
    ///   - waitPolicy: how the guest's event loop waits: spin after activity, then block.
    ///   - logger: where the substrate reports connection events and host mistakes.
    ///   - recorder: the `capture:` argument: records this guest's traffic as connection
    ///     `captureConnection`, seen from the guest: substrate frames from HELLO on, channel
    ///     messages, and its channels' packets and doorbells.
    ///   - captureConnection: the connection number in the capture (1 unless several guests
    ///     share a recorder).
    /// - Throws: ``LocalError``.
    public static func connect(
        path: String, memoryBytes: Int = 256 << 20, memory existing: GuestMemory? = nil, configuration: GuestConfiguration = GuestConfiguration(),
        monitorPages: Bool = false, waitPolicy: WaitPolicy = WaitPolicy(), logger: Logger = Logger(label: "vmbus.guest"),
        capture recorder: (any CaptureRecorder)? = nil, captureConnection: UInt32 = 1
    ) throws(LocalError) -> LocalGuest {
        let capture = recorder.map { CaptureTap(recorder: $0, connection: captureConnection, observer: .guest) }
        let memory: GuestMemory
        let socket: LocalSocket
        let memoryBytes = existing?.memory.size ?? memoryBytes
        do {
            if let existing { memory = existing } else { memory = try GuestMemory(size: memoryBytes) }
            socket = try LocalSocket.connect(path: path)
            try socket.send(
                .hello(version: SubstrateFrame.version, pageSize: UInt32(MappedMemory.pageSize), memoryBytes: UInt64(memoryBytes)),
                fds: [memory.fileDescriptor], capture: capture)
        } catch {
            throw LocalError.system(error)
        }
        let answer: LocalSocket.Datagram
        do { answer = try socket.receive() } catch { throw LocalError.system(error) }
        for fd in answer.fds { DescriptorIO.close(fd) }
        guard !answer.isEndOfStream else { throw LocalError.protocolError("the host closed the connection") }
        let frame = try? SubstrateFrame.parse(answer.bytes[...], descriptors: answer.fds.count)
        if let frame { capture?.frame(outgoing: false, frame) }
        switch frame {
        case .welcome(let version)?:
            guard version == SubstrateFrame.version else { throw LocalError.protocolError("host speaks substrate version \(version)") }
        case .refuse(let reason, let text)?: throw LocalError.refused(reason, text)
        default: throw LocalError.protocolError("no WELCOME in answer to HELLO")
        }
        do {
            return try LocalGuest(
                memory: memory, socket: socket, configuration: configuration, monitorPages: monitorPages,
                waitPolicy: waitPolicy, logger: logger, capture: capture)
        } catch {
            throw LocalError.system(error)
        }
    }

    init(
        memory: GuestMemory, socket: LocalSocket, configuration: GuestConfiguration, monitorPages: Bool,
        waitPolicy: WaitPolicy, logger: Logger, capture: CaptureTap? = nil
    ) throws(MemoryError) {
        self.memory = memory
        self.socket = socket
        self.logger = logger
        self.capture = capture
        self.loop = try EventLoop(policy: waitPolicy)
        try self.loop.poll.add(socket.fileDescriptor, token: Token.socket)
        self.bus = try GuestBus(
            configuration: configuration, transport: LocalGuestTransport(link: self.link, memory: memory, executor: self.loop.executor),
            monitorPages: monitorPages, capture: capture)
        self.link.guest = self
        self.loop.start(
            name: "vmbus-guest", periodic: { false }, handle: { [self] tokens in self.handle(tokens) },
            finished: { [self] in self.finish() })
    }

    /// Says goodbye to the host and stops (channels close with `CloseReason.connectionLost`).
    public func disconnect() {
        self.state.withLock { $0.leaving = true }
        try? self.socket.send(.goodbye(.normal), capture: self.capture)
        self.socket.shutdown()
    }

    /// Drops the connection without a goodbye, as a guest process that dies does (the host
    /// sees its socket close).
    public func hangUp() {
        self.state.withLock { $0.leaving = true }
        self.socket.shutdown()
    }

    /// Waits until the connection ends and says how.
    public func ended() async -> Ending {
        await withCheckedContinuation { (continuation: CheckedContinuation<Ending, Never>) in
            let ending: Ending? = self.state.withLock { state in
                if let ending = state.ending { return ending }
                state.endingWaiters.append(continuation)
                return nil
            }
            if let ending { continuation.resume(returning: ending) }
        }
    }

    /// How the connection ended, or `nil` while it lasts.
    public var ending: Ending? { self.state.withLock { $0.ending } }

    // MARK: The loop

    func handle(_ tokens: ArraySlice<UInt64>) -> Bool {
        for token in tokens {
            if token == Token.socket {
                guard self.receiveFrame() else { return false }
            } else if let relid = Token.relid(token) {
                let doorbell = self.state.withLock { $0.doorbells[relid]?.toGuest }
                doorbell?.drain()
                self.bus.signal(relid: relid)
            }
        }
        return true
    }

    func receiveFrame() -> Bool {
        var fds: [Int32]
        let frame: SubstrateFrame
        switch self.socket.receiveFrame() {
        case .frame(let received, let descriptors): (frame, fds) = (received, descriptors)
        case .failed(let error): return self.end(.hostGone("\(error)"))
        case .endOfStream:
            let leaving = self.state.withLock { $0.leaving }
            return self.end(leaving ? .local : .hostGone("the host closed the connection"))
        case .malformed(let error):
            try? self.socket.send(.goodbye(.protocolError), capture: self.capture)
            return self.end(.hostGone("malformed frame from the host: \(error)"))
        }
        defer { for fd in fds { DescriptorIO.close(fd) } }
        self.capture?.frame(outgoing: false, frame)
        switch frame {
        case .message(_, let messageType, let payload):
            if messageType == VMBusConnectionID.synicMessageType { self.bus.receive(payload[...]) }
            return true
        case .doorbells(let relid, _):
            let pair = DoorbellPair(toHost: EventFD(taking: fds[0]), toGuest: EventFD(taking: fds[1]))
            fds = []
            self.state.withLock { $0.doorbells[relid] = pair }
            try? self.loop.poll.add(pair.toGuest.fileDescriptor, token: Token.doorbell(relid))
            return true
        case .goodbye(let reason):
            return self.end(.goodbye(reason))
        case .hello, .welcome, .refuse:
            try? self.socket.send(.goodbye(.protocolError), capture: self.capture)
            return self.end(.hostGone("unexpected frame \(frame.kind.rawValue) from the host"))
        }
    }

    /// Records how the connection ended; the loop stops.
    func end(_ ending: Ending) -> Bool {
        self.state.withLock { state in
            if state.ending == nil { state.ending = ending }
        }
        return false
    }

    func finish() {
        self.bus.connectionLost()
        let (ending, waiters, doorbells): (Ending, [CheckedContinuation<Ending, Never>], [DoorbellPair]) = self.state.withLock { state in
            let ending = state.ending ?? .hostGone("the connection failed")
            state.ending = ending
            let waiters = state.endingWaiters
            state.endingWaiters = []
            let doorbells = Array(state.doorbells.values)
            state.doorbells = [:]
            return (ending, waiters, doorbells)
        }
        for pair in doorbells { self.loop.poll.remove(pair.toGuest.fileDescriptor) }
        self.socket.shutdown()
        self.link.guest = nil
        self.logger.info("disconnected", metadata: ["how": "\(ending)"])
        for waiter in waiters { waiter.resume(returning: ending) }
    }
}

/// The guest, filled in once it exists (its transport is built before it).
final class GuestLink: Sendable {
    let storage = Locked<LocalGuest?>(nil)
    var guest: LocalGuest? {
        get { self.storage.withLock { $0 } }
        set { self.storage.withLock { $0 = newValue } }
    }
}

/// The guest bus's view of the host process.
struct LocalGuestTransport: GuestTransport {
    let link: GuestLink
    let memory: GuestMemory
    /// The guest's event loop, which takes the host's doorbells.
    let executor: LoopExecutor

    var taskExecutor: (any TaskExecutor)? { self.executor }

    func post(_ message: [UInt8], connectionID: UInt32) -> HvPostStatus {
        guard let guest = self.link.guest else { return .substrateGone }
        let frame = SubstrateFrame.message(connectionID: connectionID, messageType: VMBusConnectionID.synicMessageType, payload: message)
        do {
            try guest.socket.send(frame.encode())
            return .success
        } catch {
            return .substrateGone
        }
    }

    func signalHost(_ signalling: Signalling, relid: UInt32) {
        guard let guest = self.link.guest else { return }
        if let monitorID = signalling.monitorID, let gpa = guest.bus.monitorPageAddresses?.childToParent, gpa != 0 {
            // Monitored: set the trigger bit; the host's periodic scan finds it (no doorbell).
            _ = try? self.memory.memory.orUInt32(
                MonitorPage.pendingBit(monitorID: monitorID), at: Int(gpa) + MonitorPage.pendingOffset(monitorID: monitorID))
            return
        }
        let doorbell = guest.state.withLock { $0.doorbells[relid]?.toHost }
        doorbell?.signal()
    }

    func channelClosed(relid: UInt32) {
        guard let guest = self.link.guest else { return }
        let pair = guest.state.withLock { $0.doorbells.removeValue(forKey: relid) }
        if let pair { guest.loop.poll.remove(pair.toGuest.fileDescriptor) }
    }
}
