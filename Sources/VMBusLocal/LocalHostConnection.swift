import Foundation
import Logging
import VMBusChannel
import VMBusHost
import VMBusMemory
import VMBusWire

/// One guest served by a ``LocalHost``: its socket, its memory descriptor, its doorbells and
/// its ``HostBus``, driven by one event-loop thread.
final class LocalHostConnection: Sendable {
    struct State: ~Copyable {
        var memoryFD: Int32 = -1
        var memoryBytes: UInt64 = 0
        var bus: HostBus?
        var doorbells: [UInt32: DoorbellPair] = [:]
        var monitorPage: MappedMemory?
        /// All of guest memory, mapped once, for GPA-direct reads.
        var wholeMemory: MappedMemory?
        var wrongConnectionIDs = 0
    }

    let id: Int
    let socket: LocalSocket
    let loop: EventLoop
    let options: LocalHost.Options
    let logger: Logger
    let makeDevices: @Sendable (HostBus) -> [any HostDevice]
    let state = Locked(State())
    /// Pauses the loop for a takeover.
    let parking: LoopPark
    /// Where this guest's traffic is recorded (``LocalHost/Options/capture``).
    let capture: CaptureTap?

    init(
        id: Int, socket: LocalSocket, options: LocalHost.Options, logger: Logger,
        makeDevices: @escaping @Sendable (HostBus) -> [any HostDevice]
    ) throws(MemoryError) {
        self.id = id
        self.socket = socket
        self.options = options
        self.logger = logger
        self.makeDevices = makeDevices
        self.capture = options.capture.map { CaptureTap(recorder: $0, connection: UInt32(truncatingIfNeeded: id), observer: .host) }
        self.loop = try EventLoop(policy: options.waitPolicy)
        self.parking = try LoopPark()
        try self.loop.poll.add(socket.fileDescriptor, token: Token.socket)
        try self.loop.poll.add(self.parking.control.fileDescriptor, token: Token.control)
    }

    var bus: HostBus? { self.state.withLock { $0.bus } }
    var memoryBytes: UInt64 { self.state.withLock { $0.memoryBytes } }

    func start(finished: @escaping @Sendable () -> Void) {
        self.loop.start(
            name: "vmbus-host-guest-\(self.id)",
            periodic: { [self] in self.bus?.negotiated?.monitorPages ?? false },
            handle: { [self] tokens in self.handle(tokens) },
            finished: { [self] in
                // A loop that handed its guest to another process leaves everything as it is:
                // the guest's socket, memory and doorbells now belong to the new host.
                if self.parking.ended() { self.relinquish() } else { self.teardown() }
                finished()
            })
    }

    /// Says goodbye and ends the connection (the loop sees the socket close).
    func close(reason: SubstrateReason) {
        try? self.socket.send(.goodbye(reason), capture: self.capture)
        self.socket.shutdown()
    }

    // MARK: The loop

    func handle(_ tokens: ArraySlice<UInt64>) -> Bool {
        for token in tokens {
            if token == Token.control {
                self.parking.control.drain()
            } else if token == Token.socket {
                guard self.receiveFrame() else { return false }
            } else if let relid = Token.relid(token) {
                let doorbell = self.state.withLock { $0.doorbells[relid]?.toHost }
                doorbell?.drain()
                self.bus?.signal(connectionID: VMBusConnectionID.openVMMChannel(relid: relid))
            }
        }
        self.scanMonitorPage()
        // Between two batches of events: a clean point to pause at.
        if self.parking.isRequested {
            // Parked, the loop runs no task: those preferring it run elsewhere meanwhile.
            self.loop.executor.pause(true)
            defer { self.loop.executor.pause(false) }
            return self.parking.parkHere()
        }
        return true
    }

