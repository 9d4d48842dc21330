import Foundation
import VMBusChannel
import VMBusMemory
import VMBusWire

/// Why a uio device could not be used; each says what to do about it.
public enum UioError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The sysfs tree has no VMBus: not a Hyper-V or Azure guest.
    case noVMBus(root: String)
    /// No device matches.
    case notFound(String)
    /// The device exists but is not bound to `uio_hv_generic`; `steps` binds it.
    case notBoundToUio(device: GUID, driver: String?, steps: [String])
    /// The device or its rings could not be opened or mapped.
    case unavailable(String)

    public var description: String {
        switch self {
        case .noVMBus(let root): return "no VMBus in \(root) (\(root)/bus/vmbus is missing): this is not a Hyper-V or Azure guest"
        case .notFound(let what): return "no VMBus device \(what)"
        case .notBoundToUio(let device, let driver, let steps):
            return "device \(device) is \(driver.map { "bound to \($0)" } ?? "not bound to any driver"), not uio_hv_generic; "
                + "to hand it to user space (as root):\n  " + steps.joined(separator: "\n  ")
        case .unavailable(let why): return why
        }
    }
}

/// A device's `uio_hv_generic` pieces, found through sysfs: its sysfs entry, the node that
/// stands for `/dev/uioN` (a real device, or the socket `vmbus host --uio-export` serves) and
/// the primary channel's ring mapping.
public struct UioDevice: Sendable {
    /// The device's sysfs entry, as read when it was found.
    public let sysfs: SysfsDevice
    /// `/dev/uioN` for the real sysfs (`/sys`); `ROOT/../dev/uioN` for any other tree.
    public let nodePath: String
    /// Both rings: map 0 of the uio device, or the primary channel's `ring` file.
    public let ringMapBytes: Int

    /// Finds a device by instance GUID (preferred) or class GUID under `root` (e.g. `/sys`).
    /// - Throws: ``UioError`` saying what is missing and how to fix it.
    public static func find(root: String = "/sys", instance: GUID? = nil, classID: GUID? = nil) throws(UioError) -> UioDevice {
        guard VMBusSysfs.hasVMBus(root: root) else { throw UioError.noVMBus(root: root) }
        let devices = VMBusSysfs.devices(root: root)
        let found = instance.flatMap { id in devices.first { $0.instance == id } } ?? classID.flatMap { id in devices.first { $0.classID == id } }
        guard let device = found else {
            throw UioError.notFound([instance.map { "with instance \($0)" }, classID.map { "of class \($0)" }].compactMap { $0 }.joined(separator: " or "))
        }
        guard device.driver == "uio_hv_generic", let uio = device.uio else {
            throw UioError.notBoundToUio(device: device.instance, driver: device.driver, steps: Self.bindSteps(device, root: root))
        }
        let node = (root == "/sys" ? "/dev" : URL(fileURLWithPath: root).deletingLastPathComponent().path + "/dev") + "/" + uio
        let primaryRing = device.channels.first { $0.relid == device.relid }?.ringBytes
        guard let bytes = primaryRing ?? device.ringMapBytes, bytes >= 2 * 8192, bytes % 8192 == 0 else {
            throw UioError.unavailable("cannot tell the ring size of \(device.instance) (no channels/<relid>/ring, no uio map0 size)")
        }
        return UioDevice(sysfs: device, nodePath: node, ringMapBytes: bytes)
    }

    /// The shell steps that hand a device to `uio_hv_generic` (05 §10).
    public static func bindSteps(_ device: SysfsDevice, root: String = "/sys") -> [String] {
        var steps = ["modprobe uio_hv_generic"]
        if let driver = device.driver {
            steps.append("echo \(device.instance) > \(root)/bus/vmbus/drivers/\(driver)/unbind")
        }
        steps.append("echo \(device.classID) > \(root)/bus/vmbus/drivers/uio_hv_generic/new_id")
        steps.append("echo \(device.instance) > \(root)/bus/vmbus/drivers/uio_hv_generic/bind")
        return steps
    }
}

