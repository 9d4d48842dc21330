import Glibc
import VMBusChannel
import VMBusMemory
import VMBusWire

/// The guest's VMBus: runs a ``GuestConnection`` against a host through a ``GuestTransport``,
/// binds ``GuestDriver``s to offered devices, opens channels on rings in guest memory and
/// routes the host's doorbells to them (what Linux's `drivers/hv` does). The thin driver of the
/// state machine: operations wait for the host's answers; driver work runs in tasks, as
/// Linux's work queues, so a probe may itself wait for the host.
///
/// A host mistake never stops the bus: the message is dropped and recorded in
/// ``misbehaviours``.
public final class GuestBus: Sendable {
    enum WaitKey: Hashable {
        case connect, offers, unload
        case gpadl(UInt32)
        case teardown(UInt32)
        case open(UInt32)
        case modify(UInt32)
    }

    typealias Waiter = CheckedContinuation<Result<Void, BusError>, Never>

    struct OpenRing: Sendable {
        var gpadl: UInt32
        var buffer: GuestBuffer
        /// Pages of the guest → host ring (the downstream page offset).
        var split: Int
    }

    struct State: ~Copyable {
        var machine: GuestConnection
        var drivers: [any GuestDriver] = []
        var overrides: [GUID: String] = [:]
        var devices: [UInt32: GuestDevice] = [:]
        var bound: [UInt32: any GuestDriver] = [:]
        var channels: [UInt32: Channel] = [:]
        var rings: [UInt32: OpenRing] = [:]
        /// GPADL handle → channel, while a create or teardown is in flight.
        var gpadlChannels: [UInt32: UInt32] = [:]
        var waiters: [WaitKey: Waiter] = [:]
        var misbehaviours: [HostMisbehaviour] = []
        var tasks: [Task<Void, Never>] = []
        var monitorPages: GuestBuffer?
    }

    /// Work to do once the lock is released.
    enum Notice {
        case connectRefused(TLConnectResult)
        case resume(Waiter, Result<Void, BusError>)
        case probe(GuestDevice)
        case subChannel(UInt32, primary: UInt32)
        case rescinded(UInt32)
    }

    let state: Locked<State>
    let transport: any GuestTransport
    let connectResultHandler = Locked<(@Sendable (TLConnectResult) -> Void)?>(nil)
    /// Messages to the host in the machine's order, posted after the lock is released.
    let outbox: SerialDelivery<(bytes: [UInt8], connectionID: UInt32)>
    /// Where this bus records its channel messages and its channels' packets, doorbells,
    /// opens and closes; `nil` records nothing.
    public let capture: CaptureTap?

    /// - Parameters:
    ///   - configuration: the versions to propose, newest first, the 6.0 features to ask for and
    ///     the first GPADL handle.
    ///   - transport: the substrate: it carries this bus's messages and doorbells and owns guest
    ///     memory.
    ///   - monitorPages: give the host two monitor pages from guest memory (01 §1.3), so it
    ///     may offer monitored channels.
    ///   - capture: records the host's messages as they arrive and this guest's as the host's
    ///     queue takes them, and every channel's traffic.
    /// - Throws: `MemoryError` if the monitor pages cannot be allocated.
    public init(
        configuration: GuestConfiguration = GuestConfiguration(), transport: any GuestTransport, monitorPages: Bool = false,
        capture: CaptureTap? = nil
    ) throws(MemoryError) {
        var configuration = configuration
        var pages: GuestBuffer?
        if monitorPages {
            let buffer = try transport.memory.allocate(pages: 2)
            configuration.monitorPages = (buffer.firstPFN * 4096, (buffer.firstPFN + 1) * 4096)
            pages = buffer
        }
        var state = State(machine: GuestConnection(configuration: configuration))
        state.monitorPages = pages
        self.state = Locked(state)
        self.transport = transport
        self.capture = capture
        let bus = Weak<GuestBus>()
        self.outbox = SerialDelivery { item in bus.value?.post(item.bytes, connectionID: item.connectionID) }
        bus.value = self
    }

    // MARK: Inspection