    /// Reads and handles one frame; `false` ends the connection.
    func receiveFrame() -> Bool {
        var fds: [Int32]
        let frame: SubstrateFrame
        switch self.socket.receiveFrame() {
        case .frame(let received, let descriptors): (frame, fds) = (received, descriptors)
        case .failed(let error):
            self.logger.info("guest connection failed", metadata: ["error": "\(error)"])
            return false
        case .endOfStream:
            self.logger.info("guest disconnected")
            return false
        case .malformed(let error): return self.protocolError("malformed frame: \(error)")
        }
        defer { for fd in fds { DescriptorIO.close(fd) } }
        self.capture?.frame(outgoing: false, frame)
        let welcomed = self.bus != nil
        switch frame {
        case .hello(let version, let pageSize, let memoryBytes) where !welcomed:
            let fd = fds.removeFirst()
            return self.hello(version: version, pageSize: pageSize, memoryBytes: memoryBytes, fd: fd)
        case .message(let connectionID, let messageType, let payload) where welcomed:
            guard messageType == VMBusConnectionID.synicMessageType, self.acceptsConnectionID(connectionID) else {
                // What a failing HvPostMessage would be: nothing answers it (spec 09 §2.2).
                self.state.withLock { $0.wrongConnectionIDs += 1 }
                self.logger.warning("message to connection \(connectionID), type \(messageType): dropped")
                return true
            }
            self.bus?.receive(payload[...])
            return true
        case .goodbye(let reason):
            self.logger.info("guest said goodbye", metadata: ["reason": "\(reason)"])
            return false
        case .hello, .welcome, .refuse, .message, .doorbells:
            return self.protocolError("unexpected \(frame.kind.rawValue) frame")
        }
    }

    func protocolError(_ reason: String) -> Bool {
        self.logger.warning("closing the connection: \(reason)")
        try? self.socket.send(.goodbye(.protocolError), capture: self.capture)
        return false
    }

    /// Connection ids a guest may post to (spec 04 §6): 1 and 4, and the one this host gave.
    func acceptsConnectionID(_ id: UInt32) -> Bool {
        id == VMBusConnectionID.message || id == VMBusConnectionID.multiClientMessage
            || id == self.options.configuration.messageConnectionID
    }

    /// Checks the guest's memory (spec 09 §2.1) and answers WELCOME or REFUSE.
    func hello(version: UInt32, pageSize: UInt32, memoryBytes: UInt64, fd: Int32) -> Bool {
        func refuse(_ reason: SubstrateReason, _ text: String) -> Bool {
            DescriptorIO.close(fd)
            self.logger.warning("refused a guest: \(text)")
            try? self.socket.send(.refuse(reason, text: text), capture: self.capture)
            return false
        }
        guard version == SubstrateFrame.version else { return refuse(.unsupportedVersion, "substrate version \(version)") }
        guard pageSize == UInt32(MappedMemory.pageSize), memoryBytes > 0, memoryBytes % UInt64(MappedMemory.pageSize) == 0,
            memoryBytes <= self.options.maximumMemoryBytes
        else { return refuse(.badSize, "page size \(pageSize), memory \(memoryBytes) bytes") }
        guard let (size, seals) = try? MappedMemory.describe(fileDescriptor: fd), UInt64(size) == memoryBytes,
            MappedMemory.sealsFixSize(seals)
        else { return refuse(.notSealed, "the memory file is not \(memoryBytes) bytes, sealed against resizing") }
        let bus = HostBus(
            configuration: self.options.configuration, transport: LocalHostTransport(connection: self), capture: self.capture)
        self.state.withLock { state in
            state.memoryFD = fd
            state.memoryBytes = memoryBytes
            state.bus = bus
            state.wholeMemory = try? MappedMemory.map(fileDescriptor: fd, size: Int(memoryBytes))
        }
        for device in self.makeDevices(bus) { bus.register(device) }
        do {
            try self.socket.send(.welcome(version: SubstrateFrame.version), capture: self.capture)
        } catch {
            return false
        }
        self.logger.info("guest connected", metadata: ["memory": "\(memoryBytes >> 20) MiB"])
        return true
    }

    /// What a hypervisor does every so often: every pending bit of the guest's child → parent
    /// monitor page becomes a signal on its channel (01 §1.3).
    func scanMonitorPage() {
        guard let bus = self.bus, let gpa = bus.negotiated?.childToParentMonitorPage, gpa != 0 else { return }
        let page: MappedMemory? = self.state.withLock { state in
            if let page = state.monitorPage { return page }
            guard gpa % UInt64(MappedMemory.pageSize) == 0 else { return nil }
            state.monitorPage = try? MappedMemory.mapPages(
                of: state.memoryFD, memorySize: Int(state.memoryBytes), pfns: [gpa / UInt64(MappedMemory.pageSize)])
            return state.monitorPage
        }
        guard let page else { return }
        for group in 0..<(MonitorPage.monitorIDCount / 32) {
            let offset = MonitorPage.pendingOffset(monitorID: UInt8(group * 32))
            guard let bits = try? page.exchangeUInt32(0, at: offset), bits != 0 else { continue }
            for bit in 0..<32 where bits & (1 << UInt32(bit)) != 0 { bus.signal(monitorID: UInt8(group * 32 + bit)) }
        }
    }