/// A device's primary channel driven from user space through `uio_hv_generic` (05 §10): the
/// rings mapped in place, the same `Channel` API as every other substrate (in-place reads,
/// batching, `pending_send_sz`, the interrupt mask), interrupts from blocking 4-byte reads on
/// a thread of its own — which also runs the tasks that prefer it (`Channel.taskExecutor`) —
/// and the host kicked by irqcontrol writes. The kernel opened the
/// channel when the node was opened; a read failing with EIO (the socket closing, for an
/// export) means the host rescinded it: the channel finishes with `CloseReason.rescinded`.
public final class UioChannel: Sendable {
    /// The device this channel belongs to.
    public let device: UioDevice
    /// The primary channel, mapped in place: the same API as on every substrate.
    public let channel: Channel
    let notifier: UioNotifier
    let memory: MappedMemory
    /// The primary's host → guest ring, whose mask the kernel sets on every interrupt.
    let inbound: SharedRingMemory
    /// Open sub-channels and their mappings: uio has one interrupt for the whole device.
    let subChannels = SubChannels()
    /// Map 2, the guest → host monitor page, once a monitored sub-channel needs it.
    let monitorPage = Locked<MappedMemory?>(nil)
    /// The interrupt thread as a task executor, offered as the primary's
    /// `Channel.taskExecutor`: a reader task that prefers it is resumed by that thread right
    /// after it took the interrupt, instead of being handed to the cooperative pool (`nil` if
    /// its eventfd could not be made: tasks then run on the pool, as before).
    let executor = try? LoopExecutor()

    /// Opens the node (for a real device this makes the kernel open the channel), maps the
    /// rings and starts taking interrupts.
    /// - Parameter device: the device ``UioDevice/find(root:instance:classID:)`` found.
    /// - Parameter options: the primary channel's options (delivery mode, limits, polling).
    /// - Parameter capture: records the primary channel's packets, doorbells, open and close
    ///   (docs/CAPTURE.md); the channel messages are the kernel's and are not seen here.
    public init(_ device: UioDevice, options: ChannelOptions = ChannelOptions(), capture: CaptureTap? = nil) throws(UioError) {
        self.device = device
        do {
            self.notifier = try UioNotifier(path: device.nodePath)
        } catch {
            throw UioError.unavailable("cannot open \(device.nodePath): \(error)")
        }
        let ringFile = device.sysfs.channels.first { $0.relid == device.sysfs.relid }?.ringPath
        do {
            // A real node maps its rings at offset 0 (map 0); the export's socket cannot be
            // mapped, its `ring` file holds the same bytes.
            self.memory = try MappedMemory.file(
                path: self.notifier.isSocket ? (ringFile ?? device.nodePath) : device.nodePath, size: device.ringMapBytes)
            let half = device.ringMapBytes / 2
            let outgoing = try SharedRingMemory(memory: self.memory, offset: 0, ringSize: half)
            let incoming = try SharedRingMemory(memory: self.memory, offset: half, ringSize: half)
            self.inbound = incoming
            let notifier = self.notifier
            self.channel = try Channel(
                relid: device.sysfs.relid ?? 0, outgoing: outgoing, incoming: incoming, doorbell: try Self.primaryDoorbell(device, notifier),
                options: options, capture: capture, taskExecutor: self.executor)
        } catch let error as MemoryError {
            throw UioError.unavailable("cannot map the rings of \(device.nodePath): \(error)")
        } catch {
            throw UioError.unavailable("cannot attach to the rings of \(device.nodePath): \(error)")
        }
        let channel = self.channel
        let notifier = self.notifier
        let subChannels = self.subChannels
        let inbound = self.inbound
        let executor = self.executor
        ThreadName.start("vmbus-uio-\(device.sysfs.relid ?? 0)") {
            var batch: [UnownedJob] = []
            while true {
                // Tasks that prefer this thread (`Channel.taskExecutor`) run between interrupts;
                // it sleeps only with none queued, and a job queued while it sleeps wakes it.
                if let executor {
                    _ = executor.runPending(&batch)
                    guard executor.prepareToSleep() else { continue }
                }
                // uio cannot say which channel the interrupt was for: wake them all (each reader
                // looks at its ring and sleeps again if it is empty).
                do throws(UioNotifier.Failure) {
                    if let executor {
                        let interrupt = try notifier.wait(orWake: executor.wake)
                        executor.awoke()
                        guard interrupt != nil else { continue }
                    } else {
                        _ = try notifier.wait()
                    }
                    // The kernel masked the interrupted ring (05 §10.3); this substrate's
                    // channels expect signals on unless they mask them themselves while reading
                    // (an interrupt handler never does): unmask before waking, so whatever the
                    // host writes after this wake-up is signalled again.
                    Self.unmask(inbound)
                    channel.interrupt()
                    for sub in subChannels.list.withLock({ $0 }) {
                        Self.unmask(sub.inbound)
                        sub.channel.interrupt()
                    }
                } catch {
                    // Rescinded (or closed here): what the host sent before is still read, by
                    // readers that now run elsewhere.
                    executor?.awoke()
                    executor?.end()
                    channel.finish(channel.closeReason ?? .rescinded)
                    for sub in subChannels.list.withLock({ $0 }) { sub.channel.finish(sub.channel.closeReason ?? .rescinded) }
                    return
                }
            }
        }
    }

