import VMBusChannel
import VMBusHost
import VMBusMemory
import VMBusWire

/// The host side of the synthetic SCSI controller — what Hyper-V's storage VSP and OpenVMM's
/// storvsp are (spec 10): set-up on the primary channel (version, properties, sub-channels),
/// then EXECUTE_SRB on every channel, each command answered by the ``SCSIDisk`` at its LUN with
/// the guest's data moved in place between its pages and the ``DiskBackend``.
///
/// Disks sit at path 0, target 0, LUN 0–255. Adding or removing one while the guest runs sends
/// ENUMERATE_BUS (10 §5); the guest rescans.
///
/// Everything the guest writes is checked (10 §8): a failing command is completed with the
/// right SCSI answer; a packet that breaks the protocol (a completion from the guest, no
/// completion flag, a bad data range) stops that channel until the guest opens it again.
public final class StorvspDevice: HostDevice {
    public struct Configuration: Sendable {
        /// Sub-channels offered at most (one queue each besides the primary).
        public var maximumSubChannels: UInt16 = 0
        /// Protocol versions accepted.
        public var acceptedVersions = StorageVersion.openVMMAccepted
        /// QUERY_PROPERTIES' max_transfer_bytes.
        public var maximumTransferBytes = StorageProtocol.openVMMMaximumTransferBytes
        /// Commands in flight per channel at most: beyond it the ring is left unread until
        /// some complete (OpenVMM's io_queue_depth).
        public var queueDepth = 256
        /// Advertise UNMAP on writable disks.
        public var unmap = true
        public init() {}
    }

    public let offer: HostOffer
    public let configuration: Configuration

    struct State: ~Copyable {
        var bus: (any DeviceBus)?
        var negotiation: StorvspNegotiation
        var queues: [UInt16: StorvspQueue] = [:]
        var primaryRelid: UInt32?
        var disks: [UInt8: SCSIDisk] = [:]
        var statistics: [UInt16: StorageQueueStatistics] = [:]
    }

    let state: Locked<State>
    /// Runs file I/O off the interrupt handlers (memory disks complete inline).
    let workers: DiskWorkers

    /// - Parameters:
    ///   - instance: the controller's instance GUID.
    ///   - disks: the disks by LUN.
    public init(instance: GUID, disks: [UInt8: any DiskBackend] = [:], configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.offer = HostOffer(
            interfaceType: DeviceClass.scsi.classID, interfaceInstance: instance, maximumSubChannels: configuration.maximumSubChannels)
        var state = State(
            negotiation: StorvspNegotiation(
                acceptedVersions: configuration.acceptedVersions, maximumSubChannels: configuration.maximumSubChannels,
                maximumTransferBytes: configuration.maximumTransferBytes))
        for (lun, backend) in disks { state.disks[lun] = Self.disk(backend, instance: instance, lun: lun, configuration) }
        self.state = Locked(state)
        self.workers = DiskWorkers()
    }

    static func disk(_ backend: any DiskBackend, instance: GUID, lun: UInt8, _ configuration: Configuration) -> SCSIDisk {
        SCSIDisk(
            backend: backend, identity: SCSIDiskIdentity(instance: instance, lun: lun), unmapSupported: configuration.unmap,
            maximumTransferBytes: Int(configuration.maximumTransferBytes))
    }

    /// The bus the device is registered on: guest memory for the data, sub-channels.
    public func attach(to bus: any DeviceBus) { self.state.withLock { $0.bus = bus } }

    /// The negotiated protocol version, once the guest chose one.
    public var version: StorageVersion? { self.state.withLock { $0.negotiation.version } }
    /// Whether set-up finished (END_INITIALIZATION) and I/O is served.
    public var isReady: Bool { self.state.withLock { $0.negotiation.isReady } }
    /// The LUNs with a disk.
    public var luns: [UInt8] { self.state.withLock { $0.disks.keys.sorted() } }
    /// The disk at `lun`.
    public func disk(at lun: UInt8) -> (any DiskBackend)? { self.state.withLock { $0.disks[lun]?.backend } }
    /// Per-queue counters, by sub-channel index (0: the primary).
    public var statistics: [UInt16: StorageQueueStatistics] { self.state.withLock { $0.statistics } }

    /// Adds a disk at `lun` (replacing any there) and tells a ready guest to rescan.
    public func addDisk(_ backend: any DiskBackend, lun: UInt8) {
        self.state.withLock { $0.disks[lun] = Self.disk(backend, instance: self.offer.interfaceInstance, lun: lun, self.configuration) }
        self.announceChange()
    }

    /// Removes the disk at `lun` and tells a ready guest to rescan: its next command there
    /// answers INVALID_LUN and the guest forgets it. Commands already running finish.
    @discardableResult
    public func removeDisk(lun: UInt8) -> (any DiskBackend)? {
        let removed = self.state.withLock { $0.disks.removeValue(forKey: lun) }
        if removed != nil { self.announceChange() }
        return removed?.backend
    }

    /// ENUMERATE_BUS (10 §5): unsolicited, id 0, sized for the version (OpenVMM: ≥ 4.2 only).
    func announceChange() {
        let target: (Channel, StorageVersion)? = self.state.withLock { state in
            guard state.negotiation.isReady, let version = state.negotiation.version, version >= .win7,
                let primary = state.queues[0]
            else { return nil }
            return (primary.channel, version)
        }
        guard let (channel, version) = target else { return }
        let packet = StoragePacket(operation: .enumerateBus).encode(size: StorageProtocol.packetSize(for: version))
        Task { try? await channel.send(inBand: packet[...]) }
    }

    public func opened(_ channel: Channel, info: HostChannelInfo) {
        let queue = StorvspQueue(channel: channel, index: info.subChannelIndex, depth: self.configuration.queueDepth)
        self.state.withLock { state in
            state.queues[info.subChannelIndex] = queue
            if info.subChannelIndex == 0 { state.primaryRelid = info.relid }
            if state.statistics[info.subChannelIndex] == nil { state.statistics[info.subChannelIndex] = StorageQueueStatistics() }
        }
        channel.onInterrupt { [self] in queue.runner.kick { self.run(queue) } }
        Task {
            _ = await channel.ended()
            channel.onInterrupt(nil)
        }
        // Packets may have arrived before the handler was set.
        queue.runner.kick { self.run(queue) }
    }

    public func closed(relid: UInt32) {
        self.state.withLock { state in
            state.queues = state.queues.filter { $0.value.channel.relid != relid }
            guard state.primaryRelid == relid else { return }
            // Closing the primary starts negotiation over (OpenVMM).
            state.primaryRelid = nil
            state.negotiation = StorvspNegotiation(
                acceptedVersions: self.configuration.acceptedVersions, maximumSubChannels: self.configuration.maximumSubChannels,
                maximumTransferBytes: self.configuration.maximumTransferBytes)
        }
    }

    func count(_ queue: UInt16, _ body: (inout StorageQueueStatistics) -> Void) {
        self.state.withLock { state in body(&state.statistics[queue, default: StorageQueueStatistics()]) }
    }
}
