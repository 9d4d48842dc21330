import VMBusChannel
import VMBusGuest
import VMBusMemory
import VMBusWire

/// The guest side of the synthetic SCSI controller — what Linux's storvsc is (spec 10): binds
/// each SCSI controller offer, negotiates, asks for sub-channels, scans for disks and hands
/// them out as ``StorvscDisk``s (``BlockDevice``s).
public final class StorvscDriver: GuestDriver {
    public let name = "storvsc"
    public var classes: [GUID] { [DeviceClass.scsi.classID] }

    public struct Configuration: Sendable {
        /// Ring pages per direction (Linux: 33, VMBUS_RING_SIZE(128 KiB)).
        public var ringPages = 33
        /// Versions offered, in order (Linux ≥ 5.19: 6.2, 6.0, 5.1).
        public var versions = StorageVersion.linuxOrder
        /// Requests in flight per controller: a data buffer of ``maximumTransferBytes`` in guest
        /// memory each.
        public var queueDepth = 32
        /// Largest transfer asked for (cut to the host's max_transfer_bytes).
        public var maximumTransferBytes = 256 * 1024
        /// Sub-channels asked for when the host offers them (Linux: online CPUs − 1).
        public var subChannels = 0
        public init() {}
    }

    public let configuration: Configuration
    /// Controllers by primary relid, with sub-channels offered during their bring-up.
    let controllers = BoundDevices<StorvscController>()
    let waiters = Locked<[CheckedContinuation<StorvscDisk, Never>]>([])

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Controllers bound, by primary relid.
    public var allControllers: [StorvscController] { self.controllers.all }

    /// Every disk of every controller.
    public var disks: [StorvscDisk] { self.allControllers.flatMap(\.disks) }

    /// Waits until a disk is found (at once if one is).
    public func firstDisk() async -> StorvscDisk {
        await withCheckedContinuation { (continuation: CheckedContinuation<StorvscDisk, Never>) in
            // Checked and queued under one lock, so a disk found in between cannot be missed.
            let disk: StorvscDisk? = self.waiters.withLock { waiters in
                if let disk = self.disks.first { return disk }
                waiters.append(continuation)
                return nil
            }
            if let disk { continuation.resume(returning: disk) }
        }
    }

    public func probe(_ device: GuestDevice, bus: GuestBus) async throws {
        let controller: StorvscController
        do {
            controller = try await StorvscController.bringUp(device, bus: bus, configuration: self.configuration) { [weak self] controller in
                self?.disksChanged()
            }
        } catch {
            self.controllers.failed(relid: device.relid)
            throw error
        }
        for relid in self.controllers.add(controller, relid: device.relid) { await controller.openSubChannel(relid) }
        self.disksChanged()
    }

    func disksChanged() {
        let ready: [(CheckedContinuation<StorvscDisk, Never>, StorvscDisk)] = self.waiters.withLock { waiters in
            guard let disk = self.disks.first else { return [] }
            defer { waiters = [] }
            return waiters.map { ($0, disk) }
        }
        for (waiter, disk) in ready { waiter.resume(returning: disk) }
    }

    public func remove(_ device: GuestDevice, bus: GuestBus) async {
        await self.controllers.remove(relid: device.relid)?.shutDown()
    }

    public func subChannelOffered(_ relid: UInt32, of device: GuestDevice, bus: GuestBus) {
        if let controller = self.controllers.subChannelOffered(relid, of: device.relid) {
            Task { await controller.openSubChannel(relid) }
        }
    }
}
