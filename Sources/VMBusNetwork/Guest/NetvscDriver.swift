import VMBusChannel
import VMBusGuest
import VMBusMemory
import VMBusWire

/// The guest side of the synthetic NIC — what Linux's netvsc and DPDK's netvsc PMD are
/// (spec 11): probes each network device, brings it up (NVSP version, NDIS config, receive and
/// send buffers, RNDIS initialise and the OIDs Linux asks) and joins it to a backend: frames the
/// backend yields go out through send sections; frames the host lends in receive slots go to
/// the backend.
public final class NetvscDriver: GuestDriver {
    public let name = "netvsc"
    public var classes: [GUID] { [DeviceClass.network.classID] }

    /// How a device is brought up.
    public struct Configuration: Sendable {
        /// Ring pages per direction (Linux: 128; at least 2).
        public var ringPages = 64
        /// Receive buffer bytes (Linux: 16 MiB; at most one GPADL, just under 32 MiB).
        public var receiveBufferBytes = 4 << 20
        /// Send buffer bytes (Linux: 170 sections of 6144).
        public var sendBufferBytes = 170 * 6144
        /// The L3 MTU asked for (NDIS_CONFIG carries it as a frame MTU).
        public var mtu = 1500
        /// Queues wanted (sub-channels + 1) when the host offers vRSS.
        public var queues = 1
        /// Use the checksum and LSO offloads the host and the backend both have.
        public var offloads = true
        /// Ask the host to coalesce received TCP segments (RSC, NVSP 6.1) when it offers it.
        public var receiveSegmentCoalescing = true
        /// Large-send buffers (64 KiB segments in flight at once) when LSO is on.
        public var largeSendBuffers = 16
        public init() {}
    }

    public let configuration: Configuration
    /// Makes the backend of each device (given its MAC address and MTU, once known).
    let makeBackend: @Sendable (MACAddress, Int) -> any NetworkBackend
    /// NICs by primary relid, with the sub-channels offered while one was still being brought
    /// up (the offers answer the SUBCHANNEL request bring-up sends), opened once it is up.
    let devices = BoundDevices<NetvscNIC>()
    let waiters = Locked<[CheckedContinuation<NetvscNIC, Never>]>([])

    public init(configuration: Configuration = Configuration(), backend: @escaping @Sendable (MACAddress, Int) -> any NetworkBackend) {
        self.configuration = configuration
        self.makeBackend = backend
    }

    /// The NICs brought up so far, by primary relid.
    public var nics: [NetvscNIC] { self.devices.all }

    /// Waits until a NIC is up (at once if one is).
    public func firstNIC() async -> NetvscNIC {
        await withCheckedContinuation { (continuation: CheckedContinuation<NetvscNIC, Never>) in
            if let nic = self.devices.first {
                continuation.resume(returning: nic)
            } else {
                self.waiters.withLock { $0.append(continuation) }
            }
        }
    }

    public func probe(_ device: GuestDevice, bus: GuestBus) async throws {
        let nic: NetvscNIC
        do { nic = try await NetvscNIC.bringUp(device, bus: bus, configuration: self.configuration, makeBackend: self.makeBackend) } catch {
            self.devices.failed(relid: device.relid)
            throw error
        }
        for relid in self.devices.add(nic, relid: device.relid) { Task { await nic.openSubChannel(relid) } }
        self.wakeWaiters(nic)
    }

    /// A NIC brought up outside ``probe(_:bus:)`` (over uio) joins the others.
    func added(_ nic: NetvscNIC) {
        // Over uio sub-channels come another way: no offers were kept for it.
        _ = self.devices.add(nic, relid: nic.relid)
        self.wakeWaiters(nic)
    }

    func wakeWaiters(_ nic: NetvscNIC) {
        let waiting = self.waiters.withLock { waiters in
            defer { waiters = [] }
            return waiters
        }
        for waiter in waiting { waiter.resume(returning: nic) }
    }

    public func remove(_ device: GuestDevice, bus: GuestBus) async {
        await self.devices.remove(relid: device.relid)?.shutDown()
    }

    public func subChannelOffered(_ relid: UInt32, of device: GuestDevice, bus: GuestBus) {
        if let nic = self.devices.subChannelOffered(relid, of: device.relid) { Task { await nic.openSubChannel(relid) } }
    }
}

/// Why a network device could not be brought up.
public enum NetvscError: Error, Hashable, Sendable, CustomStringConvertible {
    case noCommonVersion
    case refused(String)
    case malformed(String)
    case channel(ChannelError)

    public var description: String {
        switch self {
        case .noCommonVersion: return "the host accepted no NVSP version"
        case .refused(let what): return "the host refused \(what)"
        case .malformed(let what): return "malformed answer: \(what)"
        case .channel(let error): return "channel: \(error)"
        }
    }
}

extension NetvscDriver {
    /// A driver whose NICs are each joined to an in-memory port pair, for tests, demos and
    /// benchmarks: the NIC uses one end; ``MemoryPorts`` hands out the other — the guest
    /// operating system's side, where the NIC's received frames arrive and where frames to
    /// send go in. `offloads`: what the ports take and hand over (as a TAP with a virtio-net
    /// header does).
    public static func inMemory(
        configuration: Configuration = Configuration(), capacity: Int = 4096, offloads: NetworkOffloads = []
    ) -> (NetvscDriver, MemoryPorts) {
        let ports = MemoryPorts()
        let driver = NetvscDriver(configuration: configuration) { mac, mtu in
            let (nicEnd, system) = MemoryNetworkPort.pair(macAddresses: (mac, mac), mtu: mtu, capacity: capacity, offloads: offloads)
            ports.ports.withLock { $0.append(system) }
            return nicEnd
        }
        return (driver, ports)
    }
}

/// The operating-system ends of ``NetvscDriver/inMemory(configuration:capacity:)``'s NICs, in
/// the order the NICs came up.
public final class MemoryPorts: Sendable {
    let ports = Locked<[MemoryNetworkPort]>([])
    /// The first NIC's port.
    public var first: MemoryNetworkPort? { self.ports.withLock { $0.first } }
    /// The latest NIC's port (a NIC bound again gets a new one).
    public var last: MemoryNetworkPort? { self.ports.withLock { $0.last } }
}
