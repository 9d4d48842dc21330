import ArgumentParser
import Synchronization
import VMBusChannel
import VMBusDevices
import VMBusGuest
import VMBusHost
import VMBusLoopback
import VMBusWire

/// `vmbus bench bus`: the control plane and the echo device on the in-process bus.
struct BenchBus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bus",
        abstract: "Control-plane and echo timings on the in-process (loopback) bus.",
        discussion: """
            Measures, each as the median of --runs runs: connect → all offers delivered with \
            1/16/256 devices; opening N = 1/16/256 channels (4-page rings each way); creating \
            and tearing down GPADLs of 1 MiB, 64 MiB and 1 GiB (--skip-large skips 1 GiB); echo \
            round-trip latency (p50/p99) and echo-stream throughput.
            """
    )

    @Option(name: .long, help: "Runs per measurement (the median is reported).")
    var runs: Int = 5

    @Option(name: .long, help: "Echo round trips for the latency figure.")
    var rounds: Int = 20000

    @Option(name: .long, help: "Packets for the echo-stream throughput figure.")
    var packets: Int = 200_000

    @Flag(name: .long, help: "Skip the 1 GiB GPADL.")
    var skipLarge = false

    @Option(name: .long, help: "Run only these cases: connect, open, gpadl, echo, stream (default: all).")
    var only: [String] = []

    func validate() throws {
        let known: Set = ["connect", "open", "gpadl", "echo", "stream"]
        for name in self.only where !known.contains(name) {
            throw ValidationError("unknown case '\(name)'; choose from \(known.sorted().joined(separator: ", "))")
        }
        guard self.runs >= 1, self.rounds >= 1, self.packets >= 1 else { throw ValidationError("counts must be positive") }
    }

    func wants(_ name: String) -> Bool { self.only.isEmpty || self.only.contains(name) }

    @Flag(name: .long, help: "Print JSON lines.")
    var json = false

    func report(_ name: String, _ fields: [(String, String)]) {
        if self.json {
            print("{\"bench\": \"bus\", \"case\": \"\(name)\"" + fields.map { ", \"\($0.0)\": \($0.1)" }.joined() + "}")
        } else {
            print(pad(name, 28) + fields.map { "\($0.0) \($0.1)" }.joined(separator: "  "))
        }
    }

    func run() async throws {
        if self.wants("connect") { try await self.connect() }
        if self.wants("open") { try await self.open() }
        if self.wants("gpadl") { try await self.gpadl() }
        if self.wants("echo") { try await self.echo() }
        if self.wants("stream") { try await self.stream() }
    }

    func connect() async throws {
        for devices in [1, 16, 256] {
            var samples: [Double] = []
            for _ in 0..<self.runs {
                let bus = try LoopbackBus()
                for n in 0..<devices { bus.host.register(SilentDevice(instance: n)) }
                let start = ContinuousClock.now
                _ = try await bus.guest.connect()
                samples.append(elapsedSeconds(since: start))
            }
            self.report("connect+offers devices=\(devices)", [("ms", milliseconds(median(samples)))])
        }
    }

    func open() async throws {
        for channels in [1, 16, 256] {
            var samples: [Double] = []
            for _ in 0..<self.runs {
                let bus = try LoopbackBus()
                for n in 0..<channels { bus.host.register(SilentDevice(instance: n)) }
                _ = try await bus.guest.connect()
                let relids = bus.guest.devices.map(\.relid)
                let start = ContinuousClock.now
                for relid in relids { _ = try await bus.guest.open(relid, pages: RingPages(each: 4)) }
                samples.append(elapsedSeconds(since: start))
            }
            self.report("open channels=\(channels)", [("ms", milliseconds(median(samples)))])
        }
    }

    func gpadl() async throws {
        let sizes = self.skipLarge ? [1 << 20, 64 << 20] : [1 << 20, 64 << 20, 1 << 30]
        for size in sizes {
            let bus = try LoopbackBus(memorySize: size + (16 << 20))
            bus.host.register(SilentDevice(instance: 0))
            _ = try await bus.guest.connect()
            let relid = try requireRelid(bus)
            let pages = size / 4096
            // GPADLs over pages 1…N of guest memory, never touched: the cost is describing,
            // checking and mapping, not copying. One GPADL holds at most 8190 pages (a 16-bit
            // range_buflen), so larger buffers take several.
            let ranges = try stride(from: 1, through: pages, by: Gpadl.maximumPages).map { first in
                let count = min(Gpadl.maximumPages, pages + 1 - first)
                return try GpaRange(
                    byteCount: UInt32(count * 4096), byteOffset: 0, pfns: (0..<UInt64(count)).map { UInt64(first) + $0 })
            }
            var create: [Double] = []
            var teardown: [Double] = []
            let before = bus.messageCounts.toHost
            for _ in 0..<self.runs {
                var start = ContinuousClock.now
                var handles: [UInt32] = []
                for range in ranges { handles.append(try await bus.guest.createGpadl(channel: relid, ranges: [range])) }
                create.append(elapsedSeconds(since: start))
                start = ContinuousClock.now
                for handle in handles { try await bus.guest.teardownGpadl(handle) }
                teardown.append(elapsedSeconds(since: start))
            }
            let messages = (bus.messageCounts.toHost - before) / self.runs - ranges.count
            self.report("gpadl \(size >> 20) MiB", [
                ("create_ms", milliseconds(median(create))), ("teardown_ms", milliseconds(median(teardown))),
                ("gpadls", "\(ranges.count)"), ("messages", "\(messages)"),
            ])
        }
    }

    func echo() async throws {
        let bus = try LoopbackBus()
        let device = EchoDevice(instance: GUID(data1: 1, data2: 0, data3: 0, data4: 0))
        bus.host.register(device)
        let client = EchoClient(pages: .standard)
        bus.guest.register(client)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        var samples = try await echoLatency(client, rounds: self.rounds)
        samples.sort()
        self.report("echo round trip 64 B", [
            ("p50_us", micro(samples[samples.count / 2])), ("p99_us", micro(samples[samples.count * 99 / 100])),
        ])
    }

    func stream() async throws {
        // Stream: the guest writes in-band packets (no completion asked), the device echoes
        // each as an in-band packet, a guest reader counts them.
        let stream = try LoopbackBus()
        stream.host.register(EchoDevice(instance: GUID(data1: 2, data2: 0, data3: 0, data4: 0)))
        _ = try await stream.guest.connect()
        let relid = try requireRelid(stream)
        let channel = try await stream.guest.open(relid, pages: RingPages(each: 64))
        for size in [64, 1024] {
            let count = size == 64 ? self.packets : self.packets / 4
            let bytes = [UInt8](repeating: 1, count: size)
            var rates: [Double] = []
            for _ in 0..<self.runs {
                let start = ContinuousClock.now
                let reader = Task {
                    var seen = 0
                    let reader = try channel.reader()
                    while seen < count, await reader.next() != nil { seen += 1 }
                    return seen
                }
                try await sendStream(channel, bytes, count: count)
                let seen = try await reader.value
                rates.append(Double(seen) / elapsedSeconds(since: start))
            }
            let rate = median(rates)
            self.report("echo stream \(size) B", [
                ("packets", "\(count)"), ("kpkt_per_s", String(Int(rate / 1000))),
                ("MB_per_s", String(Int(rate * Double(size) / 1e6))),
            ])
        }
    }
}

