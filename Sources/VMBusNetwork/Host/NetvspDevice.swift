import VMBusChannel
import VMBusHost
import VMBusMemory
import VMBusWire

/// The host side of the synthetic NIC — what Hyper-V's VSP and OpenVMM's netvsp are (spec 11):
/// NVSP set-up on the primary channel (versions 1–6.1, NDIS config, receive and send buffers),
/// RNDIS control (initialize, OID queries and sets, keepalive, halt), the guest's frames from
/// send sections or GPA-direct ranges to the ``NetworkBackend``, the backend's frames into the
/// guest's receive buffer as transfer-page packets, sub-channels for several queues.
///
/// Everything the guest writes is checked (11 §8): a malformed data packet is completed with a
/// failure and counted; a message that breaks the protocol (a section outside the send
/// buffer, a completion for a slot not lent, set-up out of order) stops that channel.
public final class NetvspDevice: HostDevice {
    public let offer: HostOffer
    public let backend: any NetworkBackend
    /// Queues (channels) granted at most: the primary plus sub-channels.
    public let maximumQueues: Int
    /// Send-buffer section size the host asks for (OpenVMM: 6144).
    public static let sectionSize = 6144

    struct State: ~Copyable {
        var bus: (any DeviceBus)?
        var version: NVSPVersion?
        var frameMTU = 1514
        var receive: ReceiveSlots?
        /// The send buffer's mapping and the GPADL the guest gave it as.
        var sendBuffer: (memory: MappedMemory, gpadl: UInt32)?
        var channels: [UInt16: Channel] = [:]
        var primaryRelid: UInt32?
        var packetFilter = RNDISPacketFilter()
        var linkUp = true
        var rndisReady = false
        var statistics: [UInt16: NetworkQueueStatistics] = [:]
        /// Whether the backend pushes frames into this device (from the primary's open on).
        var receiving = false
        var rssTable: [UInt32] = []
        /// Set-up messages seen on this open (each comes once, 11 §4).
        var setUpSeen: Set<UInt32> = []
        /// The guest enabled receive segment coalescing (11 §5.3): large segments from the
        /// backend go to it over several sub-allocations.
        var rsc = false
        /// Sub-channels granted by the last SUBCHANNEL; the send table goes out once all are open.
        var grantedSubChannels = 0
        /// Each open queue's handler state.
        var contexts: [UInt16: QueueContext] = [:]
        /// A takeover quiesced the device: the backend's frames are not taken.
        var paused = false
        /// Backend deliveries between taking their slots and sending their packets.
        var delivering = 0
    }

    let state: Locked<State>
    let changes = ChangeWaiters()
    /// Notified when the guest returns receive slots: a backend thread waiting for room.
    let room = WakeSignal()

    /// - Parameters:
    ///   - instance: the NIC's instance GUID.
    ///   - maximumQueues: 1 for a single queue; more lets the guest ask for sub-channels (vRSS).
    /// The MAC address the guest is told (OID 802_3_PERMANENT_ADDRESS).
    public let macAddress: MACAddress

    /// - Parameters:
    ///   - macAddress: the NIC's address; by default the backend's (a test port's).
    ///   - wantsMonitor: offer with a monitor id, so the guest signals by setting a bit in the
    ///     monitor page instead of a doorbell. A user-space host only sees those bits when it
    ///     scans the page (every millisecond), which would add that much to every guest send:
    ///     off by default; on for guests that can signal no other way (DPDK's netvsc over uio).
    public init(
        instance: GUID, backend: any NetworkBackend, macAddress: MACAddress? = nil, maximumQueues: Int = 1, wantsMonitor: Bool = false
    ) {
        self.macAddress = macAddress ?? backend.macAddress
        self.offer = HostOffer(
            interfaceType: DeviceClass.network.classID, interfaceInstance: instance,
            maximumSubChannels: UInt16(max(0, min(maximumQueues, 64) - 1)), wantsMonitor: wantsMonitor)
        self.backend = backend
        self.maximumQueues = max(1, min(maximumQueues, 64))
        self.state = Locked(State())
    }

    /// The guest completes receive slots with ids this host chose (the slot index), not with
    /// requestor ids: such completions must reach the device (11 §7.2).
    public func channelOptions(_ busOptions: ChannelOptions) -> ChannelOptions {
        var options = busOptions
        options.rejectUnknownCompletions = false
        return options
    }

    /// The bus the device is registered on (needed to map the guest's buffers and to offer
    /// sub-channels): a ``HostBus``, or the uio export's stand-in for one.
    public func attach(to bus: any DeviceBus) { self.state.withLock { $0.bus = bus } }

    /// The negotiated NVSP version, once the guest initialised.
    public var version: NVSPVersion? { self.state.withLock { $0.version } }

    /// Whether RNDIS is initialised and the guest set a packet filter (frames flow).
    public var isReady: Bool { self.state.withLock { $0.rndisReady && !$0.packetFilter.isEmpty } }