    /// The guest memory rings and device buffers come from (netvsc's receive and send buffers).
    public var memory: GuestMemory { self.transport.memory }

    /// The negotiated version, while connected.
    public var version: VMBusVersion? { self.state.withLock { $0.machine.version } }

    /// Every device offered (primaries), by relid.
    public var devices: [GuestDevice] { self.state.withLock { $0.devices.values.sorted { $0.relid < $1.relid } } }

    /// The offer of any channel (primary or sub-channel).
    public func offer(_ relid: UInt32) -> OfferChannel? { self.state.withLock { $0.machine.offer(relid) } }

    /// The device with this instance GUID.
    public func device(instance: GUID) -> GuestDevice? {
        self.state.withLock { $0.devices.values.first { $0.instanceID == instance } }
    }

    /// The name of the driver bound to a device, if any.
    public func boundDriver(_ relid: UInt32) -> String? { self.state.withLock { $0.bound[relid]?.name } }

    /// The GPAs of the monitor pages this guest gave the host, if any.
    public var monitorPageAddresses: (parentToChild: UInt64, childToParent: UInt64)? {
        self.state.withLock { state in
            state.monitorPages.map { ($0.firstPFN * 4096, ($0.firstPFN + 1) * 4096) }
        }
    }

    /// The open channel with this relid.
    public func channel(_ relid: UInt32) -> Channel? { self.state.withLock { $0.channels[relid] } }

    /// An open channel and its offer.
    public struct OpenChannelEntry: Sendable {
        /// The channel's relid.
        public var relid: UInt32
        /// The host's offer of it.
        public var offer: OfferChannel
        /// The channel, for its statistics.
        public var channel: Channel
    }

    /// The channels open now, by relid: for reading their `Channel.statistics` (metrics).
    /// Costs one lock of the bus, nothing on the channels' data paths.
    public var openChannels: [OpenChannelEntry] {
        self.state.withLock { state in
            state.channels.sorted { $0.key < $1.key }.compactMap { relid, channel in
                state.machine.offer(relid).map { OpenChannelEntry(relid: relid, offer: $0, channel: channel) }
            }
        }
    }

    /// Where an open channel's rings are in guest memory: byte offsets of the guest → host
    /// and host → guest control pages (for inspection tools and tests).
    public func ringLocation(_ relid: UInt32) -> (outgoingControl: Int, incomingControl: Int)? {
        self.state.withLock { state in
            state.rings[relid].map { ($0.buffer.offset, $0.buffer.offset + $0.split * MappedMemory.pageSize) }
        }
    }

    /// The sub-channels offered for a primary.
    public func subChannels(of primary: UInt32) -> [UInt32] { self.state.withLock { $0.machine.subChannels(of: primary) } }

    /// Every host mistake seen so far, oldest first.
    public var misbehaviours: [HostMisbehaviour] { self.state.withLock { $0.misbehaviours } }

    // MARK: From the host

    /// A channel message from the host.
    public func receive(_ message: ArraySlice<UInt8>) {
        self.capture?.message(outgoing: false, port: UInt32(VMBusConnectionID.messageSINT), message)
        self.run { state in
            do throws(HostMisbehaviour) {
                return ((), try state.machine.receive(message))
            } catch {
                state.misbehaviours.append(error)
                return ((), [])
            }
        }
    }

    /// The host is gone: every waiting operation fails with ``BusError/hostGone``, every
    /// channel closes with `CloseReason.connectionLost`, drivers are unbound, and the bus is
    /// disconnected (``connect()`` may be called again on a new transport's bus only).
    public func connectionLost() {
        let (waiters, channels, rings, bound): ([Waiter], [Channel], [OpenRing], [(any GuestDriver, GuestDevice)]) =
            self.state.withLock { state in
            let bound = state.bound.compactMap { relid, driver in state.devices[relid].map { (driver, $0) } }
            let waiters = Array(state.waiters.values)
            let channels = Array(state.channels.values)
            let rings = Array(state.rings.values)
            state.waiters = [:]
            state.channels = [:]
            state.rings = [:]
            state.bound = [:]
            state.devices = [:]
            state.gpadlChannels = [:]
            state.machine = GuestConnection(configuration: state.machine.configuration)
            return (waiters, channels, rings, bound)
        }
        for channel in channels { channel.close(.connectionLost) }
        for (driver, device) in bound { self.spawn { await driver.remove(device, bus: self) } }
        for waiter in waiters { waiter.resume(returning: .failure(.hostGone)) }
        for ring in rings { self.transport.memory.release(ring.buffer) }
    }

