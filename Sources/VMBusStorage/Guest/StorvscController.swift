import VMBusChannel
import VMBusGuest
import VMBusMemory
import VMBusWire

/// One synthetic SCSI controller as the guest drives it — what Linux's storvsc does for a
/// device (spec 10): the channel (and sub-channels) opened, set-up negotiated, the bus scanned
/// for disks, SCSI commands sent with their data buffers in guest memory, completions matched
/// to them by transaction id.
public final class StorvscController: Sendable {
    public let relid: UInt32
    let bus: GuestBus
    let configuration: StorvscDriver.Configuration
    let slots: StorvscSlots
    /// The host's properties and the version settled on.
    public let version: StorageVersion
    public let properties: StorageChannelProperties
    /// Bytes one request moves at most: ours and the host's limit, whichever is smaller.
    public let maximumTransferBytes: Int

    struct State {
        var channels: [Channel] = []
        var disks: [UInt8: StorvscDisk] = [:]
        var closed = false
        var statistics = StorageQueueStatistics()
        var next = 0
    }
    let state: Locked<State>
    /// Woken when the disks or the queues change (``waitUntil(timeout:_:)``).
    let changes = ChangeWaiters()
    /// Called after a rescan changed the disks (the driver tells its waiters).
    let changed: @Sendable (StorvscController) -> Void

    init(
        relid: UInt32, bus: GuestBus, primary: Channel, configuration: StorvscDriver.Configuration, slots: StorvscSlots,
        version: StorageVersion, properties: StorageChannelProperties, changed: @escaping @Sendable (StorvscController) -> Void
    ) {
        self.relid = relid
        self.bus = bus
        self.configuration = configuration
        self.slots = slots
        self.version = version
        self.properties = properties
        self.maximumTransferBytes = min(configuration.maximumTransferBytes, Int(properties.maximumTransferBytes)) / 4096 * 4096
        self.state = Locked(State(channels: [primary]))
        self.changed = changed
    }

    /// The disks found, by LUN.
    public var disks: [StorvscDisk] { self.state.withLock { state in state.disks.keys.sorted().compactMap { state.disks[$0] } } }
    /// Open channels: the primary and the sub-channels.
    public var queueCount: Int { self.state.withLock { $0.channels.count } }
    /// Counters over every queue (guest view: latency from send to completion).
    public var statistics: StorageQueueStatistics { self.state.withLock { $0.statistics } }

    // MARK: Bring-up (10 §3)

    static func bringUp(
        _ device: GuestDevice, bus: GuestBus, configuration: StorvscDriver.Configuration,
        changed: @escaping @Sendable (StorvscController) -> Void
    ) async throws -> StorvscController {
        let channel = try await bus.open(device.relid, pages: RingPages(each: max(2, configuration.ringPages)))
        let runner = SerialRunner()
        let holder = Locked<StorvscController?>(nil)
        channel.onInterrupt { runner.kick { Self.drain(channel, controller: holder.load()) } }
        do {
            let (version, properties) = try await Self.negotiate(channel, versions: configuration.versions)
            let slots = try StorvscSlots(
                memory: bus.memory, count: max(1, configuration.queueDepth),
                slotBytes: min(configuration.maximumTransferBytes, Int(max(4096, properties.maximumTransferBytes))))
            let controller = StorvscController(
                relid: device.relid, bus: bus, primary: channel, configuration: configuration, slots: slots, version: version,
                properties: properties, changed: changed)
            holder.store(controller)
            let wanted = min(configuration.subChannels, Int(properties.maximumSubChannelCount))
            if wanted > 0, properties.flags.contains(.supportsMultiChannel) {
                _ = try await Self.setUp(channel, .request(.createSubChannels, body: .subChannelCount(UInt16(wanted))))
            }
            try await controller.scan()
            return controller
        } catch {
            channel.onInterrupt(nil)
            await bus.close(device.relid)
            throw error
        }
    }

    /// BEGIN_INITIALIZATION, the versions in order until one is taken, QUERY_PROPERTIES,
    /// END_INITIALIZATION (10 §3).
    static func negotiate(_ channel: Channel, versions: [StorageVersion]) async throws(StorvscError) -> (StorageVersion, StorageChannelProperties) {
        _ = try await Self.setUp(channel, .request(.beginInitialization))
        var chosen: StorageVersion?
        for version in versions {
            let reply = try await Self.setUp(channel, .request(.queryProtocolVersion, body: .version(version, revision: 0)), mayFail: true)
            if reply.status == .success {
                chosen = version
                break
            }
        }
        guard let version = chosen else { throw StorvscError.noCommonVersion }
        let reply = try await Self.setUp(channel, .request(.queryProperties))
        guard case .properties(let properties) = reply.body else { throw StorvscError.malformed("QUERY_PROPERTIES answer without properties") }
        _ = try await Self.setUp(channel, .request(.endInitialization))
        return (version, properties)
    }

