import ArgumentParser
import Foundation
import Logging
import VMBusDevices
import VMBusGuest
import VMBusLocal
import VMBusMemory

/// `vmbus bench scale`: one host process serving many guest processes, each with many
/// channels, all echoing at once.
struct BenchScale: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "One host process, many guest processes × channels echoing at once: throughput, p99, memory and idle CPU.",
        discussion: """
            For each guest count: starts 'vmbus host' with --channels echo devices, then that \
            many guest processes ('vmbus bench scale-guest'); each guest opens every echo \
            channel and, once all guests are ready, runs one echo loop per channel (64-byte \
            request, the host's completion, the next request) for --seconds. Reported: round \
            trips/s and packets/s over all channels, the round trip's p50 and p99 over all of \
            them, the resident memory of one guest process and what each guest adds to the \
            host's, and the CPU the host and guests use while connected and idle afterwards \
            (percent of one core, over --idle-seconds).
            """
    )

    @Option(name: .long, parsing: .upToNextOption, help: "Guest process counts, one row each.")
    var guests: [Int] = [1, 2, 4, 8, 16, 32, 64]

    @Option(name: .long, help: "Echo channels per guest.")
    var channels: Int = 8

    @Option(name: .long, help: "Seconds of echo traffic per row.")
    var seconds: Double = 2

    @Option(name: .long, help: "Seconds of idleness over which CPU use is measured.")
    var idleSeconds: Double = 2

    @Option(name: .long, help: "Guest memory per guest process, in MiB.")
    var memory: Int = 8

    @Flag(name: .long, help: "Print JSON lines.")
    var json = false

    func validate() throws {
        guard self.guests.allSatisfy({ (1...256).contains($0) }) else { throw ValidationError("--guests: 1...256 each") }
        guard (1...64).contains(self.channels) else { throw ValidationError("--channels: 1...64") }
        guard self.seconds > 0, self.idleSeconds > 0 else { throw ValidationError("--seconds and --idle-seconds must be positive") }
        guard (4...1024).contains(self.memory) else { throw ValidationError("--memory: 4...1024 MiB") }
    }

    func run() throws {
        if !self.json {
            print(pad("guests", 8) + pad("channels", 10) + pad("round trips/s", 15) + pad("packets/s", 12) + pad("p50", 10)
                + pad("p99", 10) + pad("guest RSS", 11) + pad("host +/guest", 14) + "idle CPU")
        }
        for count in self.guests { try self.row(guests: count) }
    }

    func row(guests count: Int) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-scale-\(getpid())-\(count).sock").path
        let host = try spawnHost(path, devices: ["echo:\(self.channels)"], extra: ["--max-guests", "\(count)"])
        defer { stopHost(host, socket: path) }
        let hostBefore = residentKilobytes(host.processIdentifier) ?? 0
        var children: [ScaleGuest] = []
        defer { for child in children { child.finish() } }
        for _ in 0..<count { children.append(try ScaleGuest(path: path, channels: self.channels, seconds: self.seconds, memory: self.memory)) }
        for child in children { try child.awaitReady() }
        for child in children { child.go() }
        var histogram = FineHistogram()
        var roundTrips = 0
        for child in children {
            let result = try child.result()
            roundTrips += result.roundTrips
            histogram.merge(result.histogram)
        }
        // Everyone is connected and quiet now: what does waiting cost?
        let pids = [host.processIdentifier] + children.map(\.process.processIdentifier)
        let before = pids.map { cpuTicks($0) ?? 0 }.reduce(0, +)
        Thread.sleep(forTimeInterval: self.idleSeconds)
        let after = pids.map { cpuTicks($0) ?? 0 }.reduce(0, +)
        let idle = Double(after - before) / Double(sysconf(Int32(_SC_CLK_TCK))) / self.idleSeconds * 100
        let guestRSS = children.compactMap { residentKilobytes($0.process.processIdentifier) }.reduce(0, +) / count
        let hostPerGuest = ((residentKilobytes(host.processIdentifier) ?? 0) - hostBefore) / count
        let rate = Double(roundTrips) / self.seconds
        let p50 = histogram.percentile(0.5) ?? 0
        let p99 = histogram.percentile(0.99) ?? 0
        if self.json {
            print("{\"bench\": \"scale\", \"guests\": \(count), \"channels_per_guest\": \(self.channels), "
                + "\"round_trips_per_s\": \(Int(rate)), \"packets_per_s\": \(Int(2 * rate)), \"p50_us\": \(Double(p50) / 1000), "
                + "\"p99_us\": \(Double(p99) / 1000), \"guest_rss_kb\": \(guestRSS), \"host_kb_per_guest\": \(hostPerGuest), "
                + "\"idle_cpu_percent\": \(idle)}")
        } else {
            print(pad("\(count)", 8) + pad("\(count * self.channels)", 10) + pad(formatRate(rate), 15) + pad(formatRate(2 * rate), 12)
                + pad(formatMicros(Double(p50) / 1000), 10) + pad(formatMicros(Double(p99) / 1000), 10)
                + pad("\(guestRSS / 1024) MiB", 11) + pad("\(hostPerGuest) KiB", 14) + format1(idle) + " %")
        }
    }
}