    /// Posts an hvsock TL_CONNECT_REQUEST (07 §3.1).
    /// - Returns: `false` when not connected at protocol 4.0 or later.
    @discardableResult
    public func requestConnection(endpoint: GUID, service: GUID) -> Bool {
        self.run { state in
            let actions = state.machine.connectRequest(endpoint: endpoint, service: service)
            return (!actions.isEmpty, actions)
        }
    }

    /// Receives the host's TL_CONNECT_RESULT refusals (the hvsock layer).
    public func setConnectResultHandler(_ handler: (@Sendable (TLConnectResult) -> Void)?) {
        self.connectResultHandler.store(handler)
    }

    /// The host set this channel's event-flag bit.
    public func signal(relid: UInt32) {
        self.channel(relid)?.interrupt()
    }

    // MARK: Connection

    /// Negotiates a version (newest first), asks for the offers and returns once the host
    /// delivered them all; matching drivers are being probed by then (``settle()`` waits for
    /// them).
    /// - Throws: ``BusError/connectionFailed`` if no version is accepted.
    public func connect() async throws(BusError) -> VMBusVersion {
        try await self.call(.connect) { state in state.machine.connect() }.get()
        try await self.call(.offers) { state in state.machine.requestOffers() }.get()
        return self.version ?? .copper
    }

    /// Unbinds every driver, closes every channel and unloads the connection (Unload /
    /// UnloadResponse); ``connect()`` may follow.
    public func unload() async throws(BusError) {
        for device in self.devices { await self.unbind(device.relid) }
        let open: [UInt32] = self.state.withLock { Array($0.channels.keys) }
        for relid in open.sorted(by: >) { await self.close(relid) }
        try await self.call(.unload) { state in state.machine.unload() }.get()
        self.state.withLock { state in
            state.devices = [:]
            state.bound = [:]
        }
    }

    /// Waits until every probe, removal and rescind started so far has finished.
    public func settle() async {
        while true {
            let tasks: [Task<Void, Never>] = self.state.withLock { state in
                let tasks = state.tasks
                state.tasks = []
                return tasks
            }
            if tasks.isEmpty { return }
            for task in tasks { await task.value }
        }
    }

    // MARK: Driving the machine

    /// Registers a waiter for `key`, runs `body` on the machine, waits for the answer.
    /// - Parameter idle: the failure when `body` does nothing (nothing to wait for).
    func call(
        _ key: WaitKey, idle: BusError = .notConnected, _ body: @escaping @Sendable (inout State) -> [GuestAction]
    ) async -> Result<Void, BusError> {
        await withCheckedContinuation { (waiter: Waiter) in
            let refused: BusError? = self.run { state in
                guard state.waiters[key] == nil else { return (.busy, []) }
                let actions = body(&state)
                guard !actions.isEmpty else { return (idle, []) }
                state.waiters[key] = waiter
                return (nil, actions)
            }
            if let refused { waiter.resume(returning: .failure(refused)) }
        }
    }

    /// Runs `body` under the lock and handles the actions; posts and notices go out after.
    @discardableResult
    func run<R: Sendable>(_ body: @Sendable (inout State) -> (R, [GuestAction])) -> R {
        let (result, notices): (R, [Notice]) = self.state.withLock { state in
            let (result, actions) = body(&state)
            var notices: [Notice] = []
            self.handle(actions, &state, &notices)
            return (result, notices)
        }
        self.outbox.drain()
        self.deliver(notices)
        return result
    }

