import VMBusWire

/// What a guest keeps across hibernation (docs/SAVED-STATE.md §7): the version it negotiated
/// and which driver drove which device. Channels are not kept — Linux closes every one before
/// it hibernates and opens them again on resume, on new rings — so a device is named by its
/// class and instance GUIDs, never by its relid, which the host may change.
public struct GuestHibernation: Hashable, Sendable {
    /// A device that was bound when the guest hibernated.
    public struct BoundDevice: Hashable, Sendable {
        /// The device's class (the offer's `if_type`).
        public var classID: GUID
        /// The device's instance (the offer's `if_instance`): with the class, what finds it again.
        public var instanceID: GUID
        /// The driver's ``GuestDriver/name``.
        public var driver: String
        /// Its relid then (for reports only).
        public var relid: UInt32

        /// A device as it was bound: see the properties.
        public init(classID: GUID, instanceID: GUID, driver: String, relid: UInt32) {
            self.classID = classID
            self.instanceID = instanceID
            self.driver = driver
            self.relid = relid
        }
    }

    /// The version negotiated before hibernation (a record: resume negotiates afresh).
    public var version: VMBusVersion
    /// The devices that were bound, each to be bound to the same driver on resume.
    public var devices: [BoundDevice]

    /// A saved bus: see the properties.
    public init(version: VMBusVersion, devices: [BoundDevice]) {
        self.version = version
        self.devices = devices
    }

    enum Tag {
        static let version: UInt16 = 1
        static let device: UInt16 = 2
    }

    enum DeviceTag {
        static let classID: UInt16 = 1
        static let instanceID: UInt16 = 2
        static let driver: UInt16 = 3
        static let relid: UInt16 = 4
    }

    /// Writes this state as saved-state records (docs/SAVED-STATE.md §7).
    public func save(into w: inout StateWriter) {
        w.write(Tag.version, self.version.rawValue)
        for device in self.devices {
            w.nested(Tag.device) { d in
                d.write(DeviceTag.classID, device.classID)
                d.write(DeviceTag.instanceID, device.instanceID)
                d.write(DeviceTag.driver, text: device.driver)
                d.write(DeviceTag.relid, device.relid)
            }
        }
    }

    /// Reads what ``save(into:)`` wrote.
    /// - Throws: `SavedStateError` for a missing or malformed record, or a version this build
    ///   does not know.
    public init(restoring r: StateReader) throws(SavedStateError) {
        self.version = VMBusVersion(rawValue: try r.uint32(Tag.version))
        guard self.version.isKnown else { throw SavedStateError("unknown VMBus version \(self.version.rawValue)") }
        var devices: [BoundDevice] = []
        for d in try r.all(Tag.device) {
            devices.append(BoundDevice(
                classID: try d.guid(DeviceTag.classID), instanceID: try d.guid(DeviceTag.instanceID), driver: try d.text(DeviceTag.driver),
                relid: try d.uint32(DeviceTag.relid)))
        }
        self.devices = devices
    }
}

extension GuestBus {
    /// Linux's hibernation sequence: every driver is removed — its channels close, sub-channels
    /// before their primary — then the bus unloads (Unload, UnloadResponse) and gives back its
    /// monitor pages. The bus is done afterwards; a new one resumes with ``resume(_:)``.
    /// - Returns: what to resume with.
    /// - Throws: ``BusError/notConnected`` if it never connected; a failed unload.
    public func hibernate() async throws(BusError) -> GuestHibernation {
        guard let version = self.version else { throw BusError.notConnected }
        let bound: [GuestHibernation.BoundDevice] = self.state.withLock { state in
            state.bound.keys.sorted().compactMap { relid in
                // hvsock connections end with the hibernation, as on Linux; listeners are the
                // driver's own state.
                guard let driver = state.bound[relid], let device = state.devices[relid], !device.isHvSock else { return nil }
                return GuestHibernation.BoundDevice(classID: device.classID, instanceID: device.instanceID, driver: driver.name, relid: relid)
            }
        }
        try await self.unload()
        let pages = self.state.withLock { state in
            defer { state.monitorPages = nil }
            return state.monitorPages
        }
        if let pages { self.memory.release(pages) }
        return GuestHibernation(version: version, devices: bound)
    }

    /// Resumes after ``hibernate()``: connects, and each device the guest had bound goes back
    /// to the same driver, matched by class and instance GUID among the new offers; drivers
    /// probe it as on any bind (they open new channels).
    /// - Returns: the devices bound again, and the ones the host no longer offers (or whose
    ///   driver is not registered).
    public func resume(_ saved: GuestHibernation) async throws(BusError) -> (resumed: [GuestHibernation.BoundDevice], missing: [GuestHibernation.BoundDevice]) {
        for device in saved.devices { self.setDriverOverride(instance: device.instanceID, driver: device.driver) }
        _ = try await self.connect()
        await self.settle()
        var resumed: [GuestHibernation.BoundDevice] = []
        var missing: [GuestHibernation.BoundDevice] = []
        for device in saved.devices {
            let now = self.devices.first { $0.classID == device.classID && $0.instanceID == device.instanceID }
            if let now, self.boundDriver(now.relid) == device.driver {
                var found = device
                found.relid = now.relid
                resumed.append(found)
            } else {
                missing.append(device)
            }
        }
        return (resumed, missing)
    }
}
