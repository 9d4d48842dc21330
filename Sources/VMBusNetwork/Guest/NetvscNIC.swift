import VMBusChannel
import VMBusGuest
import VMBusMemory
import VMBusWire

/// One synthetic NIC in the guest: its channels, its buffers in guest memory, its RNDIS state
/// and its backend.
public final class NetvscNIC: Sendable {
    public let relid: UInt32
    public let version: NVSPVersion
    /// Where sub-channels and large-send buffers come from (a VMBus connection or a uio device).
    let bus: NetvscSubstrate
    let memory: MappedMemory
    let channel: Channel
    let receive: GuestBuffer
    let send: GuestBuffer
    let gpadls: (receive: UInt32, send: UInt32)
    let subAllocationSize: Int
    let sectionSize: Int
    public let sectionCount: Int
    let configuration: NetvscDriver.Configuration

    struct State {
        var freeSections: [Int] = []
        /// Transaction ids of the SEND_RNDIS_PKTs the host has not completed yet.
        var inFlight: Set<UInt64> = []
        var sectionWaiters: [CheckedContinuation<Int?, Never>] = []
        var nextRequest: UInt32 = 1
        var requests: [UInt32: CheckedContinuation<RNDISMessage?, Never>] = [:]
        var backend: (any NetworkBackend)?
        var macAddress: MACAddress?
        var mtu = 1500
        var linkUp = true
        var channels: [UInt16: Channel] = [:]
        var statistics: [UInt16: NetworkQueueStatistics] = [:]
        var indirection: [UInt32] = Array(repeating: 0, count: NVSP.indirectionTableEntries)
        var closed = false
        /// Queues the host granted (sub-channels + 1); `nil` until it answered SUBCHANNEL.
        var grantedQueues: Int?
        var rssRequested = false
        var rssSet = false
        var sendTableReceived = false
        var queueWaiters: [CheckedContinuation<Void, Never>] = []
        /// Offloads agreed with the host and the backend.
        var offloads: NetworkOffloads = []
        /// Buffers for segments too large for a section (with LSO), and the free ones.
        var large: GuestBuffer?
        var freeLarge: [Int] = []
    }
    let state = Locked(State())
    let changes = ChangeWaiters()
    /// Notified when the host completes sends (sections free): a backend thread waiting.
    let room = WakeSignal()
    /// Gives the buffers back after shut-down.
    let released = Locked<Task<Void, Never>?>(nil)

    /// Transaction ids of this driver's own packets, far above the channel's request ids:
    /// a data send in section N, and a control message in section N.
    static let dataTag: UInt64 = 1 << 40
    static let controlTag: UInt64 = 2 << 40
    /// A segment sent GPA-direct from large-send buffer N.
    static let largeTag: UInt64 = 3 << 40
    static let tagMask: UInt64 = 0xFF << 40

    init(
        relid: UInt32, version: NVSPVersion, bus: NetvscSubstrate, channel: Channel, buffers: NetvscBuffers, subAllocationSize: Int,
        sectionSize: Int, configuration: NetvscDriver.Configuration
    ) {
        let (receive, send) = (buffers.receive, buffers.send)
        self.relid = relid
        self.version = version
        self.bus = bus
        self.memory = buffers.memory
        self.channel = channel
        self.receive = receive
        self.send = send
        self.gpadls = buffers.gpadls
        self.subAllocationSize = subAllocationSize
        self.sectionSize = sectionSize
        self.sectionCount = send.byteCount / sectionSize
        self.configuration = configuration
        self.state.withLock { state in
            state.freeSections = Array((0..<(send.byteCount / sectionSize)).reversed())
            state.channels[0] = channel
            state.statistics[0] = NetworkQueueStatistics()
        }
    }

    /// The MAC address the host reported.
    public var macAddress: MACAddress? { self.state.withLock { $0.macAddress } }
    /// The L3 MTU the host allows.
    public var mtu: Int { self.state.withLock { $0.mtu } }
    /// Whether the host says the link is up.
    public var linkUp: Bool { self.state.withLock { $0.linkUp } }
    /// Open queues (the primary and sub-channels).
    public var queueCount: Int { self.state.withLock { $0.channels.count } }
    /// Per-queue counters.
    public var statistics: [UInt16: NetworkQueueStatistics] { self.state.withLock { $0.statistics } }
    /// Send sections free now.
    public var freeSections: Int { self.state.withLock { $0.freeSections.count } }

    /// Waits until the host completed every send (all sections free), at most `timeout`.
    public func waitForSendsCompleted(timeout: Duration = .seconds(30)) async -> Bool {
        await self.changes.wait(timeout: timeout) { [self] in self.freeSections == self.sectionCount }
    }

    /// Waits until every queue the host granted is open, the RSS parameters are set and the
    /// host's send table arrived (at once with a single queue, or once the NIC shut down).
    public func queuesReady() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = self.state.withLock { state in
                if state.closed || Self.queuesReady(state) { return true }
                state.queueWaiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }

    static func queuesReady(_ state: borrowing State) -> Bool {
        guard let granted = state.grantedQueues else { return false }
        return granted == 1 || (state.channels.count == granted && state.rssSet && state.sendTableReceived)
    }

    // MARK: Bringing the device up (11 §4)

