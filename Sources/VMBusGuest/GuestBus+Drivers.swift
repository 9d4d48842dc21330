import VMBusChannel
import VMBusWire

extension GuestBus {
    // MARK: Drivers

    /// Registers a driver; unbound devices it matches are probed now.
    public func register(_ driver: any GuestDriver) {
        let unbound: [GuestDevice] = self.state.withLock { state in
            state.drivers.append(driver)
            return state.devices.values.filter { state.bound[$0.relid] == nil }.sorted { $0.relid < $1.relid }
        }
        for device in unbound { self.spawn { await self.bind(device) } }
    }

    /// Forces a device (by instance GUID) onto the driver with this name, or back to class
    /// matching with `nil` (Linux's `driver_override`). Takes effect at the next bind.
    public func setDriverOverride(instance: GUID, driver name: String?) {
        self.state.withLock { $0.overrides[instance] = name }
    }

    /// The driver that should drive a device (05 §2.1): the override's driver if one is set,
    /// else the first registered driver listing the class; hvsock channels match hvsock
    /// drivers only.
    static func match(_ device: GuestDevice, drivers: [any GuestDriver], override: String?) -> (any GuestDriver)? {
        if let override { return drivers.first { $0.name == override } }
        // hvsock channels carry the service id as their class: any hvsock driver takes them.
        if device.isHvSock { return drivers.first { $0.isHvSockDriver } }
        return drivers.first { !$0.isHvSockDriver && $0.classes.contains(device.classID) }
    }

    /// Probes the matching driver for a device, if it is unbound and still offered.
    public func bind(_ device: GuestDevice) async {
        let driver: (any GuestDriver)? = self.state.withLock { state in
            guard state.bound[device.relid] == nil, state.devices[device.relid] != nil,
                !state.machine.isRescinded(device.relid),
                let driver = Self.match(device, drivers: state.drivers, override: state.overrides[device.instanceID])
            else { return nil }
            state.bound[device.relid] = driver
            return driver
        }
        guard let driver else { return }
        do {
            try await driver.probe(device, bus: self)
        } catch {
            // A failed probe leaves the device unbound, with whatever it opened closed.
            _ = self.state.withLock { $0.bound.removeValue(forKey: device.relid) }
            await self.close(device.relid)
        }
    }

    /// Unbinds a device's driver (its `remove` runs, then anything left open is closed).
    public func unbind(_ relid: UInt32) async {
        let found: (any GuestDriver, GuestDevice)? = self.state.withLock { state in
            guard let driver = state.bound.removeValue(forKey: relid), let device = state.devices[relid] else { return nil }
            return (driver, device)
        }
        guard let (driver, device) = found else { return }
        await driver.remove(device, bus: self)
        await self.close(relid)
    }

    /// The host rescinded a channel (05 §7.1): unbind a primary's driver, close what is open,
    /// then release the relid so the host may reuse it.
    func handleRescind(_ relid: UInt32) async {
        // Users of the channel learn why it stops before any driver work runs; what the host
        // sent before rescinding is still delivered.
        self.channel(relid)?.finish(.rescinded)
        let isPrimary = self.state.withLock { $0.devices[relid] != nil }
        if isPrimary { await self.unbind(relid) }
        let (channel, ring): (Channel?, OpenRing?) = self.state.withLock { state in
            (state.channels.removeValue(forKey: relid), state.rings.removeValue(forKey: relid))
        }
        channel?.finish(.rescinded)
        self.transport.channelClosed(relid: relid)
        self.run { state in
            state.devices[relid] = nil
            return ((), state.machine.release(channel: relid))
        }
        // The host dropped the ring GPADL with the relid: the pages are ours again once the
        // reader is done with them.
        if let ring { self.release(ring, once: channel) }
    }
}