    /// The offloads advertised to the guest (its backend's), and whether the guest turned
    /// RSC on.
    public var offloads: (advertised: NetworkOffloads, receiveSegmentCoalescing: Bool) {
        (self.backend.offloads, self.state.withLock { $0.rsc })
    }

    /// Per-queue counters, by sub-channel index (0: the primary).
    public var statistics: [UInt16: NetworkQueueStatistics] { self.state.withLock { $0.statistics } }

    /// Receive slots free for frames now.
    public var freeReceiveSlots: Int { self.state.withLock { $0.receive?.available ?? 0 } }

    /// Waits until the guest gave back every receive slot lent to it, at most `timeout`.
    public func waitForSlotsReturned(timeout: Duration = .seconds(30)) async -> Bool {
        await self.changes.wait(timeout: timeout) { [self] in
            self.state.withLock { state in state.receive.map { $0.lent.allSatisfy { !$0 } } ?? true }
        }
    }

    public func opened(_ channel: Channel, info: HostChannelInfo) {
        let queue = info.subChannelIndex
        let tableTo: (Channel, Int)? = self.state.withLock { state in
            state.channels[queue] = channel
            if queue == 0 { state.primaryRelid = info.relid }
            if state.statistics[queue] == nil { state.statistics[queue] = NetworkQueueStatistics() }
            // The last granted sub-channel: the guest may spread its sends now (11 §6, v ≥ 5).
            guard queue != 0, state.grantedSubChannels > 0, state.channels.count == state.grantedSubChannels + 1,
                let version = state.version, version >= .v5, let primary = state.channels[0]
            else { return nil }
            return (primary, state.channels.count)
        }
        self.serve(channel, queue: queue)
        if queue == 0 { self.startReceiving() }
        if let (primary, channels) = tableTo {
            let table = NVSPMessage.indirectionTable((0..<NVSP.indirectionTableEntries).map { UInt32($0 % channels) })
            Task { try? await primary.send(inBand: table.encode(size: self.messageSize)[...], transactionID: 0) }
        }
    }

    public func closed(relid: UInt32) {
        self.state.withLock { state in
            state.channels = state.channels.filter { $0.value.relid != relid }
            state.contexts = state.contexts.filter { $0.value.channel.relid != relid }
            guard state.primaryRelid == relid else { return }
            // The primary takes the device's set-up with it (a re-open starts over).
            state.primaryRelid = nil
            state.version = nil
            state.setUpSeen = []
            state.receive = nil
            state.sendBuffer = nil
            state.rndisReady = false
            state.packetFilter = []
            state.receiving = false
            state.rsc = false
        }
        if self.state.withLock({ $0.primaryRelid == nil }) { self.backend.acceptOffloads([]) }
    }

    /// Tells the guest the link went up or down (an RNDIS status indication, 11 §5.5).
    public func setLink(up: Bool) async {
        let channel: Channel? = self.state.withLock { state in
            state.linkUp = up
            return state.rndisReady ? state.channels[0] : nil
        }
        guard let channel else { return }
        await self.sendControl(.indicateStatus(status: up ? .mediaConnect : .mediaDisconnect, buffer: []), on: channel)
    }

    // MARK: The control path (the data path is in NetvspDevice+Path)

    enum Outcome { case ok, fatal(String) }

    func handle(_ packet: ChannelPacket, channel: Channel, queue: UInt16) async -> Outcome {
        let parsed: VMBusPacket
        do { parsed = try packet.parse(strict: false) } catch { return .fatal("packet: \(error)") }
        switch parsed {
        case .completion(let descriptor, let payload):
            return self.completed(descriptor.transactionID, payload: payload)
        case .inBand(let descriptor, let payload):
            return await self.message(payload, ranges: [], descriptor: descriptor, channel: channel, queue: queue)
        case .gpaDirect(let direct):
            return await self.message(direct.payload, ranges: direct.ranges, descriptor: direct.descriptor, channel: channel, queue: queue)
        case .transferPages, .other:
            return .fatal("unexpected packet type \(packet.descriptor.type)")
        }
    }

    /// The guest completed a receive slot (11 §7.2: the id is the slot's index).
    func completed(_ id: UInt64, payload: ArraySlice<UInt8>) -> Outcome {
        guard case .rndisPacketComplete? = try? NVSPMessage(parsing: payload) else { return .fatal("completion is not type 108") }
        let released = self.state.withLock { state in state.receive?.release(id) ?? false }
        self.changes.wake()
        return released ? .ok : .fatal("completion for slot \(id), not lent")
    }

    func count(_ queue: UInt16, _ body: (inout NetworkQueueStatistics) -> Void) {
        self.state.withLock { state in body(&state.statistics[queue, default: NetworkQueueStatistics()]) }
    }
}