    static func bringUp(
        _ device: GuestDevice, bus: GuestBus, configuration: NetvscDriver.Configuration,
        makeBackend: @escaping @Sendable (MACAddress, Int) -> any NetworkBackend
    ) async throws -> NetvscNIC {
        let channel = try await bus.open(device.relid, pages: RingPages(each: max(2, configuration.ringPages)), options: Self.channelOptions)
        return try await Self.bringUp(
            channel, relid: device.relid, substrate: NetvscSubstrate(bus), configuration: configuration, makeBackend: makeBackend
        ) { _ in
            // A VMBus guest allocates both buffers in its memory and describes them with GPADLs.
            let memory = bus.memory
            let receive = try memory.allocate(pages: Self.pages(configuration.receiveBufferBytes))
            let send = try memory.allocate(pages: Self.pages(configuration.sendBufferBytes))
            let receiveGpadl = try await bus.createGpadl(channel: device.relid, ranges: [try receive.range()])
            let sendGpadl = try await bus.createGpadl(channel: device.relid, ranges: [try send.range()])
            return NetvscBuffers(memory: memory.memory, receive: receive, send: send, gpadls: (receiveGpadl, sendGpadl))
        }
    }

    /// Completions of this driver's own ids (receive slots, sections) reach it, not the requestor.
    static var channelOptions: ChannelOptions {
        var options = ChannelOptions()
        options.rejectUnknownCompletions = false
        return options
    }

    /// Brings a NIC up on its open primary channel; `buffers` supplies the receive and send
    /// buffers with their GPADL handles once NDIS is configured (made for it, or given).
    static func bringUp(
        _ channel: Channel, relid: UInt32, substrate: NetvscSubstrate, configuration: NetvscDriver.Configuration,
        makeBackend: @escaping @Sendable (MACAddress, Int) -> any NetworkBackend,
        buffers makeBuffers: (NVSPVersion) async throws -> NetvscBuffers
    ) async throws -> NetvscNIC {
        // Completions of the set-up requests are routed by the queue's handler: it runs from the start.
        let primary = GuestQueue(channel: channel, queue: 0)
        let version = try await Self.negotiate(channel)
        let frameMTU = UInt32(configuration.mtu + 14)
        if version >= .v2 {
            try await Self.post(.ndisConfig(mtu: frameMTU, capabilities: .ieee8021q), on: channel)
        }
        try await Self.post(.ndisVersion(major: 6, minor: version > .v4 ? 30 : 1), on: channel)
        let buffers = try await makeBuffers(version)
        let subAllocation = try await Self.receiveBuffer(buffers.gpadls.receive, bytes: buffers.receive.byteCount, on: channel)
        let sectionSize = try await Self.sendBuffer(buffers.gpadls.send, bytes: buffers.send.byteCount, on: channel)
        let nic = NetvscNIC(
            relid: relid, version: version, bus: substrate, channel: channel, buffers: buffers, subAllocationSize: subAllocation,
            sectionSize: sectionSize, configuration: configuration)
        primary.attach(nic)
        try await nic.initializeRNDIS(makeBackend: makeBackend)
        return nic
    }

    static func pages(_ bytes: Int) -> Int { max(1, (bytes + GpaRange.pageSize - 1) / GpaRange.pageSize) }

    /// INIT {v, v} for 6.1, 6, 5, 4, 2, 1 until one is accepted (Linux's order).
    static func negotiate(_ channel: Channel) async throws -> NVSPVersion {
        for version in NVSPVersion.guestOrder {
            let answer = try await Self.request(.initialize(minimum: version, maximum: version), on: channel)
            if case .initializeComplete(_, _, let status) = answer, status.isSuccess { return version }
        }
        throw NetvscError.noCommonVersion
    }

    static func receiveBuffer(_ gpadl: UInt32, bytes: Int, on channel: Channel) async throws -> Int {
        let answer = try await Self.request(.receiveBuffer(gpadl: gpadl, id: NVSP.receiveBufferID), on: channel)
        guard case .receiveBufferComplete(let status, let sections) = answer, status.isSuccess else {
            throw NetvscError.refused("the receive buffer")
        }
        // What Linux checks (11 §8): one section at offset 0, sub-allocations of at least 68
        // bytes that fit the buffer.
        guard sections.count == 1, let section = sections.first, section.offset == 0, section.subAllocationSize >= 68,
            UInt64(section.subAllocationSize) * UInt64(section.subAllocationCount) <= UInt64(bytes)
        else { throw NetvscError.malformed("receive buffer sections \(sections)") }
        return Int(section.subAllocationSize)
    }

    static func sendBuffer(_ gpadl: UInt32, bytes: Int, on channel: Channel) async throws -> Int {
        let answer = try await Self.request(.sendBuffer(gpadl: gpadl, id: NVSP.sendBufferID), on: channel)
        guard case .sendBufferComplete(let status, let size) = answer, status.isSuccess else { throw NetvscError.refused("the send buffer") }
        guard size >= 68, Int(size) <= bytes else { throw NetvscError.malformed("send section size \(size)") }
        return Int(size)
    }

    /// An NVSP request and its completion (40 bytes, as Linux sends).
    static func request(_ message: NVSPMessage, on channel: Channel) async throws -> NVSPMessage {
        let answer: [UInt8]
        do { answer = try await channel.request(message.encode()[...]) } catch { throw NetvscError.channel(error) }
        do { return try NVSPMessage(parsing: answer[...]) } catch { throw NetvscError.malformed("\(error)") }
    }

    /// An NVSP message without completion (Linux: NDIS_CONFIG, NDIS_VER).
    static func post(_ message: NVSPMessage, on channel: Channel) async throws {
        do { try await channel.send(inBand: message.encode()[...], transactionID: NVSP.noCompletionID) } catch {
            throw NetvscError.channel(error)
        }
    }
}
