import VMBusChannel
import VMBusGuest
import VMBusHost
import VMBusMemory
import VMBusWire

/// A host and a guest in one process, joined by a loopback "hypervisor": it carries channel
/// messages both ways, rings doorbells (events and monitor pages) and owns guest memory (a
/// memfd the host maps GPADLs from). Use it to run devices without a VM, in tests, fuzzing
/// and benchmarks.
///
/// Keep the `LoopbackBus` alive while its channels are in use: the buses hold it only weakly
/// (so dropping it frees everything), and a dropped bus delivers nothing more.
///
/// Delivery is deterministic: in ``Mode/automatic`` mode everything posted is delivered at
/// once on the posting thread, in order (the bus that posts is never re-entered while it holds
/// its lock); in ``Mode/manual`` mode nothing moves until ``step()`` or ``run()``.
public final class LoopbackBus: Sendable {
    /// How deliveries happen.
    public enum Mode: Hashable, Sendable {
        /// Deliver as soon as posted.
        case automatic
        /// Deliver only on ``LoopbackBus/step()`` / ``LoopbackBus/run()``.
        case manual
    }

    /// Something in flight.
    public enum Delivery: Hashable, Sendable {
        case toHost([UInt8], connectionID: UInt32)
        case toGuest([UInt8])
        /// `HvSignalEvent` from the guest.
        case signalHost(connectionID: UInt32)
        /// The guest set monitor bits: scan the child → parent page.
        case scanMonitorPage
        /// The host set a channel's event-flag bit.
        case signalGuest(relid: UInt32)
    }

    struct Counters: ~Copyable {
        var toHost = 0
        var toGuest = 0
        var failPosts = 0
        var failStatus = HvPostStatus.insufficientBuffers
        var rejectedPosts = 0
        var eventSignals = 0
        var monitorSignals = 0
    }

    public let mode: Mode
    public let memory: GuestMemory
    public let host: HostBus
    public let guest: GuestBus
    let wire: SerialDelivery<Delivery>
    let counters: Locked<Counters>
    let tap = Locked<(@Sendable (Delivery) -> Void)?>(nil)

    /// - Parameters:
    ///   - memorySize: bytes of guest memory (sparse: untouched pages cost nothing).
    ///   - monitorPages: the guest hands the host monitor pages (01 §1.3).
    ///   - capture: records the session as connection 1, seen from the host: every message,
    ///     ring packet and doorbell passes the host in one direction or the other, so its view
    ///     is the whole conversation, each event once.
    /// - Throws: ``MemoryError`` if guest memory cannot be created.
    public init(
        memorySize: Int = 64 << 20, host: HostConfiguration = HostConfiguration(),
        guest: GuestConfiguration = GuestConfiguration(), mode: Mode = .automatic, monitorPages: Bool = false,
        hostChannelOptions: ChannelOptions? = nil, capture: (any CaptureRecorder)? = nil
    ) throws(MemoryError) {
        let memory = try GuestMemory(size: memorySize)
        let link = Link()
        let wire = SerialDelivery<Delivery> { link.bus?.deliver($0) }
        let counters = Locked(Counters())
        self.mode = mode
        self.memory = memory
        self.wire = wire
        self.counters = counters
        self.host = HostBus(
            configuration: host, transport: LoopbackHostSide(link: link, memory: memory), channelOptions: hostChannelOptions,
            capture: capture.map { CaptureTap(recorder: $0, connection: 1, observer: .host) })
        self.guest = try GuestBus(
            configuration: guest, transport: LoopbackGuestSide(link: link, memory: memory), monitorPages: monitorPages)
        link.bus = self
    }

    // MARK: Stepping

    /// Delivers the oldest item in flight; `false` if none (or another thread is delivering).
    @discardableResult
    public func step() -> Bool { self.wire.step() }

    /// Delivers until nothing is in flight.
    public func run() { self.wire.drain() }

    /// Items in flight.
    public var pending: Int { self.wire.pending }

    /// Messages delivered so far, each way.
    public var messageCounts: (toHost: Int, toGuest: Int) { self.counters.withLock { ($0.toHost, $0.toGuest) } }

    // MARK: Fault injection

    /// Makes the next `count` guest posts fail with `status` (as a full host queue does), to
    /// exercise the guest's retry policy.
    public func failNextPosts(_ count: Int, status: HvPostStatus = .insufficientBuffers) {
        self.counters.withLock {
            $0.failPosts = count
            $0.failStatus = status
        }
    }

    /// Guest → host doorbells so far: `HvSignalEvent`s and monitor-page bits.
    public var doorbellCounts: (events: Int, monitor: Int) {
        self.counters.withLock { ($0.eventSignals, $0.monitorSignals) }
    }

    /// Posts refused so far by ``failNextPosts(_:status:)``.
    public var rejectedPosts: Int { self.counters.withLock { $0.rejectedPosts } }

    /// Delivers raw bytes to the host as if the guest posted them (a hostile guest).
    public func injectToHost(_ bytes: [UInt8]) { self.submit(.toHost(bytes, connectionID: VMBusConnectionID.message)) }

