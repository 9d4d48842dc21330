import VMBusChannel
import VMBusMemory
import VMBusWire

/// Saving a bus for a takeover and restoring it in the new process (docs/SERVICING.md,
/// docs/SAVED-STATE.md §4). The substrate first stops handing the bus guest messages and
/// doorbells; then ``hold(timeout:)`` stops every channel at a packet boundary and quiesces the
/// devices; ``save(into:)`` writes the machine, each open channel's attachment and each
/// device's state. The new process builds the bus with ``init(restoring:configuration:transport:channelOptions:)``,
/// lets its devices be made for it, and hands them over with ``restoreDevices(_:)``.
extension HostBus {
    enum Tag {
        static let machine: UInt16 = 1
        static let open: UInt16 = 2
        static let device: UInt16 = 3
    }

    enum OpenTag {
        static let relid: UInt16 = 1
        static let openID: UInt16 = 2
        static let ringGpadl: UInt16 = 3
        static let downstreamPageOffset: UInt16 = 4
        static let targetVP: UInt16 = 5
        static let userData: UInt16 = 6
    }

    enum DeviceTag {
        static let relid: UInt16 = 1
        static let state: UInt16 = 2
    }

    /// The open channels whose devices cannot be saved, as "relid (class GUID)" — a takeover is
    /// refused while any exists.
    public var unserviceableChannels: [String] {
        self.state.withLock { state in
            state.channels.keys.sorted().compactMap { relid in
                guard let device = state.devices[relid], !(device is any ServiceableDevice) else { return nil }
                return "channel \(relid) (\(device.offer.interfaceType))"
            }
        }
    }

    /// Lets work that needs the channels running end (a file copy's remaining fragments),
    /// and keeps more from starting: the first step of a takeover, while the guest and the
    /// bus still run normally — its doorbells and messages must still be delivered. Undone by
    /// ``release()``.
    /// - Throws: `SavedStateError` naming a device still busy at `timeout`; everything is
    ///   released again first.
    public func settle(timeout: Duration) async throws(SavedStateError) {
        for device in self.openDevices() {
            guard await device.settle(timeout: timeout) else {
                self.release()
                throw SavedStateError("device \(device.offer.interfaceType) was still busy after \(timeout) (a file copy in progress?)")
            }
            self.settled.withLock { $0.append(device) }
        }
    }

    /// Holds every open channel at a packet boundary, waits for closed channels' teardowns to
    /// be answered, then quiesces every device with an open channel.
    /// - Throws: `SavedStateError` naming what could not be held in time; everything is
    ///   released again first.
    public func hold(timeout: Duration) async throws(SavedStateError) {
        let unserviceable = self.unserviceableChannels
        guard unserviceable.isEmpty else {
            throw SavedStateError("devices that cannot be saved have open channels: \(unserviceable.joined(separator: ", "))")
        }
        let channels = self.state.withLock { Array($0.channels.values) }
        // All at once: each waits for its own reader, so the pause is the slowest channel's,
        // not the sum.
        let stuck: [UInt32] = await withTaskGroup(of: UInt32?.self) { group in
            for channel in channels { group.addTask { await channel.hold(timeout: timeout) ? nil : channel.relid } }
            var stuck: [UInt32] = []
            for await relid in group { if let relid { stuck.append(relid) } }
            return stuck.sorted()
        }
        guard stuck.isEmpty else {
            self.release()
            throw SavedStateError("channels \(stuck) were still handling a packet after \(timeout)")
        }
        // A closed channel's teardown is answered within a second (``answerTeardown``).
        guard await pollUntil(timeout: timeout, every: .milliseconds(5), { self.state.withLock { $0.draining.isEmpty } }) else {
            self.release()
            throw SavedStateError("a closed channel's ring was still being read after \(timeout)")
        }
        let devices = self.openDevices()
        // Only a device that did quiesce is resumed by ``release()``: resuming one that did not
        // (an integration service passing a turn it never took) would corrupt its state.
        for device in devices {
            guard await device.quiesce(timeout: timeout) else {
                self.release()
                throw SavedStateError("device \(device.offer.interfaceType) could not be quiesced in \(timeout)")
            }
            self.quiesced.withLock { $0.append(device) }
        }
    }

    /// Undoes ``hold(timeout:)``: the takeover failed and this process carries on.
    public func release() {
        let channels = self.state.withLock { Array($0.channels.values) }
        for channel in channels { channel.release() }
        let quiesced = self.quiesced.withLock { list in
            defer { list = [] }
            return list
        }
        for device in quiesced { device.resumeAfterQuiesce() }
        let settled = self.settled.withLock { list in
            defer { list = [] }
            return list
        }
        for device in settled { device.resumeAfterSettle() }
    }

    /// Each serviceable device with an open channel, once, in relid order.
    func openDevices() -> [any ServiceableDevice] {
        self.state.withLock { state in
            var seen = Set<ObjectIdentifier>()
            return state.channels.keys.sorted().compactMap { relid in
                guard let device = state.devices[relid] as? any ServiceableDevice, seen.insert(ObjectIdentifier(device)).inserted
                else { return nil }
                return device
            }
        }
    }

