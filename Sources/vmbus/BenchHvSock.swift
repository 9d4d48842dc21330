import ArgumentParser
import Foundation
import Logging
import VMBusDevices
import VMBusGuest
import VMBusLocal
import VMBusMemory
import VMBusWire

/// `vmbus bench hvsock`: one Hyper-V socket between two processes against a Unix stream socket.
struct BenchHvSock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hvsock",
        abstract: "Throughput and round-trip latency of one hvsock connection between two processes, against a Unix stream socket and TCP over loopback.",
        discussion: """
            Starts 'vmbus host --device hvsock' as a child process and connects as the guest: \
            --bytes through the discard service (port 9) in 64 KiB writes, and 64-byte round \
            trips through the echo service (port 7). The baselines run the same between this \
            process and a child over a Unix SOCK_STREAM pair and over TCP on 127.0.0.1.
            """
    )

    @Option(name: .long, help: "Bytes for the throughput figures (K, M, G allowed).", transform: parseSize)
    var bytes: Int = 512 << 20

    @Option(name: .long, help: "Round trips for the latency figures.")
    var rounds: Int = 10000

    @Option(name: .long, help: "Use this running 'vmbus host --device hvsock' instead of starting one (and skip the baseline).")
    var host: String?

    func run() async throws {
        let path = self.host ?? FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-bench-hvsock-\(getpid()).sock").path
        let child = self.host == nil ? try spawnHost(path, devices: ["hvsock"]) : nil
        defer { if let child { stopHost(child, socket: path) } }
        var quiet = Logger(label: "vmbus.bench")
        quiet.logLevel = .error
        let guest = try LocalGuest.connect(path: path, memoryBytes: 64 << 20, logger: quiet)
        let sockets = HvSocketGuest(bus: guest.bus, ringPages: 64)
        guest.bus.register(sockets)
        _ = try await guest.bus.connect()

        // This side's loops run on the guest's event loop, which takes the host's doorbells
        // (`Channel.taskExecutor`), as the host's services run on its own.
        let echo = try await sockets.connect(port: HvSocketServices.echoPort)
        let samples = try await withTaskExecutorPreference(echo.channel.taskExecutor) {
            try await Self.echoSamples(echo, rounds: self.rounds)
        }
        await echo.close()
        print(pad("hvsock echo 64 B", 36) + "p50_us \(micro(samples[samples.count / 2]))  p99_us \(micro(samples[samples.count * 99 / 100]))")
        let sink = try await sockets.connect(port: HvSocketServices.discardPort)
        let (sent, elapsed) = try await withTaskExecutorPreference(sink.channel.taskExecutor) {
            try await Self.discard(sink, bytes: self.bytes)
        }
        await sink.close()
        print(pad("hvsock one-way, 64 KiB writes", 36) + "MB_per_s \(Int(Double(sent) / elapsed / 1e6))")

        guest.disconnect()
        _ = await guest.ended()
        if child != nil { try self.socketBaselines() }
    }

    /// 64-byte round trips through the echo service, 500 unrecorded first; sorted seconds.
    static func echoSamples(_ echo: HvSocketStream, rounds: Int) async throws -> [Double] {
        let message = [UInt8](repeating: 0x5A, count: 64)
        var samples: [Double] = []
        samples.reserveCapacity(rounds)
        for round in 0..<(rounds + 500) {
            let start = ContinuousClock.now
            try await echo.write(message)
            var got = 0
            while got < 64 { got += try await echo.read(maximum: 64 - got).count }
            if round >= 500 { samples.append(elapsedSeconds(since: start)) }
        }
        return samples.sorted()
    }

    /// `bytes` in 64 KiB writes to the discard service, timed until it answers its count.
    static func discard(_ sink: HvSocketStream, bytes: Int) async throws -> (sent: Int, seconds: Double) {
        let chunk = [UInt8](repeating: 0xA5, count: 64 << 10)
        let start = ContinuousClock.now
        var sent = 0
        while sent < bytes {
            try await sink.write(chunk)
            sent += chunk.count
        }
        try await sink.shutdownWrite()
        let count = try await sink.readAll()
        guard count.count == 8 else { throw CLIError("the discard service did not answer its count") }
        return (sent, elapsedSeconds(since: start))
    }

    /// The same over a Unix SOCK_STREAM pair and over TCP on loopback, with a child
    /// `vmbus bench socket-peer` (64 KiB writes).
    func socketBaselines() throws {
        for (kind, name) in [("stream", "unix stream"), ("tcp", "tcp loopback")] {
            var peer = try SocketPeer(kind: kind)
            defer { peer.finish() }
            let count = max(1, self.bytes / (64 << 10))
            let seconds = try peer.oneWay(size: 64 << 10, count: count)
            print(pad("\(name) one-way, 64 KiB writes", 36) + "MB_per_s \(Int(Double(count << 16) / seconds / 1e6))")
            let samples = try peer.pingPong(rounds: self.rounds, warmUp: 500).sorted()
            print(pad("\(name) echo 64 B", 36) + "p50_us \(micro(samples[samples.count / 2]))  p99_us \(micro(samples[samples.count * 99 / 100]))")
        }
    }
}