    /// How the primary kicks the host (05 §10.3): irqcontrol signals the host only for a
    /// channel without a monitor id; a monitored one (a NIC) sets its bit in the monitor page
    /// (map 2) instead, as DPDK's netvsc does.
    static func primaryDoorbell(_ device: UioDevice, _ notifier: UioNotifier) throws(MemoryError) -> ClosureDoorbell {
        guard let monitorID = device.sysfs.monitorID, (0..<128).contains(monitorID) else {
            return ClosureDoorbell { try? notifier.control(enable: true) }
        }
        let page = try Self.mapMonitorPage(notifier)
        let offset = MonitorPage.pendingOffset(monitorID: UInt8(monitorID))
        let bit = MonitorPage.pendingBit(monitorID: UInt8(monitorID))
        return ClosureDoorbell { _ = try? page.orUInt32(bit, at: offset) }
    }

    /// Map 2 of the node (the export's `uioN.map2` file).
    static func mapMonitorPage(_ notifier: UioNotifier) throws(MemoryError) -> MappedMemory {
        notifier.isSocket
            ? try MappedMemory.file(path: notifier.path + ".map2", size: MonitorPage.size)
            : try MappedMemory.map(fileDescriptor: notifier.fileDescriptor, size: MonitorPage.size, offset: 2 * MappedMemory.pageSize)
    }

    /// Stops: the channel closes and the node is released (the kernel closes the channel on
    /// the last close).
    public func close() {
        for sub in self.subChannels.list.withLock({ $0 }) { sub.channel.close(.closedLocally) }
        self.channel.close(.closedLocally)
        self.notifier.shutdown()
    }

    /// Opens a sub-channel the kernel opened for this device (05 §10.1): its rings are the
    /// `channels/<relid>/ring` file, mapped in place. The host is kicked through the monitor
    /// page (map 2) when the sub-channel has a monitor id, else through the node's irqcontrol
    /// write (which a real kernel applies to the primary only — sub-channel users on Hyper-V
    /// rely on monitored notification, as DPDK does).
    public func openSubChannel(_ relid: UInt32, options: ChannelOptions = ChannelOptions()) throws(UioError) -> Channel {
        guard let sysfs = self.device.sysfs.channels.first(where: { $0.relid == relid }), relid != self.device.sysfs.relid,
            let ring = sysfs.ringPath, let bytes = sysfs.ringBytes, bytes >= 16384, bytes % 8192 == 0
        else { throw UioError.notFound("sub-channel \(relid) with a ring file under \(self.device.sysfs.path)") }
        let notifier = self.notifier
        let doorbell: ClosureDoorbell
        if let monitorID = sysfs.monitorID, (0..<128).contains(monitorID) {
            let page = try self.guestToHostMonitorPage()
            let offset = MonitorPage.pendingOffset(monitorID: UInt8(monitorID))
            let bit = UInt32(1) << UInt32(monitorID % 32)
            doorbell = ClosureDoorbell { _ = try? page.orUInt32(bit, at: offset) }
        } else {
            doorbell = ClosureDoorbell { try? notifier.control(enable: true) }
        }
        do {
            let memory = try MappedMemory.file(path: ring, size: bytes)
            let inbound = try SharedRingMemory(memory: memory, offset: bytes / 2, ringSize: bytes / 2)
            let channel = try Channel(
                relid: relid, outgoing: try SharedRingMemory(memory: memory, offset: 0, ringSize: bytes / 2), incoming: inbound,
                doorbell: doorbell, options: options)
            self.subChannels.list.withLock { $0.append((channel, memory, inbound)) }
            return channel
        } catch let error as MemoryError {
            throw UioError.unavailable("cannot map \(ring): \(error)")
        } catch {
            throw UioError.unavailable("cannot attach to \(ring): \(error)")
        }
    }