    /// The guest now belongs to another host (a takeover): drop this process's hold on its
    /// memory file, doorbells and mappings — closing descriptors here does not touch the new
    /// host's copies — without a word to the guest and without shutting its socket down
    /// (a shutdown would act on the socket both processes share).
    func relinquish() {
        self.releaseResources()
        self.logger.info("guest handed over to the new host")
    }

    /// The guest is gone: release everything it had.
    func teardown() {
        self.bus?.connectionLost()
        self.releaseResources()
        self.socket.shutdown()
        self.logger.info("guest connection released")
    }

    /// Unmaps guest memory, drops the doorbells, closes the memory file and breaks the
    /// bus → transport → connection cycle.
    func releaseResources() {
        let (doorbells, fd): ([UInt32: DoorbellPair], Int32) = self.state.withLock { state in
            let doorbells = state.doorbells
            state.doorbells = [:]
            state.monitorPage = nil
            state.wholeMemory = nil
            state.bus = nil
            let fd = state.memoryFD
            state.memoryFD = -1
            return (doorbells, fd)
        }
        for pair in doorbells.values { self.loop.poll.remove(pair.toHost.fileDescriptor) }
        if fd >= 0 { DescriptorIO.close(fd) }
    }
}

/// The host bus's view of one local guest.
struct LocalHostTransport: HostTransport {
    let connection: LocalHostConnection

    var guestNumber: Int? { self.connection.id }

    /// The connection's event loop, which takes this guest's doorbells.
    var taskExecutor: (any TaskExecutor)? { self.connection.loop.executor }

    func post(toGuest message: [UInt8]) {
        let frame = SubstrateFrame.message(
            connectionID: UInt32(VMBusConnectionID.messageSINT), messageType: VMBusConnectionID.synicMessageType,
            payload: message)
        // A send fails only when the guest is gone; its loop then tears the connection down.
        try? self.connection.socket.send(frame.encode())
    }

    func signalGuest(relid: UInt32) {
        let doorbell = self.connection.state.withLock { $0.doorbells[relid]?.toGuest }
        doorbell?.signal()
    }

    func mapGpadl(_ ranges: [GpaRange]) throws(MemoryError) -> MappedMemory {
        let (fd, size) = self.connection.state.withLock { ($0.memoryFD, Int($0.memoryBytes)) }
        return try MappedMemory.mapPages(of: fd, memorySize: size, pfns: ranges.flatMap(\.pfns))
    }

    func openDoorbells(relid: UInt32, connectionID: UInt32) {
        do {
            let pair = DoorbellPair(toHost: try EventFD.nonBlocking(), toGuest: try EventFD.nonBlocking())
            try self.connection.socket.send(
                .doorbells(relid: relid, connectionID: connectionID),
                fds: [pair.toHost.fileDescriptor, pair.toGuest.fileDescriptor], capture: self.connection.capture)
            self.connection.state.withLock { $0.doorbells[relid] = pair }
            try self.connection.loop.poll.add(pair.toHost.fileDescriptor, token: Token.doorbell(relid))
        } catch {
            self.connection.logger.error("cannot set up doorbells for channel \(relid): \(error)")
        }
    }

    func closeDoorbells(relid: UInt32) {
        let pair = self.connection.state.withLock { $0.doorbells.removeValue(forKey: relid) }
        if let pair { self.connection.loop.poll.remove(pair.toHost.fileDescriptor) }
    }
}

extension LocalHostTransport: GuestMemoryReader {
    func readGuest(_ range: GpaRange, into buffer: inout [UInt8], at offset: Int) throws(MemoryError) {
        guard let memory = self.connection.state.withLock({ $0.wholeMemory }) else {
            let mapping = try self.mapGpadl([range])
            try mapping.read(at: Int(range.byteOffset), count: Int(range.byteCount), into: &buffer, at: offset)
            return
        }
        try memory.read(range: range, into: &buffer, at: offset)
    }

    var wholeGuestMemory: MappedMemory? { self.connection.state.withLock { $0.wholeMemory } }
}