/// Writes `count` in-band packets in batches of up to 32 (one publication and at most one
/// signal each), waiting for room only when a batch could not write anything.
func sendStream(_ channel: Channel, _ bytes: [UInt8], count: Int) async throws {
    var sent = 0
    while sent < count {
        let target = min(32, count - sent)
        let written = try channel.sendBatch { writer throws(ChannelError) in
            while writer.count < target, try writer.write(inBand: bytes[...]) {}
        }
        sent += written
        if written == 0 {
            try await channel.send(inBand: bytes[...])
            sent += 1
        }
    }
}

/// A device that offers itself and does nothing with its channels.
final class SilentDevice: HostDevice {
    let offer: HostOffer
    init(instance n: Int) {
        self.offer = HostOffer(
            interfaceType: GUID("3a1d1a0e-7c3b-4e5f-9a61-5f0c1d2e3f40") ?? .zero,
            interfaceInstance: GUID(data1: UInt32(n), data2: 0, data3: 0, data4: 0))
    }
    func opened(_ channel: Channel, info: HostChannelInfo) {}
}

struct NoDevice: Error, CustomStringConvertible {
    var description: String { "the bus offered no device" }
}

/// The first offered relid.
func requireRelid(_ bus: LoopbackBus) throws -> UInt32 {
    guard let relid = bus.guest.devices.first?.relid else { throw NoDevice() }
    return relid
}

func elapsedSeconds(since start: ContinuousClock.Instant) -> Double {
    seconds(ContinuousClock.now - start)
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func milliseconds(_ seconds: Double) -> String { String(Double(Int(seconds * 1e5)) / 100) }
func micro(_ seconds: Double) -> String { String(Double(Int(seconds * 1e8)) / 100) }