    func guestToHostMonitorPage() throws(UioError) -> MappedMemory {
        let notifier = self.notifier
        let result: Result<MappedMemory, UioError> = self.monitorPage.withLock { page in
            if let page { return .success(page) }
            do {
                let mapped = try Self.mapMonitorPage(notifier)
                page = mapped
                return .success(mapped)
            } catch {
                return .failure(UioError.unavailable("cannot map the monitor page (map 2) of \(notifier.path): \(error)"))
            }
        }
        return try result.get()
    }

    /// A buffer the kernel registered as a GPADL for user space (NIC only: maps named
    /// `recv:<handle>` and `send:<handle>`, 05 §10.2): its GPADL handle and its memory.
    /// - Parameter name: `recv` or `send`.
    public func buffer(_ name: String) throws(UioError) -> (gpadl: UInt32, memory: MappedMemory) {
        let map = try self.bufferMap(name)
        return (map.gpadl, try self.map([map]))
    }

    /// Where a buffer map of the device is (NIC only: `recv:<handle>`, `send:<handle>`).
    public struct BufferMap: Hashable, Sendable {
        /// The GPADL handle the kernel registered it as (the program names it in NVSP).
        public let gpadl: UInt32
        /// The uio map index (mapped at index × 4096 of the node).
        public let index: Int
        /// The map's size in bytes.
        public let size: Int
    }

    /// Finds the map named `name:<handle>`.
    /// - Throws: ``UioError/notFound(_:)`` for a device without it (only the NIC class has them).
    public func bufferMap(_ name: String) throws(UioError) -> BufferMap {
        guard let uio = self.device.sysfs.uio else { throw UioError.notFound("uio node for \(self.device.sysfs.instance)") }
        let maps = self.device.sysfs.path + "/uio/\(uio)/maps"
        for index in 0..<5 {
            guard let label = VMBusSysfs.text(maps + "/map\(index)/name"), label.hasPrefix(name + ":"),
                let gpadl = UInt32(label.dropFirst(name.count + 1)),
                let size = VMBusSysfs.text(maps + "/map\(index)/size").flatMap({ Int($0.dropFirst(2), radix: 16) }), size > 0
            else { continue }
            return BufferMap(gpadl: gpadl, index: index, size: size)
        }
        throw UioError.notFound("\(name) buffer map under \(maps) (only the NIC class has them)")
    }

    /// Maps the given maps back to back in one mapping (the node at index × 4096 for a real
    /// device; the export's `DIR/dev/uioN.mapK` files for an export).
    public func map(_ maps: [BufferMap]) throws(UioError) -> MappedMemory {
        let pieces = maps.map { map -> MappedMemory.Piece in
            self.notifier.isSocket
                ? .file(self.device.nodePath + ".map\(map.index)", size: map.size)
                : .descriptor(self.notifier.fileDescriptor, offset: map.index * MappedMemory.pageSize, size: map.size)
        }
        do { return try MappedMemory.joining(pieces) } catch {
            throw UioError.unavailable("cannot map \(maps.map { "map \($0.index)" }.joined(separator: ", ")) of \(self.device.nodePath): \(error)")
        }
    }
}

/// The sub-channels a ``UioChannel`` opened (shared with its interrupt thread).
final class SubChannels: Sendable {
    let list = Locked<[(channel: Channel, memory: MappedMemory, inbound: SharedRingMemory)]>([])
}

extension UioChannel {
    /// Clears a ring's interrupt mask, then fences, so the host's next check of it sees 0.
    static func unmask(_ ring: SharedRingMemory) {
        ring.store(.interruptMask, 0, ordering: .releasing)
        ring.fullFence()
    }
}