    /// Writes the bus: the machine, every open channel's attachment, every device's state.
    /// Call it between ``hold(timeout:)`` and the hand-over.
    public func save(into w: inout StateWriter) throws(SavedStateError) {
        let (machine, opens, devices) = self.state.withLock { state in (state.machine, state.opens, state.devices) }
        var failure: SavedStateError?
        w.nested(Tag.machine) { m in
            do throws(SavedStateError) { try machine.save(into: &m) } catch { failure = error }
        }
        if let failure { throw failure }
        for relid in opens.keys.sorted() {
            guard let open = opens[relid] else { continue }
            w.nested(Tag.open) { o in
                o.write(OpenTag.relid, relid)
                o.write(OpenTag.openID, open.openID)
                o.write(OpenTag.ringGpadl, open.ringBufferGpadl)
                o.write(OpenTag.downstreamPageOffset, open.downstreamRingBufferPageOffset)
                o.write(OpenTag.targetVP, open.targetVP)
                o.write(OpenTag.userData, bytes: open.userData.bytes)
            }
            guard let device = devices[relid] as? any ServiceableDevice else {
                throw SavedStateError("channel \(relid)'s device cannot be saved")
            }
            let saved = try device.saveState(relid: relid)
            w.nested(Tag.device) { d in
                d.write(DeviceTag.relid, relid)
                d.write(DeviceTag.state, bytes: saved)
            }
        }
    }

    /// A bus restored from ``save(into:)``: the machine as it was, every ready GPADL mapped
    /// again (each page checked against guest memory by the transport), every open channel
    /// attached to its rings. No message is sent: the guest saw nothing happen. Devices come
    /// next, with ``restoreDevices(_:)``.
    public convenience init(
        restoring r: StateReader, configuration: HostConfiguration, transport: any HostTransport, channelOptions: ChannelOptions? = nil,
        capture: CaptureTap? = nil
    ) throws(SavedStateError) {
        let machine = try HostConnection(restoring: try r.nested(Tag.machine), configuration: configuration)
        self.init(configuration: configuration, transport: transport, channelOptions: channelOptions, capture: capture)
        var gpadls: [UInt32: MappedMemory] = [:]
        for (handle, ranges) in machine.readyGpadls {
            do {
                gpadls[handle] = try transport.mapGpadl(ranges)
            } catch {
                throw SavedStateError("GPADL \(handle) cannot be mapped again: \(error)")
            }
        }
        var opens: [UInt32: OpenChannel] = [:]
        for o in try r.all(Tag.open) {
            let relid = try o.uint32(OpenTag.relid)
            let gpadl = try o.uint32(OpenTag.ringGpadl)
            guard machine.openGpadl(relid) == gpadl, opens[relid] == nil else {
                throw SavedStateError("open channel \(relid) on GPADL \(gpadl) does not match the machine")
            }
            let userData: UserDefinedBytes
            do { userData = try UserDefinedBytes(try o.bytes(OpenTag.userData)) } catch {
                throw SavedStateError("open channel \(relid): bad user data")
            }
            opens[relid] = OpenChannel(
                childRelID: relid, openID: try o.uint32(OpenTag.openID), ringBufferGpadl: gpadl, targetVP: try o.uint32(OpenTag.targetVP),
                downstreamRingBufferPageOffset: try o.uint32(OpenTag.downstreamPageOffset), userData: userData)
        }
        let openInMachine = machine.relids.filter { machine.isOpen($0) }
        guard Set(openInMachine) == Set(opens.keys) else {
            throw SavedStateError("the machine's open channels \(openInMachine) and the saved attachments \(opens.keys.sorted()) differ")
        }
        var deviceStates: [UInt32: [UInt8]] = [:]
        for d in try r.all(Tag.device) {
            let relid = try d.uint32(DeviceTag.relid)
            guard opens[relid] != nil, deviceStates[relid] == nil else { throw SavedStateError("device state for channel \(relid), which is not open") }
            deviceStates[relid] = Array(try d.bytes(DeviceTag.state))
        }
        self.state.withLock { state in
            state.machine = machine
            state.gpadls = gpadls
            state.opens = opens
        }
        self.restoredDeviceStates.withLock { $0 = deviceStates }
    }

