import Foundation
import VMBusChannel
import VMBusHost
import VMBusMemory
import VMBusRing
import VMBusWire

/// A stand-in for a guest kernel with `uio_hv_generic`, served by a user-space host, so uio
/// programs run without Hyper-V (the layout is in `docs/UIO-EXPORT.md`):
///
/// - `DIR/sys/bus/vmbus/devices/<instance>/` — the sysfs attributes of 05 §9 (`class_id`,
///   `device_id`, `id`, `driver` → `uio_hv_generic`, `uio/uioN/maps/map0/size`, and
///   `channels/<relid>/` with the `ring` file and counters refreshed twice a second);
/// - `channels/<relid>/ring` — both rings in the uio layout (outbound, then inbound);
/// - `DIR/dev/uioN.map1`…`map4` — the interrupt page, the monitor page (watched while a
///   program holds the node) and, for a NIC, the receive and send buffers;
/// - `DIR/dev/uioN` — a Unix stream socket speaking uio's 4-byte protocol: connecting is
///   `open()` (the channel opens with fresh rings; the holding process may connect again and
///   share it), reading 4 bytes waits for an interrupt (the count), writing 4 bytes is
///   irqcontrol; closing it closes the channel. A rescind closes the socket and removes the
///   device's directory.
public final class UioExport: Sendable {
    /// The export's root: `sys/` and `dev/` are below it.
    public let directory: String
    /// The sysfs tree to give programs instead of `/sys`
    /// (``UioDevice/find(root:instance:classID:)``, `vmbus ls --sysfs`).
    public var sysfsRoot: String { self.directory + "/sys" }
    let devices = Locked<[UInt32: ExportedDevice]>([:])
    let log: @Sendable (String) -> Void

    /// Creates the tree's skeleton under `directory` (which may exist).
    public init(directory: String, log: @escaping @Sendable (String) -> Void = { _ in }) throws(UioError) {
        self.directory = directory
        self.log = log
        do {
            for sub in ["/sys/bus/vmbus/devices", "/sys/bus/vmbus/drivers/uio_hv_generic", "/dev"] {
                try FileManager.default.createDirectory(atPath: directory + sub, withIntermediateDirectories: true)
            }
        } catch {
            throw UioError.unavailable("cannot create \(directory): \(error.localizedDescription)")
        }
    }

    /// Exports `device` as relid `relid` on `/dev/uio<index>` with rings of `ringSize` bytes
    /// each (header page included; Linux: the class's preferred size, else 2 MiB + 4 KiB), and
    /// `subChannels` sub-channels (relids `relid + 1`…, opened with the primary, each with its
    /// own `channels/<relid>/ring`).
    ///
    /// Every device gets maps 1 and 2 (`int_page`, `monitor_page`); a device whose offer wants
    /// monitored notification gets a `monitor_id` (its relid modulo 128) and its monitor page
    /// is watched while a program is connected. With `buffers` (a NIC, 05 §10.1) maps 3 and 4
    /// are the receive and send buffers, named with their GPADL handles.
    /// - Returns: the device's stand-in for a bus: give it to a device that maps GPADLs or
    ///   GPA-direct ranges (`NetvspDevice.attach(to:)` in `VMBusNetwork`).
    @discardableResult
    public func export(
        _ device: any HostDevice, relid: UInt32, index: Int, ringSize: Int, subChannels: Int = 0, buffers: UioNICBuffers? = nil
    ) throws(UioError) -> UioDeviceBus {
        let exported = try ExportedDevice(
            device: device, relid: relid, index: index, ringSize: ringSize, subChannels: subChannels, buffers: buffers,
            root: self.directory, log: self.log)
        self.devices.withLock { $0[relid] = exported }
        exported.start()
        return exported.bus
    }

    /// The host rescinds a device: its open channel ends (the reader sees EIO — here, end of
    /// stream), its node and sysfs directory go.
    public func rescind(relid: UInt32) {
        let device = self.devices.withLock { $0.removeValue(forKey: relid) }
        device?.remove()
    }

    /// Rescinds every device.
    public func stop() {
        for relid in self.devices.withLock({ Array($0.keys) }) { self.rescind(relid: relid) }
    }

    /// The exported relids.
    public var relids: [UInt32] { self.devices.withLock { $0.keys.sorted() } }
}

