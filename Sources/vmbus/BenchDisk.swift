import ArgumentParser
import Foundation
import VMBusGuest
import VMBusHost
import VMBusLoopback
import VMBusMemory
import VMBusStorage
import VMBusWire

/// `vmbus bench disk`: the synthetic SCSI path through the guest's block-device API.
struct BenchDisk: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disk",
        abstract: "Storage IOPS, bandwidth and latency through the guest's block API on the in-process bus.",
        discussion: """
            A host storvsp and a guest storvsc on one loopback bus; the guest's disk is driven \
            through its block-device API by --seconds-long jobs: 4 KiB random reads and writes at \
            queue depth 1 and 32, and 1 MiB sequential reads and writes at depth 4. Each job runs \
            on a memory disk (the VMBus path alone) and, with --file, on that file too; the same \
            jobs straight on the disk backend, with no VMBus between, are the baseline. The NBD \
            path with fio and qemu-nbd is Scripts/bench-disk.sh (BENCHMARKS.md).
            """
    )

    @Option(name: .long, help: "Also run on this file (created sparse at --size if missing; removed again only if created).")
    var file: String?

    @Option(name: .long, help: "Disk size (with K, M or G).", transform: parseSize)
    var size: Int = 256 << 20

    @Option(name: .long, help: "Seconds per job.")
    var seconds: Double = 2

    @Option(name: .long, help: "Run only jobs whose name contains this (e.g. rand-read-4k-qd32).")
    var only: String?

    @Flag(name: .long, help: "Skip the baseline (the jobs straight on the backend).")
    var noBaseline = false

    @Option(name: .long, help: "Queue depth for every job instead of its own.")
    var depth: Int?

    struct Job {
        let name: String
        let read: Bool
        let random: Bool
        let bytes: Int
        let depth: Int
    }

    static let jobs = [
        Job(name: "rand-read-4k-qd1", read: true, random: true, bytes: 4096, depth: 1),
        Job(name: "rand-read-4k-qd32", read: true, random: true, bytes: 4096, depth: 32),
        Job(name: "rand-write-4k-qd1", read: false, random: true, bytes: 4096, depth: 1),
        Job(name: "rand-write-4k-qd32", read: false, random: true, bytes: 4096, depth: 32),
        Job(name: "seq-read-1m-qd4", read: true, random: false, bytes: 1 << 20, depth: 4),
        Job(name: "seq-write-1m-qd4", read: false, random: false, bytes: 1 << 20, depth: 4),
    ]

    func validate() throws {
        guard self.seconds > 0 else { throw ValidationError("--seconds must be positive") }
        guard self.size >= 16 << 20, self.size % 4096 == 0 else { throw ValidationError("--size must be at least 16M and whole 4 KiB pages") }
    }

    func run() async throws {
        var disks: [(String, any DiskBackend)] = [("memory", try MemoryDisk(sectorCount: UInt64(self.size / 512)))]
        var created = false
        if let file = self.file {
            if !FileManager.default.fileExists(atPath: file) {
                disks.append(("file", try FileDisk.create(path: file, byteCount: UInt64(self.size))))
                created = true
            } else {
                disks.append(("file", try FileDisk.open(path: file)))
            }
        }
        defer { if created, let file = self.file { try? FileManager.default.removeItem(atPath: file) } }
        print("job                  disk    path      IOPS       MB/s   p50 µs  p99 µs")
        for (label, backend) in disks {
            let bus = try LoopbackBus(memorySize: 256 << 20)
            let device = StorvspDevice(instance: GUID(data1: 0x5C51, data2: 0xBE, data3: 0, data4: 0), disks: [0: backend])
            device.attach(to: bus.host)
            bus.host.register(device)
            var configuration = StorvscDriver.Configuration()
            configuration.queueDepth = 64
            configuration.ringPages = 64
            let driver = StorvscDriver(configuration: configuration)
            bus.guest.register(driver)
            _ = try await bus.guest.connect()
            await bus.guest.settle()
            let disk = await driver.firstDisk()
            let direct = BackendBlockDevice(backend, queueDepth: 64, maximumTransferBytes: 1 << 20)
            // Every sector written first, so a read measures a copy and not a fault on a zero page.
            try await Self.fill(direct)
            for named in Self.jobs where self.only.map({ named.name.contains($0) }) ?? true {
                let job = self.depth.map { Job(name: named.name, read: named.read, random: named.random, bytes: named.bytes, depth: $0) } ?? named
                let paths: [(String, any BlockDevice)] = self.noBaseline ? [("vmbus", disk)] : [("vmbus", disk), ("direct", direct)]
                for (path, device) in paths {
                    let result = try await Self.measure(job, on: device, seconds: self.seconds)
                    print(
                        job.name.padding(toLength: 21, withPad: " ", startingAt: 0) + label.padding(toLength: 8, withPad: " ", startingAt: 0)
                            + path.padding(toLength: 8, withPad: " ", startingAt: 0) + result)
                }
            }
        }
    }

    static func fill(_ device: BackendBlockDevice) async throws {
        let chunk = [UInt8](repeating: 0x5A, count: 1 << 20)
        let sectors = UInt64(chunk.count / device.sectorSize)
        var lba: UInt64 = 0
        while lba + sectors <= device.sectorCount {
            try await device.write(lba: lba, chunk)
            lba += sectors
        }
    }

    /// Runs `job` for `seconds` with `job.depth` tasks each issuing one request at a time.
    static func measure(_ job: Job, on device: any BlockDevice, seconds: Double) async throws -> String {
        let sectors = job.bytes / device.sectorSize
        let span = device.sectorCount / UInt64(sectors)
        let data = [UInt8](repeating: 0xC3, count: job.bytes)
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let start = ContinuousClock.now
        let results = try await withThrowingTaskGroup(of: (Int, LatencyHistogram).self) { group in
            for worker in 0..<job.depth {
                group.addTask {
                    var histogram = LatencyHistogram()
                    var done = 0
                    var generator = SplitMix(seed: UInt64(worker) &+ 0x9E37_79B9)
                    var next = UInt64(worker) * span / UInt64(job.depth)
                    while ContinuousClock.now < deadline {
                        let slot = job.random ? UInt64.random(in: 0..<span, using: &generator) : next
                        next = (next + 1) % span
                        let began = ContinuousClock.now
                        // Requests longer than the device takes are split, one piece after another.
                        var offset = 0
                        while offset < sectors {
                            let count = min(sectors - offset, device.maximumTransferSectors)
                            let lba = slot * UInt64(sectors) + UInt64(offset)
                            if job.read {
                                _ = try await device.read(lba: lba, count: count)
                            } else {
                                try await device.write(lba: lba, Array(data[(offset * device.sectorSize)..<((offset + count) * device.sectorSize)]))
                            }
                            offset += count
                        }
                        histogram.record(nanoseconds: LatencyHistogram.nanoseconds(since: began))
                        done += 1
                    }
                    return (done, histogram)
                }
            }
            var total = 0
            var histogram = LatencyHistogram()
            for try await (done, part) in group {
                total += done
                histogram.merge(part)
            }
            return (total, histogram)
        }
        if ProcessInfo.processInfo.environment["VMBUS_BENCH_HISTOGRAM"] != nil {
            for (index, count) in results.1.buckets.enumerated() where count > 0 { print("  <\((1 << (index + 1)) / 1000) µs: \(count)") }
        }
        let (s, atto) = (ContinuousClock.now - start).components
        let elapsed = Double(s) + Double(atto) / 1e18
        let iops = Double(results.0) / elapsed
        let megabytes = iops * Double(job.bytes) / 1e6
        let p50 = results.1.percentile(0.5).map { "\($0 / 1000)" } ?? "-"
        let p99 = results.1.percentile(0.99).map { "\($0 / 1000)" } ?? "-"
        return String(format: "%9.0f  %9.1f", iops, megabytes) + "  <" + p50.padding(toLength: 7, withPad: " ", startingAt: 0) + "<" + p99
    }
}

/// A small fast generator for benchmark offsets (the system's would cost a system call each).
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { self.state = seed }
    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