    func deliver(_ notices: [Notice]) {
        for notice in notices {
            switch notice {
            case .resume(let waiter, let result): waiter.resume(returning: result)
            case .probe(let device): self.spawn { await self.bind(device) }
            case .subChannel(let relid, let primary):
                let found: (any GuestDriver, GuestDevice)? = self.state.withLock { state in
                    guard let driver = state.bound[primary], let device = state.devices[primary] else { return nil }
                    return (driver, device)
                }
                if let (driver, device) = found { driver.subChannelOffered(relid, of: device, bus: self) }
            case .rescinded(let relid): self.spawn { await self.handleRescind(relid) }
            case .connectRefused(let result): self.connectResultHandler.load()?(result)
            }
        }
    }

    func spawn(_ work: @escaping @Sendable () async -> Void) {
        let task = Task { await work() }
        self.state.withLock { $0.tasks.append(task) }
    }

    /// Turns the machine's actions into posts, waiter results and notices.
    func handle(_ actions: [GuestAction], _ state: inout State, _ notices: inout [Notice]) {
        func finish(_ key: WaitKey, _ result: Result<Void, BusError>) {
            if let waiter = state.waiters.removeValue(forKey: key) { notices.append(.resume(waiter, result)) }
        }
        for action in actions {
            switch action {
            case .post(let message, let connectionID):
                guard let bytes = try? message.encode() else { preconditionFailure("cannot encode \(message.type.name)") }
                self.outbox.enqueue((bytes, connectionID))
            case .connected: finish(.connect, .success(()))
            case .connectionFailed: finish(.connect, .failure(.connectionFailed))
            case .offered(let offer):
                let device = GuestDevice(relid: offer.childRelID, offer: offer)
                state.devices[offer.childRelID] = device
                notices.append(.probe(device))
            case .subChannelOffered(let offer, let primary):
                notices.append(.subChannel(offer.childRelID, primary: primary))
            case .allOffersDelivered: finish(.offers, .success(()))
            case .rescinded(let relid):
                // Nothing the host will not answer any more may keep waiting (05 §7.1).
                finish(.open(relid), .failure(.rescinded(relid)))
                finish(.modify(relid), .failure(.rescinded(relid)))
                for (handle, channel) in state.gpadlChannels where channel == relid {
                    finish(.gpadl(handle), .failure(.rescinded(relid)))
                }
                notices.append(.rescinded(relid))
            case .gpadlCreated(let gpadl, let status):
                state.gpadlChannels[gpadl] = nil
                finish(.gpadl(gpadl), status.isSuccess ? .success(()) : .failure(.refused(status)))
            case .opened(let relid, let status):
                finish(.open(relid), status.isSuccess ? .success(()) : .failure(.refused(status)))
            case .gpadlTornDown(let gpadl): finish(.teardown(gpadl), .success(()))
            case .unloaded:
                for (_, channel) in state.channels { channel.close(.connectionLost) }
                state.channels = [:]
                finish(.unload, .success(()))
            case .modified(let relid, let status):
                finish(.modify(relid), status.isSuccess ? .success(()) : .failure(.refused(status)))
            case .connectRefused(let result):
                notices.append(.connectRefused(result))
            }
        }
    }

    /// Posts one message, retrying a full host queue as Linux does (01 §1.1).
    func post(_ bytes: [UInt8], connectionID: UInt32) {
        // Recorded before it is posted, so the host's answer can never come first in the capture
        // (a post the host's queue refuses for good is recorded all the same).
        self.capture?.message(outgoing: true, port: connectionID, bytes[...])
        var retry = PostRetry()
        while true {
            let status = self.transport.post(bytes, connectionID: connectionID)
            if status == .success { return }
            switch retry.failed(status) {
            case .retry(let nanoseconds): usleep(UInt32(clamping: nanoseconds / 1000))
            case .giveUp:
                self.run { state in ((), state.machine.postFailed(status)) }
                return
            }
        }
    }
}

/// A weak reference that can be filled in after `init` (the outbox needs the bus, which
/// owns the outbox).
final class Weak<T: AnyObject & Sendable>: Sendable {
    struct Box: ~Copyable { weak var object: T? }
    let storage = Locked(Box())
    var value: T? {
        get { self.storage.withLock { $0.object } }
        set { self.storage.withLock { $0.object = newValue } }
    }
}