/// One `vmbus bench scale-guest` child: started, told to go, asked for its result, then
/// released (end of its standard input) and waited for.
final class ScaleGuest {
    let process = Process()
    let input = Pipe()
    let output = Pipe()

    init(path: String, channels: Int, seconds: Double, memory: Int) throws {
        self.process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        self.process.arguments = [
            "bench", "scale-guest", "--connect", path, "--channels", "\(channels)", "--seconds", "\(seconds)", "--memory", "\(memory)",
        ]
        self.process.standardInput = self.input
        self.process.standardOutput = self.output
        try self.process.run()
    }

    func awaitReady() throws {
        guard let line = readLine(self.output.fileHandleForReading), line == "ready" else {
            throw CLIError("a guest process did not get ready (too many guests for this machine's memory or descriptors?)")
        }
    }

    func go() { self.input.fileHandleForWriting.write(Data("go\n".utf8)) }

    func result() throws -> (roundTrips: Int, histogram: FineHistogram) {
        guard let line = readLine(self.output.fileHandleForReading), let result = ScaleResult(line: line) else {
            throw CLIError("a guest process ended without a result")
        }
        return (result.roundTrips, result.histogram)
    }

    func finish() {
        try? self.input.fileHandleForWriting.close()
        self.process.waitUntilExit()
    }
}

/// `vmbus bench scale-guest`: one guest of `bench scale` (on its standard input and output).
struct BenchScaleGuest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale-guest", abstract: "A guest process of 'bench scale'.", shouldDisplay: false)

    @Option(name: .long) var connect: String
    @Option(name: .long) var channels: Int
    @Option(name: .long) var seconds: Double
    @Option(name: .long) var memory: Int

    func run() async throws {
        var quiet = Logger(label: "vmbus.bench")
        quiet.logLevel = .error
        let guest = try LocalGuest.connect(path: self.connect, memoryBytes: self.memory << 20, logger: quiet)
        // Small rings: one 64-byte request is ever in flight per channel.
        let client = EchoClient(pages: RingPages(each: 2))
        guest.bus.register(client)
        _ = try await guest.bus.connect()
        await guest.bus.settle()
        let devices = client.devices.map(\.relid)
        guard devices.count == self.channels else { throw CLIError("\(devices.count) of \(self.channels) channels opened") }
        print("ready")
        DescriptorIO.flushOutput()
        _ = Swift.readLine()
        let deadline = ContinuousClock.now + .seconds(self.seconds)
        let payload = [UInt8](repeating: 0x5A, count: 64)
        let histograms = try await withThrowingTaskGroup(of: FineHistogram.self) { group in
            for relid in devices {
                group.addTask {
                    var histogram = FineHistogram()
                    while ContinuousClock.now < deadline {
                        let start = ContinuousClock.now
                        _ = try await client.echo(payload, device: relid)
                        histogram.record(ContinuousClock.now - start)
                    }
                    return histogram
                }
            }
            var all: [FineHistogram] = []
            for try await histogram in group { all.append(histogram) }
            return all
        }
        var merged = FineHistogram()
        for histogram in histograms { merged.merge(histogram) }
        print(ScaleResult(roundTrips: Int(merged.count), histogram: merged).line)
        DescriptorIO.flushOutput()
        while Swift.readLine() != nil {}
        guest.disconnect()
        _ = await guest.ended()
    }
}