    /// Delivers raw bytes to the guest as if the host posted them (a hostile host).
    public func injectToGuest(_ bytes: [UInt8]) { self.submit(.toGuest(bytes)) }

    // MARK: The wire

    func submit(_ delivery: Delivery) {
        switch self.mode {
        case .automatic: self.wire.submit(delivery)
        case .manual: self.wire.enqueue(delivery)
        }
    }

    func post(fromGuest bytes: [UInt8], connectionID: UInt32) -> HvPostStatus {
        let refused: HvPostStatus? = self.counters.withLock { counters in
            guard counters.failPosts > 0 else { return nil }
            counters.failPosts -= 1
            counters.rejectedPosts += 1
            return counters.failStatus
        }
        if let refused { return refused }
        self.submit(.toHost(bytes, connectionID: connectionID))
        return .success
    }

    /// Calls `observer` with every delivery just before it happens (tracing, capture); `nil`
    /// removes it. It runs on the delivering thread and must not block.
    public func setTap(_ observer: (@Sendable (Delivery) -> Void)?) {
        self.tap.store(observer)
    }

    func deliver(_ delivery: Delivery) {
        if let observer = self.tap.load() { observer(delivery) }
        switch delivery {
        case .toHost(let bytes, _):
            self.counters.withLock { $0.toHost += 1 }
            self.host.receive(bytes[...])
        case .toGuest(let bytes):
            self.counters.withLock { $0.toGuest += 1 }
            self.guest.receive(bytes[...])
        case .signalHost(let connectionID): self.host.signal(connectionID: connectionID)
        case .scanMonitorPage: self.scanMonitorPage()
        case .signalGuest(let relid): self.guest.signal(relid: relid)
        }
    }

    /// What a hypervisor does every ~100 µs, done at once here: take every pending bit of the
    /// guest's child → parent monitor page and signal the channels they stand for (01 §1.3).
    func scanMonitorPage() {
        guard let gpa = self.host.negotiated?.childToParentMonitorPage, gpa != 0 else { return }
        // The page address is guest input: it must be a whole page inside guest memory.
        guard gpa % UInt64(MappedMemory.pageSize) == 0, gpa < UInt64(self.memory.memory.size) else { return }
        for group in 0..<(MonitorPage.monitorIDCount / 32) {
            let offset = Int(gpa) + MonitorPage.pendingOffset(monitorID: UInt8(group * 32))
            guard let bits = try? self.memory.memory.exchangeUInt32(0, at: offset), bits != 0 else { continue }
            for bit in 0..<32 where bits & (1 << UInt32(bit)) != 0 {
                self.host.signal(monitorID: UInt8(group * 32 + bit))
            }
        }
    }

    func signalHost(_ signalling: Signalling) {
        guard let monitorID = signalling.monitorID else {
            self.counters.withLock { $0.eventSignals += 1 }
            self.submit(.signalHost(connectionID: signalling.connectionID))
            return
        }
        self.counters.withLock { $0.monitorSignals += 1 }
        // The guest's half: set the pending bit in its own child → parent page (its GPA is
        // the guest's own configuration, already inside guest memory).
        if let gpa = self.host.negotiated?.childToParentMonitorPage, gpa != 0, gpa < UInt64(self.memory.memory.size) {
            _ = try? self.memory.memory.orUInt32(
                MonitorPage.pendingBit(monitorID: monitorID), at: Int(gpa) + MonitorPage.pendingOffset(monitorID: monitorID))
        }
        self.submit(.scanMonitorPage)
    }
}

/// The bus, filled in once it exists (the transports are built before it).
final class Link: Sendable {
    struct Box: ~Copyable { weak var bus: LoopbackBus? }
    let storage = Locked(Box())
    var bus: LoopbackBus? {
        get { self.storage.withLock { $0.bus } }
        set { self.storage.withLock { $0.bus = newValue } }
    }
}

struct LoopbackHostSide: HostTransport {
    let link: Link
    let memory: GuestMemory

    func post(toGuest message: [UInt8]) { self.link.bus?.submit(.toGuest(message)) }
    func signalGuest(relid: UInt32) { self.link.bus?.submit(.signalGuest(relid: relid)) }
    func mapGpadl(_ ranges: [GpaRange]) throws(MemoryError) -> MappedMemory { try self.memory.mapGpadl(ranges) }
}

extension LoopbackHostSide: GuestMemoryReader {
    func readGuest(_ range: GpaRange, into buffer: inout [UInt8], at offset: Int) throws(MemoryError) {
        try self.memory.memory.read(range: range, into: &buffer, at: offset)
    }

    var wholeGuestMemory: MappedMemory? { self.memory.memory }
}

struct LoopbackGuestSide: GuestTransport {
    let link: Link
    let memory: GuestMemory

    func post(_ message: [UInt8], connectionID: UInt32) -> HvPostStatus {
        self.link.bus?.post(fromGuest: message, connectionID: connectionID) ?? .invalidConnectionID
    }

    func signalHost(_ signalling: Signalling, relid: UInt32) { self.link.bus?.signalHost(signalling) }
}