    /// Matches the new process's devices to the saved channels — by class and instance GUID
    /// of the primary; sub-channels follow their primary — and attaches every open channel to
    /// its rings. Nothing is read or sent yet: ``startRestored()`` does that. A device the
    /// saved state does not know is offered then, as a new one (hot add).
    /// - Throws: `SavedStateError` for a saved channel no device claims, or a device that
    ///   refused its state.
    public func restoreDevices(_ devices: [any HostDevice]) throws(SavedStateError) {
        let machine = self.state.withLock { $0.machine }
        var byRelid: [UInt32: any HostDevice] = [:]
        var fresh: [any HostDevice] = []
        for device in devices {
            let primary = machine.relids.first { relid in
                machine.primary(of: relid) == nil && machine.offer(relid).map {
                    $0.interfaceType == device.offer.interfaceType && $0.interfaceInstance == device.offer.interfaceInstance
                } == true
            }
            guard let primary else {
                fresh.append(device)
                continue
            }
            byRelid[primary] = device
            for sub in machine.subChannels(of: primary) { byRelid[sub] = device }
        }
        let claimers = self.restoreClaimers.withLock { $0 }
        for relid in machine.relids where byRelid[relid] == nil && machine.primary(of: relid) == nil && !machine.isRevoked(relid) {
            guard let offer = machine.offer(relid), let device = claimers.lazy.compactMap({ $0(relid, offer, machine.isOpen(relid)) }).first
            else { continue }
            byRelid[relid] = device
            for sub in machine.subChannels(of: relid) { byRelid[sub] = device }
        }
        let unclaimed = machine.relids.filter { byRelid[$0] == nil && machine.offer($0) != nil && !machine.isRevoked($0) }
        guard unclaimed.isEmpty else { throw SavedStateError("no device in this host for saved channels \(unclaimed)") }
        let states = self.restoredDeviceStates.withLock { saved in
            defer { saved = [:] }
            return saved
        }
        var started: [RestoredChannel] = []
        try self.state.withLock { (state: inout State) throws(SavedStateError) in
            state.devices = byRelid
            for (relid, open) in state.opens.sorted(by: { $0.key < $1.key }) {
                guard let device = byRelid[relid] as? any ServiceableDevice, let memory = state.gpadls[open.ringBufferGpadl] else {
                    throw SavedStateError("open channel \(relid) has no serviceable device or no ring")
                }
                do {
                    let (channel, info) = try self.attach(open, memory: memory, device: device, subChannelIndex: state.machine.offerIndex(relid))
                    state.channels[relid] = channel
                    started.append(RestoredChannel(device: device, channel: channel, info: info, state: states[relid] ?? []))
                } catch {
                    throw SavedStateError("channel \(relid) cannot be attached again: \(error)")
                }
            }
        }
        self.restoredChannels.withLock { $0 = started }
        self.restoredFresh.withLock { $0 = fresh }
    }

    /// Makes devices for saved channels that are not a fixed device's: channels a device
    /// registers as it runs (an hvsock connection is a channel of its own). Called by
    /// ``restoreDevices(_:)`` with the relid, offer and open state of each saved primary
    /// channel no device it was given claims; the first claimer that returns a device gets the
    /// channel (and its sub-channels). Register claimers before ``restoreDevices(_:)`` — from
    /// the function that makes the new process's devices.
    public func claimRestoredChannels(
        _ claimer: @escaping @Sendable (_ relid: UInt32, _ offer: HostOffer, _ isOpen: Bool) -> (any ServiceableDevice)?
    ) {
        self.restoreClaimers.withLock { $0.append(claimer) }
    }

    /// Starts what ``restoreDevices(_:)`` attached: each device gets its channels
    /// (``ServiceableDevice/restored(_:info:state:)``) and each ring is looked at once. Call it
    /// only once the old process has let go — until then it may still resume, and nothing here
    /// may take a packet from the guest.
    /// - Returns: the channels whose device refused its saved state; they are rescinded (the
    ///   guest sees that device's channel go, nothing else).
    @discardableResult
    public func startRestored() -> [UInt32] {
        let channels = self.restoredChannels.withLock { list in
            defer { list = [] }
            return list
        }
        var refused: [UInt32] = []
        for restored in channels {
            do {
                try restored.device.restored(restored.channel, info: restored.info, state: restored.state)
            } catch {
                refused.append(restored.info.relid)
                self.run { state in
                    state.record(ProtocolViolation(.channel(restored.info.relid), "restored state refused: \(error)", kind: .restoreRefused))
                    return ((), state.machine.rescind(restored.info.relid))
                }
                continue
            }
            // Whatever the guest wrote while the channel was held, and any signal the old
            // process took but never acted on: look once.
            restored.channel.interrupt()
        }
        let fresh = self.restoredFresh.withLock { list in
            defer { list = [] }
            return list
        }
        for device in fresh { self.register(device) }
        return refused
    }
}

/// A channel attached by ``HostBus/restoreDevices(_:)``, waiting for ``HostBus/startRestored()``.
struct RestoredChannel: Sendable {
    var device: any ServiceableDevice
    var channel: Channel
    var info: HostChannelInfo
    var state: [UInt8]
}

extension HostConnection {
    /// Handles and ranges of every GPADL ready for use (the ones a restored bus maps again).
    var readyGpadls: [(UInt32, [GpaRange])] {
        self.gpadls.keys.sorted().compactMap { handle in
            guard case .ready(let ranges)? = self.gpadls[handle]?.state else { return nil }
            return (handle, ranges)
        }
    }

    /// The ring GPADL of an open channel.
    func openGpadl(_ relid: UInt32) -> UInt32? {
        guard case .open(_, let gpadl)? = self.channels[relid]?.state else { return nil }
        return gpadl
    }

    /// The offer of a channel.
    func offer(_ relid: UInt32) -> HostOffer? { self.channels[relid]?.offer }

    func isRevoked(_ relid: UInt32) -> Bool { self.channels[relid]?.state == .revoked }
}
