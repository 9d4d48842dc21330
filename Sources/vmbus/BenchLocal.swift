import ArgumentParser
import Foundation
import Logging
import VMBusChannel
import VMBusDevices
import VMBusGuest
import VMBusLocal
import VMBusMemory
import VMBusWire

/// `vmbus bench local`: host and guest as two processes (spec 09) against Unix sockets
/// between the same two kinds of processes.
struct BenchLocal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "local",
        abstract: "Cross-process echo latency and one-way throughput on the local substrate, against Unix sockets.",
        discussion: """
            Starts 'vmbus host' as a child process and measures, from this guest process: echo \
            round-trip latency (p50/p99, 64 B; again with both ends answering from interrupt handlers) and one-way in-band throughput at 64 B and 16 KiB \
            with eventfd doorbells; then the same between this process and a child process over \
            a SOCK_SEQPACKET pair and a SOCK_STREAM pair; and the time from connect to all \
            channels open with 1 and 16 devices.
            """
    )

    @Option(name: .long, help: "Round trips for the latency figures.")
    var rounds: Int = 20000

    @Option(name: .long, help: "Bytes moved one way per 16 KiB throughput figure (1/16 of it at 64 B); K, M, G allowed.",
            transform: parseSize)
    var bytes: Int = 256 << 20

    @Flag(name: .long, help: "Print JSON lines.")
    var json = false

    @Option(name: .long, help: "The host process of the substrate echo and one-way rows captures the bus into this pcapng file (what capture costs; docs/CAPTURE.md).")
    var capture: String?

    @Option(name: .long, help: "With --capture: bytes of data kept per record.")
    var snaplen = 96

    func report(_ name: String, _ fields: [(String, String)]) {
        if self.json {
            print("{\"bench\": \"local\", \"case\": \"\(name)\"" + fields.map { ", \"\($0.0)\": \($0.1)" }.joined() + "}")
        } else {
            print(pad(name, 34) + fields.map { "\($0.0) \($0.1)" }.joined(separator: "  "))
        }
    }

    func validate() throws {
        guard self.rounds >= 100, self.bytes >= 1 << 20 else { throw ValidationError("--rounds ≥ 100, --bytes ≥ 1M") }
    }

    func run() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-bench-\(getpid()).sock").path
        let capture = self.capture.map { ["--capture", URL(fileURLWithPath: $0).standardizedFileURL.path, "--snaplen", "\(self.snaplen)"] } ?? []
        let host = try spawnHost(path, devices: ["echo", "discard"], extra: capture)
        defer { stopHost(host, socket: path) }
        var quiet = Logger(label: "vmbus.bench")
        quiet.logLevel = .error
        let guest = try LocalGuest.connect(path: path, memoryBytes: 64 << 20, logger: quiet)
        let client = EchoClient()
        guest.bus.register(client)
        _ = try await guest.bus.connect()
        await guest.bus.settle()
        self.latency("substrate echo 64 B", try await echoLatency(client, rounds: self.rounds))
        self.latency("substrate echo 64 B, caller on the loop", try await echoLatency(client, rounds: self.rounds, onLoop: true))
        try await self.oneWay(guest, "substrate one-way", ChannelOptions())
        guest.disconnect()
        _ = await guest.ended()
        try await self.interruptDriven(path + ".isr", quiet)

        for kind in ["seqpacket", "stream"] { try self.socketBaseline(kind) }

        for devices in [1, 16] {
            let path2 = path + ".\(devices)"
            let host2 = try spawnHost(path2, devices: ["echo:\(devices)"])
            defer { stopHost(host2, socket: path2) }
            let start = ContinuousClock.now
            let guest2 = try LocalGuest.connect(path: path2, memoryBytes: 64 << 20, logger: quiet)
            let client2 = EchoClient()
            guest2.bus.register(client2)
            _ = try await guest2.bus.connect()
            await guest2.bus.settle()
            let elapsed = elapsedSeconds(since: start)
            guard client2.devices.count == devices else { throw CLIError("only \(client2.devices.count) channels opened") }
            self.report("connect → \(devices) channel(s) open", [("ms", milliseconds(elapsed))])
            guest2.disconnect()
            _ = await guest2.ended()
        }
    }

    /// The echo round trip with both ends answering from their channels' interrupt handlers
    /// (`vmbus host --echo-interrupts`, an interrupt-driven ``EchoClient``), first with the
    /// caller awaiting each answer, then with the round trips driven by the handler itself;
    /// and one-way throughput into a discard device that drops packets in place in its
    /// handler, from a writer that polls for room before it sleeps.
    func interruptDriven(_ path: String, _ logger: Logger) async throws {
        let host = try spawnHost(path, devices: ["echo", "discard"], extra: ["--echo-interrupts"])
        defer { stopHost(host, socket: path) }
        let guest = try LocalGuest.connect(path: path, memoryBytes: 64 << 20, logger: logger)
        let client = EchoClient(interruptDriven: true)
        guest.bus.register(client)
        _ = try await guest.bus.connect()
        await guest.bus.settle()
        self.latency("substrate echo 64 B, interrupt-driven", try await echoLatency(client, rounds: self.rounds))
        let payload = [UInt8](repeating: 0x5A, count: 64)
        _ = try await client.pingPong(rounds: 1000, payload: payload)
        self.latency("substrate echo 64 B, in the handlers", try await client.pingPong(rounds: self.rounds, payload: payload).map(seconds))
        try await self.oneWay(guest, "substrate one-way, sink in handler", ChannelOptions(pollMicroseconds: 50))
        guest.disconnect()
        _ = await guest.ended()
    }

    /// One-way throughput at 64 B and 16 KiB into the bus's discard device, timed until it
    /// answers a request sent after the last packet (it reads in order).
    func oneWay(_ guest: LocalGuest, _ label: String, _ options: ChannelOptions) async throws {
        guard let sink = guest.bus.devices.first(where: { $0.classID == Discard.classID }) else { throw NoDevice() }
        let channel = try await guest.bus.open(sink.relid, pages: RingPages(each: 64 + 1), options: options)
        let reader = Task { _ = try? await channel.receive { _ in } }
        for size in [64, 16 << 10] {
            let count = max(1, self.bytes / size / (size == 64 ? 16 : 1))
            let message = [UInt8](repeating: 1, count: size)
            let start = ContinuousClock.now
            try await sendStream(channel, message, count: count)
            _ = try await channel.request([][...])  // answered once everything before it was read
            self.throughput("\(label) \(size) B", count: count, size: size, seconds: elapsedSeconds(since: start))
        }
        channel.close(.closedLocally)
        await reader.value
    }

    func latency(_ name: String, _ values: [Double]) {
        let sorted = values.sorted()
        self.report(name, [("p50_us", micro(sorted[sorted.count / 2])), ("p99_us", micro(sorted[sorted.count * 99 / 100]))])
    }

    func throughput(_ name: String, count: Int, size: Int, seconds: Double) {
        self.report(name, [
            ("kpkt_per_s", String(Int(Double(count) / seconds / 1000))), ("MB_per_s", String(Int(Double(count * size) / seconds / 1e6))),
        ])
    }

    /// The same measurements over a socket pair with a child `vmbus bench socket-peer`.
    func socketBaseline(_ kind: String) throws {
        var peer = try SocketPeer(kind: kind)
        defer { peer.finish() }
        self.latency("\(kind) echo 64 B", try peer.pingPong(rounds: self.rounds, warmUp: 1000))
        // Throughput: one way, then a one-byte answer when everything arrived.
        for size in [64, 16 << 10] {
            let count = max(1, self.bytes / size / (size == 64 ? 16 : 1))
            self.throughput("\(kind) one-way \(size) B", count: count, size: size, seconds: try peer.oneWay(size: size, count: count))
        }
    }
}