/// One exported device: its tree, its ring file, its node, its open channel.
final class ExportedDevice: Sendable {
    let device: any HostDevice
    let relid: UInt32
    let index: Int
    let ringSize: Int
    let devicePath: String
    let nodePath: String
    /// The primary's rings, then each sub-channel's.
    let relids: [UInt32]
    let rings: [RingPairFile]
    let server: StreamSocket
    let log: @Sendable (String) -> Void
    /// Maps 1–4 (interrupt page, monitor page, NIC buffers).
    let maps: ExportMaps
    let bus: UioDeviceBus
    /// Monitor ids by relid: none unless the offer wants monitored notification.
    let monitorIDs: [UInt32: UInt8]

    struct Open {
        var channels: [Channel] = []
        var client: StreamSocket?
        var interrupts: UInt32 = 0
        /// Whether the current open has had an interrupt yet (the first read must not miss
        /// one raised while the program was still attaching).
        var interruptedSinceOpen = false
        var events: UInt64 = 0
        var removed = false
        var watcher: MonitorWatcher?
        /// The process holding the node, and its further opens of it (``share(_:)``).
        var holder: Int32?
        var shared: [StreamSocket] = []
    }
    let state = Locked(Open())
    /// Signalled when no program holds the node.
    let released = DispatchSemaphore(value: 1)

    let root: String

    init(
        device: any HostDevice, relid: UInt32, index: Int, ringSize: Int, subChannels: Int, buffers: UioNICBuffers?, root: String,
        log: @escaping @Sendable (String) -> Void
    ) throws(UioError) {
        self.device = device
        self.relid = relid
        self.index = index
        self.ringSize = ringSize
        self.log = log
        self.root = root
        let offer = device.offer
        self.devicePath = root + "/sys/bus/vmbus/devices/\(offer.interfaceInstance)"
        self.nodePath = root + "/dev/uio\(index)"
        self.relids = (0...subChannels).map { relid + UInt32($0) }
        self.monitorIDs = offer.wantsMonitor ? Dictionary(uniqueKeysWithValues: self.relids.map { ($0, UInt8($0 % 128)) }) : [:]
        do {
            self.maps = try ExportMaps.create(root: root, index: index, relid: relid, buffers: buffers)
        } catch {
            throw UioError.unavailable("cannot create the maps of relid \(relid) in \(root)/dev: \(error)")
        }
        self.bus = UioDeviceBus(gpadls: self.maps.gpadls)
        let fm = FileManager.default
        do {
            for relid in self.relids {
                try fm.createDirectory(atPath: self.devicePath + "/channels/\(relid)", withIntermediateDirectories: true)
            }
            for map in 0...self.maps.maps.count {
                try fm.createDirectory(atPath: self.devicePath + "/uio/uio\(index)/maps/map\(map)", withIntermediateDirectories: true)
            }
            let attributes: [(String, String)] = [
                ("class_id", "{\(offer.interfaceType)}"), ("device_id", "{\(offer.interfaceInstance)}"), ("id", "\(relid)"),
                ("state", "3"), ("modalias", offer.interfaceType.modalias), ("vendor", "0x1414"),
                ("device", "0x" + String(DeviceClass.lookup(offer.interfaceType)?.linuxIndex ?? DeviceClass.linuxUnknownIndex, radix: 16)),
                ("channel_vp_mapping", self.relids.map { "\($0):0" }.joined(separator: "\n")),
                ("uio/uio\(index)/name", "uio_hv_generic"), ("uio/uio\(index)/version", "0.02.1"),
                ("uio/uio\(index)/maps/map0/name", "txrx_rings"),
                ("uio/uio\(index)/maps/map0/size", "0x" + String(2 * ringSize, radix: 16)),
                ("uio/uio\(index)/maps/map0/offset", "0x0"),
            ] + self.relids.enumerated().flatMap { sub, relid in
                [("channels/\(relid)/cpu", "0"), ("channels/\(relid)/subchannel_id", "\(sub)")]
            } + self.maps.attributes(index: index) + self.monitorIDs.flatMap { channel, id in
                // Linux shows monitor_id only for a channel that has one (05 §9).
                [("channels/\(channel)/monitor_id", "\(id)")] + (channel == relid ? [("monitor_id", "\(id)")] : [])
            }
            for (name, value) in attributes {
                try Data((value + "\n").utf8).write(to: URL(fileURLWithPath: self.devicePath + "/" + name))
            }
            try? fm.removeItem(atPath: self.devicePath + "/driver")
            try fm.createSymbolicLink(atPath: self.devicePath + "/driver", withDestinationPath: "../../drivers/uio_hv_generic")
            try Self.linkUioClass(
                root: root, devicePath: self.devicePath, instance: "\(offer.interfaceInstance)", index: index, relid: relid)
        } catch {
            throw UioError.unavailable("cannot write the sysfs tree at \(self.devicePath): \(error.localizedDescription)")
        }
        do {
            let devicePath = self.devicePath
            self.rings = try self.relids.map { relid throws(MemoryError) in
                try RingPairFile.create(path: devicePath + "/channels/\(relid)/ring", ringSize: ringSize)
            }
            self.server = try StreamSocket.listen(.unix(self.nodePath), backlog: 4)
        } catch {
            throw UioError.unavailable("cannot create the rings or node of relid \(relid): \(error)")
        }
        self.prepareRings()
        self.refreshAttributes()
    }

