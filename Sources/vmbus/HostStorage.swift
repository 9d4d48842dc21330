import ArgumentParser
import Foundation
import VMBusHost
import VMBusMemory
import VMBusStorage
import VMBusWire

/// One `--disk` argument: `FILE[,ro][,lun=N][,size=SIZE][,sector=512|4096][,direct]` or
/// `mem:SIZE[,lun=N][,sector=…]`.
struct DiskSpec: Hashable, Sendable {
    var path: String?
    var memoryBytes: Int?
    var readOnly = false
    var lun: UInt8?
    var createBytes: Int?
    var sectorSize = 512
    var direct = false

    init(_ text: String) throws {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let first = parts.first, !first.isEmpty else { throw ValidationError("--disk needs a FILE or mem:SIZE") }
        if first.hasPrefix("mem:") {
            self.memoryBytes = try parseSize(String(first.dropFirst(4)))
        } else {
            self.path = first
        }
        for part in parts.dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            switch (pair[0], pair.count == 2 ? pair[1] : nil) {
            case ("ro", nil): self.readOnly = true
            case ("direct", nil): self.direct = true
            case ("lun", let value?):
                guard let lun = UInt8(value) else { throw ValidationError("--disk \(text): lun must be 0…255") }
                self.lun = lun
            case ("size", let value?): self.createBytes = try parseSize(value)
            case ("sector", let value?):
                guard let size = Int(value), [512, 4096].contains(size) else { throw ValidationError("--disk \(text): sector must be 512 or 4096") }
                self.sectorSize = size
            default:
                throw ValidationError("--disk \(text): unknown option '\(part)' (ro, lun=N, size=SIZE, sector=512|4096, direct)")
            }
        }
        if self.memoryBytes != nil, self.path == nil, self.createBytes != nil || self.direct {
            throw ValidationError("--disk \(text): size= and direct are for files")
        }
        if let bytes = self.memoryBytes ?? self.createBytes, bytes % self.sectorSize != 0 {
            throw ValidationError("--disk \(text): the size must be a multiple of the \(self.sectorSize)-byte sector")
        }
    }

    /// Opens (or creates) the disk.
    func open() throws -> any DiskBackend {
        do {
            if let bytes = self.memoryBytes {
                return try MemoryDisk(sectorCount: UInt64(bytes / self.sectorSize), sectorSize: self.sectorSize, readOnly: self.readOnly)
            }
            let path = self.path ?? ""
            let directIO: FileDisk.DirectIO = self.direct ? .required : .off
            if let bytes = self.createBytes, !FileManager.default.fileExists(atPath: path) {
                guard !self.readOnly else { throw CLIError("--disk \(path): ro and size= (a new empty disk nobody may write?)") }
                return try FileDisk.create(path: path, byteCount: UInt64(bytes), sectorSize: self.sectorSize, directIO: directIO)
            }
            return try FileDisk.open(path: path, sectorSize: self.sectorSize, readOnly: self.readOnly, directIO: directIO)
        } catch let error as DiskError {
            let hint = self.createBytes == nil && self.path.map { !FileManager.default.fileExists(atPath: $0) } == true ? " (add ,size=SIZE to create it)" : ""
            throw CLIError("--disk \(self.path ?? "mem"): \(error)\(hint)")
        }
    }

    var label: String { self.path ?? "memory" }
}

/// `vmbus host --disk …`: the synthetic SCSI controller each guest gets.
struct HostStorageOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Serve a disk on the guests' SCSI controller (repeatable): FILE[,ro][,lun=N][,size=SIZE][,sector=512|4096][,direct] or mem:SIZE[,lun=N].",
            discussion: "ro: write-protected. lun: its LUN (default: the next free from 0). size: create FILE (sparse) if it does not exist. sector: logical sector size. direct: O_DIRECT (fails if the file system refuses it). mem:SIZE is a disk in memory, empty, gone when the host exits."))
    var disk: [String] = []

    @Option(name: .long, help: "Storage queues a guest may ask for (1 = no sub-channels).")
    var diskQueues: Int = 4

    func specs() throws -> [(UInt8, DiskSpec)] {
        var used = Set<UInt8>()
        var result: [(UInt8, DiskSpec)] = []
        let parsed = try self.disk.map(DiskSpec.init)
        for spec in parsed where spec.lun != nil {
            guard used.insert(spec.lun!).inserted else { throw ValidationError("--disk: LUN \(spec.lun!) given twice") }
        }
        var next: UInt8 = 0
        for spec in parsed {
            if let lun = spec.lun {
                result.append((lun, spec))
                continue
            }
            while used.contains(next) {
                guard next < 255 else { throw ValidationError("--disk: more than 256 disks") }
                next += 1
            }
            used.insert(next)
            result.append((next, spec))
        }
        return result
    }

    func validate() throws {
        _ = try self.specs()
        guard (1...64).contains(self.diskQueues) else { throw ValidationError("--disk-queues must be 1…64") }
    }
}