/// A guest's result line: `ROUNDTRIPS BUCKET:COUNT …`.
struct ScaleResult {
    var roundTrips: Int
    var histogram: FineHistogram

    init(roundTrips: Int, histogram: FineHistogram) {
        self.roundTrips = roundTrips
        self.histogram = histogram
    }

    init?(line: String) {
        let fields = line.split(separator: " ")
        guard let first = fields.first, let count = Int(first) else { return nil }
        self.roundTrips = count
        self.histogram = FineHistogram()
        for field in fields.dropFirst() {
            let parts = field.split(separator: ":")
            guard parts.count == 2, let index = Int(parts[0]), let value = UInt64(parts[1]),
                self.histogram.buckets.indices.contains(index)
            else { return nil }
            self.histogram.add(index: index, count: value)
        }
    }

    var line: String {
        ([String(self.roundTrips)] + self.histogram.buckets.enumerated().filter { $0.element > 0 }.map { "\($0.offset):\($0.element)" })
            .joined(separator: " ")
    }
}

/// Latencies in eighth-octave buckets (each about 9 % wide), mergeable across processes.
struct FineHistogram {
    /// Bucket `8 × log2(ns) + the next three bits`: 1 ns to beyond a minute.
    private(set) var buckets = [UInt64](repeating: 0, count: 8 * 40)
    private(set) var count: UInt64 = 0

    mutating func record(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let nanoseconds = UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
        self.add(index: Self.index(nanoseconds), count: 1)
    }

    mutating func add(index: Int, count: UInt64) {
        self.buckets[index] += count
        self.count += count
    }

    mutating func merge(_ other: FineHistogram) {
        for (index, value) in other.buckets.enumerated() where value > 0 { self.add(index: index, count: value) }
    }

    static func index(_ nanoseconds: UInt64) -> Int {
        guard nanoseconds >= 8 else { return Int(nanoseconds) }
        let octave = 63 - nanoseconds.leadingZeroBitCount
        let fraction = Int(nanoseconds >> (octave - 3)) & 7
        return min(8 * octave + fraction, 8 * 40 - 1)
    }

    /// The upper bound of the bucket holding the `fraction` quantile, in nanoseconds.
    func percentile(_ fraction: Double) -> UInt64? {
        guard self.count > 0 else { return nil }
        let rank = UInt64((Double(self.count) * fraction).rounded(.up))
        var seen: UInt64 = 0
        for (index, value) in self.buckets.enumerated() {
            seen += value
            if seen >= max(rank, 1) {
                guard index >= 8 else { return UInt64(index) }
                let octave = index / 8
                return (UInt64(8 + index % 8 + 1)) << (octave - 3)
            }
        }
        return nil
    }
}

/// A process's resident memory in KiB (`VmRSS`), or `nil`.
func residentKilobytes(_ pid: Int32) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }
    return nil
}

/// A process's CPU time so far (user + system, all threads) in clock ticks, or `nil`.
func cpuTicks(_ pid: Int32) -> Int? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return nil }
    // After "pid (comm) ": state is field 3; utime and stime are fields 14 and 15.
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 13, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
    return user + system
}
