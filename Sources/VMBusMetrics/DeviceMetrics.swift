import VMBusNetwork
import VMBusStorage

/// The synthetic SCSI controllers' per-queue counters (``StorvspDevice/statistics``).
public struct StorageMetrics: MetricsSource {
    let devices: @Sendable () -> [(guest: String, device: StorvspDevice)]

    /// - Parameter devices: the controllers to report now, each with its guest's label.
    public init(devices: @escaping @Sendable () -> [(guest: String, device: StorvspDevice)]) {
        self.devices = devices
    }

    public func collect(into snapshot: inout MetricsSnapshot) {
        for (guest, device) in self.devices() {
            for (queue, stats) in device.statistics.sorted(by: { $0.key < $1.key }) {
                let base = [guest, "\(device.offer.interfaceInstance)", "\(queue)"]
                snapshot.add(.storageRequests, base, stats.requests)
                for (op, count) in [("read", stats.reads), ("write", stats.writes), ("flush", stats.flushes), ("discard", stats.discards)] {
                    snapshot.add(.storageOperations, base + [op], count)
                }
                snapshot.add(.storageBytes, base + ["read"], stats.bytesRead)
                snapshot.add(.storageBytes, base + ["write"], stats.bytesWritten)
                snapshot.add(.storageFailed, base, stats.failed)
                snapshot.add(.storageMalformed, base, stats.malformed)
            }
        }
    }
}

/// The synthetic NICs' per-queue counters (``NetvspDevice/statistics``).
public struct NetworkMetrics: MetricsSource {
    let devices: @Sendable () -> [(guest: String, device: NetvspDevice)]

    /// - Parameter devices: the NICs to report now, each with its guest's label.
    public init(devices: @escaping @Sendable () -> [(guest: String, device: NetvspDevice)]) {
        self.devices = devices
    }

    public func collect(into snapshot: inout MetricsSnapshot) {
        for (guest, device) in self.devices() {
            for (queue, stats) in device.statistics.sorted(by: { $0.key < $1.key }) {
                let base = [guest, "\(device.offer.interfaceInstance)", "\(queue)"]
                snapshot.add(.networkPackets, base + ["rx"], stats.rxPackets)
                snapshot.add(.networkPackets, base + ["tx"], stats.txPackets)
                snapshot.add(.networkBytes, base + ["rx"], stats.rxBytes)
                snapshot.add(.networkBytes, base + ["tx"], stats.txBytes)
                snapshot.add(.networkDropped, base + ["rx"], stats.rxDropped)
                snapshot.add(.networkDropped, base + ["tx"], stats.txDropped)
                snapshot.add(.networkMalformed, base, stats.malformed)
                snapshot.add(.networkLargeSends, base, stats.txLargeSegments)
                snapshot.add(.networkCoalesced, base, stats.rxCoalesced)
            }
        }
    }
}