/// The disks, and the controller of each connected guest. A disk is opened once and shared by
/// the controllers of every guest connected at once, like a shared SCSI disk: run with
/// `--max-guests 1` for a disk only one guest writes.
final class HostStorage: Sendable {
    let disks: [(lun: UInt8, label: String, backend: any DiskBackend)]
    let queues: Int
    let devices = Locked<[ObjectIdentifier: (guest: Int, device: StorvspDevice)]>([:])
    let guests = Locked(0)

    init?(options: HostStorageOptions) throws {
        let specs = try options.specs()
        guard !specs.isEmpty else { return nil }
        self.disks = try specs.map { lun, spec in (lun, spec.label, try spec.open()) }
        self.queues = options.diskQueues
    }

    /// The controller of a newly connected guest.
    func device(for bus: HostBus) -> StorvspDevice {
        let counted = self.guests.withLock { count in
            count += 1
            return count
        }
        let number = bus.guestNumber ?? counted
        var configuration = StorvspDevice.Configuration()
        configuration.maximumSubChannels = UInt16(self.queues - 1)
        // The same instance for every guest (each has a bus of its own): a host that takes
        // over finds each guest's controller by it, whatever order it meets the guests in.
        let device = StorvspDevice(
            instance: GUID(data1: 0x5C51_0001, data2: 0x5EED, data3: 0, data4: 0),
            disks: Dictionary(uniqueKeysWithValues: self.disks.map { ($0.lun, $0.backend) }), configuration: configuration)
        device.attach(to: bus)
        self.devices.withLock { $0[ObjectIdentifier(bus)] = (number, device) }
        bus.onConnectionLost { [self] in _ = self.devices.withLock { $0.removeValue(forKey: ObjectIdentifier(bus)) } }
        return device
    }

    /// Makes every disk's writes durable (at exit).
    func flush() { for disk in self.disks { try? disk.backend.flush() } }

    /// `vmbus disk stat` lines: the disks, then per guest and queue.
    func statistics(bus: HostBus?) -> [String] {
        var lines: [String] = []
        for disk in self.disks {
            let backend = disk.backend
            lines.append("lun \(disk.lun): \(disk.label), \(backend.byteCount) bytes (\(backend.sectorCount) × \(backend.sectorSize)), \(backend.isReadOnly ? "read-only" : "read-write")")
        }
        let entries = self.devices.withLock { devices in
            devices.filter { bus == nil || $0.key == ObjectIdentifier(bus!) }.values.sorted { $0.guest < $1.guest }
        }
        for (guest, device) in entries {
            let version = device.version.map { "protocol \($0)" } ?? "not initialised"
            lines.append("guest \(guest): \(version), \(device.isReady ? "ready" : "not ready")")
            var total = StorageQueueStatistics()
            for (queue, stats) in device.statistics.sorted(by: { $0.key < $1.key }) {
                lines.append("  queue \(queue): " + Self.describe(stats))
                if let fault = stats.lastFault { lines.append("    stopped: \(fault)") }
                total.merge(stats)
            }
            if device.statistics.count > 1 { lines.append("  total: " + Self.describe(total)) }
        }
        return lines
    }

    static func describe(_ stats: StorageQueueStatistics) -> String {
        func micro(_ fraction: Double) -> String {
            stats.latency.percentile(fraction).map { "\($0 / 1000)" } ?? "-"
        }
        return "requests \(stats.requests) reads \(stats.reads) writes \(stats.writes) read_bytes \(stats.bytesRead) "
            + "write_bytes \(stats.bytesWritten) flushes \(stats.flushes) discards \(stats.discards) failed \(stats.failed) "
            + "malformed \(stats.malformed) latency_us p50<\(micro(0.5)) p99<\(micro(0.99)) p999<\(micro(0.999))"
    }
}
