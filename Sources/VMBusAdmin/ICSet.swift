import VMBusDevices
import VMBusHost
import VMBusMemory
import VMBusWire

/// The host sides of the six integration services for one guest.
public final class ICSet: Sendable {
    /// Heartbeats, and the guest's health from their answers.
    public let heartbeat = HeartbeatHost()
    /// Power off, reboot, hibernate requests.
    public let shutdown = ShutdownHost()
    /// Time SYNCs and samples.
    public let timeSync = TimeSyncHost()
    /// The guest's key-value pools.
    public let kvp = KVPHost()
    /// File copies into the guest.
    public let fileCopy: FileCopyHost
    /// The VSS backup handshake.
    public let vss = VSSHost()

    /// - Parameter fileCopyInstance: the file-copy device's instance (a uio export uses the one
    ///   Linux's daemon looks for).
    public init(fileCopyInstance: GUID = DeviceClass.fileCopy.classID) {
        self.fileCopy = FileCopyHost(instance: fileCopyInstance)
    }

    let periodic = Locked<[Task<Void, Never>]>([])

    /// Starts the periodic heartbeat and time samples; they end when the guest goes (``stop()``),
    /// even if it never opened the services.
    public func startPeriodic() {
        let tasks = [self.heartbeat.start(), self.timeSync.start()]
        self.periodic.withLock { $0 += tasks }
    }

    /// Ends the periodic work ``startPeriodic()`` began.
    public func stop() {
        for task in self.periodic.withLock({ $0 }) { task.cancel() }
    }

    /// The six devices, to offer on the guest's bus.
    public var devices: [any HostDevice] {
        [
            self.heartbeat.device, self.shutdown.device, self.timeSync.device, self.kvp.device, self.fileCopy.device,
            self.vss.device,
        ]
    }
}

/// The services of every connected guest, by its bus: the host's device factory adds a guest's
/// set, its connection-lost handler removes it, and the admin commands look it up.
public final class ICRegistry: Sendable {
    let map = Locked<[ObjectIdentifier: ICSet]>([:])

    /// An empty registry.
    public init() {}

    /// Records `set` as the services of the guest on `bus`.
    public func add(_ set: ICSet, for bus: HostBus) { self.map.withLock { $0[ObjectIdentifier(bus)] = set } }

    /// The services of the guest on `bus`, if it has any.
    public func services(for bus: HostBus) -> ICSet? { self.map.withLock { $0[ObjectIdentifier(bus)] } }

    /// Forgets the services of the guest on `bus` (it went away).
    public func remove(_ bus: HostBus) { _ = self.map.withLock { $0.removeValue(forKey: ObjectIdentifier(bus)) } }
}