/// `vmbus bench socket-peer`: the far end of the socket baselines (on standard input).
struct BenchSocketPeer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "socket-peer", abstract: "The child process of 'bench local''s socket baselines.", shouldDisplay: false)

    @Option(name: .long) var kind: String

    func run() throws {
        let fd: Int32 = 0
        let isStream = self.kind != "seqpacket"
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        // Message 1: echo 64 bytes back. Message 2 (first of a stream): total bytes in
        // bytes 1…8; read that many, answer one byte.
        while true {
            let first = try DescriptorIO.readSome(fd, into: &buffer, count: isStream ? 64 : buffer.count)
            if first == 0 { return }
            var got = first
            if isStream {
                // A stream has no boundaries: complete the first 64 bytes before deciding.
                if got < 64 {
                    var rest = [UInt8](repeating: 0, count: 64 - got)
                    guard try DescriptorIO.readFully(fd, into: &rest, count: rest.count) else { return }
                    buffer.replaceSubrange(got..<64, with: rest)
                    got = 64
                }
            }
            if buffer[0] == 0x01 {
                try DescriptorIO.writeAll(fd, buffer[0..<64])
                continue
            }
            var total: UInt64 = 0
            for i in 0..<8 { total |= UInt64(buffer[1 + i]) << (8 * UInt64(i)) }
            var received = UInt64(got)
            while received < total {
                let n = try DescriptorIO.readSome(fd, into: &buffer, count: buffer.count)
                if n == 0 { return }
                received += UInt64(n)
            }
            try DescriptorIO.writeAll(fd, [1])
        }
    }
}

/// Starts `vmbus host` on `path` and returns once it listens.
func spawnHost(_ path: String, devices: [String], logLevel: String = "error", extra: [String] = []) throws -> Process {
    let host = Process()
    host.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    host.arguments = ["host", "--listen", path, "--log-level", logLevel] + devices.flatMap { ["--device", $0] } + extra
    let output = Pipe()
    host.standardOutput = output
    try host.run()
    // The admin socket, the disks, the TAP…: "listening" comes last.
    var line = readLine(output.fileHandleForReading)
    while let seen = line, seen.hasPrefix("vmbus host: "), !seen.hasPrefix("vmbus host: listening") {
        line = readLine(output.fileHandleForReading)
    }
    guard line?.hasPrefix("vmbus host: listening") == true else {
        stopHost(host, socket: path)
        throw CLIError("the host process did not start")
    }
    return host
}