    func start() {
        let thread = Thread { [self] in
            while let client = try? self.server.accept() {
                // The holder opening the node again (DPDK opens it once per map) shares it.
                if self.share(client) { continue }
                // One program at a time, as a daemon holds /dev/uioN; the next waits for it to
                // close (while it waits, further opens queue behind it).
                self.released.wait()
                self.state.withLock { state in
                    state.client = client
                    state.holder = client.peerProcessID
                }
                let serving = Thread { [self] in
                    self.serve(client)
                    self.released.signal()
                }
                serving.name = "vmbus-uio-open-\(self.relid)"
                serving.start()
            }
        }
        thread.name = "vmbus-uio-export-\(self.relid)"
        thread.start()
        Task { [weak self] in
            while let self, !self.state.withLock({ $0.removed }) {
                self.refreshAttributes()
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    /// `open()`: fresh rings, the host side of every channel, the device told; then the 4-byte
    /// irqcontrol writes until the client closes (`close()`: the channels close).
    func serve(_ client: StreamSocket) {
        var channels: [Channel] = []
        do {
            for (rings, relid) in zip(self.rings, self.relids) {
                channels.append(try Channel(
                    relid: relid, outgoing: try rings.ring(.inbound), incoming: try rings.ring(.outbound),
                    doorbell: ClosureDoorbell { [weak self] in self?.interruptGuest(relid) },
                    options: self.device.channelOptions(ChannelOptions())))
            }
        } catch {
            self.log("uio export: relid \(self.relid): cannot open the channels: \(error)")
            self.state.withLock { state in
                state.client = nil
                state.holder = nil
            }
            client.shutdown()
            return
        }
        // GPA-direct packets name the program's own memory (05 §10: no hugepages, virtual
        // addresses as physical ones): the process that connected.
        self.bus.attach(processID: client.peerProcessID)
        self.state.withLock { state in
            state.channels = channels
            state.client = client
            state.interruptedSinceOpen = false
        }
        // "open() returned": the first word on the node (the interrupt count, so a program
        // that knows nothing of it sees one spurious interrupt, which uio allows). Sent before
        // the device hears of the open, so it always comes first.
        let count = self.state.withLock { $0.interrupts }
        _ = client.sendIfRoom(Self.word(count)[...])
        self.log("uio export: relid \(self.relid) opened through \(self.nodePath)")
        for (sub, channel) in channels.enumerated() {
            self.device.opened(channel, info: HostChannelInfo(relid: channel.relid, subChannelIndex: UInt16(sub), offer: self.device.offer))
        }
        self.interruptIfPendingAtOpen()
        let watcher = self.watchMonitorPage(channels)
        self.irqcontrol(client, channels)
        // The holder's first open closed: the kernel closes the channels on the last close;
        // here the first open is the one that counts (the program's further opens end with it).
        watcher?.stop()
        let shared = self.state.withLock { state in
            state.channels = []
            state.client = nil
            state.holder = nil
            state.watcher = nil
            defer { state.shared = [] }
            return state.shared
        }
        for other in shared { other.shutdown() }
        // What the program wrote before closing is still delivered (an answer and then exit is
        // how daemons end), and only then are the rings reset for the next open.
        for channel in channels.reversed() {
            channel.peerEnded(.closedByPeer)
            Self.waitUntilClosed(channel, seconds: 10)
            self.device.closed(relid: channel.relid)
        }
        self.bus.attach(processID: nil)
        self.prepareRings()
        self.log("uio export: relid \(self.relid) closed")
    }

    /// Blocks this (export) thread until `channel`'s reader has drained it, at most `seconds`;
    /// a reader that does not finish in time is cut off.
    static func waitUntilClosed(_ channel: Channel, seconds: Double) {
        let done = DispatchSemaphore(value: 0)
        Task {
            _ = await channel.closed()
            done.signal()
        }
        if done.wait(timeout: .now() + seconds) == .timedOut { channel.close(.closedByPeer) }
    }

    /// Fresh rings for the next `open()`, ready before the client can connect (a kernel has
    /// them ready before open() returns): zeroed control pages, so the guest's inbound
    /// interrupts start *unmasked*, as the kernel's freshly zeroed ring header is while it
    /// opens the channel. Were they masked, the host's first message (an IC negotiation is
    /// sent the moment the channel opens) would raise no interrupt, and a program that
    /// unmasks and then blocks in `read()` without looking at the ring first — Linux's
    /// `hv_fcopy_uio_daemon` does — would wait forever.
    func prepareRings() {
        for rings in self.rings {
            for ring in RingPairFile.Ring.allCases { try? rings.ring(ring).initializeControlPage() }
        }
        // Bits a gone program left pending are no signal for the next one.
        try? self.maps.monitorPage.zero(at: 0, count: MonitorPage.size)
    }

    /// uio counts an interrupt raised while `open()` runs for the first `read()`. A device
    /// whose `opened` wrote into a ring without signalling (say, the ring was masked by then)
    /// would otherwise leave a program that reads before it looks waiting: one interrupt for
    /// whatever is already pending, unless the host's own signal got there first.
    func interruptIfPendingAtOpen() {
        let pending = zip(self.rings, self.relids).first { rings, _ in ((try? rings.ring(.inbound))?.bytesPending() ?? 0) > 0 }
        guard let (_, relid) = pending, !self.state.withLock({ $0.interruptedSinceOpen }) else { return }
        self.interruptGuest(relid)
    }

    /// The host signals the guest: the kernel masks the ring, counts, and wakes the reader.
    func interruptGuest(_ relid: UInt32) {
        if let index = self.relids.firstIndex(of: relid) {
            try? self.rings[index].ring(.inbound).store(.interruptMask, 1, ordering: .releasing)
        }
        let (clients, count): ([StreamSocket], UInt32) = self.state.withLock { state in
            state.interrupts &+= 1
            state.interruptedSinceOpen = true
            return ((state.client.map { [$0] } ?? []) + state.shared, state.interrupts)
        }
        let bytes = Self.word(count)
        // uio keeps a counter, not a queue: a program that does not read must not block the
        // host (this runs on whatever thread signalled). A full socket already holds a
        // wake-up, and the next read's count still includes this one. Every open file of
        // the node sees the interrupt, as every reader of a uio node does.
        for client in clients { client.sendIfRoom(bytes[...]) }
    }

    /// A 4-byte little-endian word of the node's protocol.
    static func word(_ value: UInt32) -> [UInt8] {
        [UInt8(truncatingIfNeeded: value), UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value >> 16),
         UInt8(truncatingIfNeeded: value >> 24)]
    }

    /// Rescind: the node goes (the reader sees the end), then the device's directory.
    func remove() {
        let (clients, channels, watcher) = self.state.withLock { state in
            state.removed = true
            return ((state.client.map { [$0] } ?? []) + state.shared, state.channels, state.watcher)
        }
        watcher?.stop()
        self.server.shutdown()
        LocalSocket.removeFile(path: self.nodePath)
        self.unlinkUioClass()
        for channel in channels.reversed() { channel.close(.rescinded) }
        for client in clients { client.shutdown() }
        try? FileManager.default.removeItem(atPath: self.devicePath)
    }

    /// The live attributes: ring masks and fill levels, interrupt and event counts.
    func refreshAttributes() {
        let (interrupts, events) = self.state.withLock { (UInt64($0.interrupts), $0.events) }
        for (rings, relid) in zip(self.rings, self.relids) {
            guard let inbound = try? rings.ring(.inbound), let outbound = try? rings.ring(.outbound) else { continue }
            let primary = relid == self.relid
            let values: [(String, String)] = [
                ("out_mask", "\(outbound.load(.interruptMask, ordering: .relaxed))"),
                ("in_mask", "\(inbound.load(.interruptMask, ordering: .relaxed))"),
                ("read_avail", "\(inbound.bytesPending() ?? 0)"),
                ("write_avail", "\(outbound.dataSize - 8 - (outbound.bytesPending() ?? 0))"),
                // uio counts per device; sysfs shows them on the primary.
                ("interrupts", "\(primary ? interrupts : 0)"), ("events", "\(primary ? events : 0)"),
            ]
            for (name, value) in values {
                try? Data((value + "\n").utf8).write(to: URL(fileURLWithPath: self.devicePath + "/channels/\(relid)/" + name))
            }
        }
    }
}