    /// One set-up request and its completion: COMPLETE_IO, 64 bytes (Linux ≥ 5.19 drops
    /// shorter), status 0 unless `mayFail`.
    static func setUp(_ channel: Channel, _ packet: StoragePacket, mayFail: Bool = false) async throws(StorvscError) -> StoragePacket {
        let answer: [UInt8]
        do { answer = try await channel.request(packet.encode()[...]) } catch { throw StorvscError.channel(error) }
        guard answer.count >= StorageProtocol.packetSize else { throw StorvscError.malformed("a \(answer.count)-byte completion") }
        let reply: StoragePacket
        do { reply = try StoragePacket(parsing: answer[...], completing: packet.operation) } catch {
            throw StorvscError.malformed("completion: \(error)")
        }
        guard reply.operation == .completeIO else { throw StorvscError.malformed("operation \(reply.operation.rawValue) in a completion") }
        guard mayFail || reply.status == .success else {
            throw StorvscError.refused("operation \(packet.operation.rawValue): status 0x\(String(reply.status.rawValue, radix: 16))")
        }
        return reply
    }

    /// The channel's interrupt handler: completions go to their requests (the drain routes
    /// them); the host's own packets are ENUMERATE_BUS / REMOVE_DEVICE, which rescan.
    static func drain(_ channel: Channel, controller: StorvscController?) {
        var rescan = false
        _ = try? channel.drain { descriptor, payload in
            guard descriptor.type == .dataInBand, payload.count >= 4 else { return }
            let operation = StorageOperation(
                rawValue: UInt32(payload[0]) | UInt32(payload[1]) << 8 | UInt32(payload[2]) << 16 | UInt32(payload[3]) << 24)
            if operation == .enumerateBus || operation == .removeDevice { rescan = true }
        }
        if rescan, let controller { Task { try? await controller.scan() } }
    }

    /// Waits until `condition` holds of this controller — checked now, then after each change
    /// of its disks (a rescan) or queues (a sub-channel opened) — or it shut down, at most
    /// `timeout`. - Returns: whether the condition holds (or the controller shut down).
    public func waitUntil(timeout: Duration, _ condition: @escaping @Sendable (StorvscController) -> Bool) async -> Bool {
        await self.changes.wait(timeout: timeout) { [self] in condition(self) || self.state.withLock { $0.closed } }
    }

    /// Opens a sub-channel the host offered and adds it to the queues.
    func openSubChannel(_ relid: UInt32) async {
        guard let channel = try? await self.bus.open(relid, pages: RingPages(each: max(2, self.configuration.ringPages))) else { return }
        let runner = SerialRunner()
        channel.onInterrupt { [weak self] in runner.kick { Self.drain(channel, controller: self) } }
        let keep = self.state.withLock { state in
            guard !state.closed else { return false }
            state.channels.append(channel)
            return true
        }
        if !keep { await self.bus.close(relid) }
        self.changes.wake()
    }

    /// The next queue, round robin.
    func nextChannel() -> Channel? {
        self.state.withLock { state in
            guard !state.closed, !state.channels.isEmpty else { return nil }
            state.next = (state.next + 1) % state.channels.count
            return state.channels[state.next]
        }
    }

    /// Closes every channel (sub-channels first) and fails what waits.
    func shutDown() async {
        let channels = self.state.withLock { state in
            state.closed = true
            return state.channels
        }
        self.slots.close()
        for channel in channels.reversed() {
            channel.onInterrupt(nil)
            await self.bus.close(channel.relid)
        }
        for disk in self.disks { disk.markGone("the controller went away") }
        self.changes.wake()
    }
}

/// Why a storage controller could not be brought up or a command failed at the protocol level.
public enum StorvscError: Error, Hashable, Sendable, CustomStringConvertible {
    case noCommonVersion
    case refused(String)
    case malformed(String)
    case channel(ChannelError)
    case memory(String)

    public var description: String {
        switch self {
        case .noCommonVersion: return "the host accepted no storage protocol version (Obsolete Hyper-V version)"
        case .refused(let what): return "the host refused \(what)"
        case .malformed(let what): return "malformed answer: \(what)"
        case .channel(let error): return "channel: \(error)"
        case .memory(let what): return "guest memory: \(what)"
        }
    }
}
