import Foundation
import Testing

/// Real traffic through the synthetic NIC: `vmbus host --net tap:vmb0` in one network
/// namespace, `vmbus guest --net tap:vmb1` in another, and tools nobody here wrote — ping and
/// iperf3 — between them. Skipped, with the reason, where namespaces, TAP or the tools are
/// missing.
@Suite(.serialized) struct NetworkProcessTests {
    /// Waits for a line of `process` containing `text`; `nil` if its output ended first.
    static func waitFor(_ text: String, in process: Spawned) async -> String? {
        while let line = await process.line() {
            if line.contains(text) { return line }
        }
        return nil
    }

    /// Namespaces a and b up, a host in a serving a NIC on TAP vmb0 (10.201.0.1), a guest in
    /// b whose NIC is TAP vmb1 (10.201.0.2); `nil` (the reason recorded) if either does not
    /// come up.
    static func startNIC(_ pair: NamespacePair, extra: [String] = []) async throws -> (Spawned, Spawned, String)? {
        let (up, _, upErrors) = try await netNamespaces(["up", pair.prefix])
        try #require(up == 0, "\(upErrors)")
        let socket = FileManager.default.temporaryDirectory.appendingPathComponent("\(pair.prefix).sock").path
        let host = try pair.spawn("a", [vmbusBinary().path, "host", "--listen", socket, "--device", "ic", "--net", "tap:vmb0", "--log-level", "warning"] + extra)
        guard await Self.waitFor("listening on", in: host) != nil else {
            Issue.record("the host did not start: \(await host.finish().errors)")
            return nil
        }
        let guest = try pair.spawn("b", [vmbusBinary().path, "guest", "--connect", socket, "--memory", "64M", "--net", "tap:vmb1"] + extra)
        let upLine = await Self.waitFor("guest: network vmb1 up", in: guest)
        guard upLine != nil else {
            Issue.record("the guest's NIC did not come up: \(await guest.finish().errors)")
            return nil
        }
        #expect(upLine?.contains("NVSP 6.1") == true && upLine?.contains("MTU 1500") == true, "\(upLine ?? "")")
        for (side, address) in [("a", "10.201.0.1/24"), ("b", "10.201.0.2/24")] {
            let (status, _, errors) = try await netNamespaces(["address", pair.prefix, side, side == "a" ? "vmb0" : "vmb1", address])
            try #require(status == 0, "\(errors)")
        }
        return (host, guest, socket)
    }

    /// The "receiver" line's Mbit/s of an iperf3 client run.
    static func receiverRate(_ output: String) -> Double? {
        let receiver = output.split(separator: "\n").last { $0.hasSuffix("receiver") }
        let fields = receiver?.split(separator: " ") ?? []
        return fields.firstIndex(of: "Mbits/sec").flatMap { $0 > 0 ? Double(fields[$0 - 1]) : nil }
    }

    /// With offloads (the default: virtio-net headers on both TAPs, LSO out, RSC in) and
    /// without (`--no-net-offloads`: every frame complete and MTU-sized).
    @Test(arguments: [true, false])
    func pingAndIperf3CrossTheVMBusNIC(offloads: Bool) async throws {
        try await NamespacePair.requireAvailable()
        let pair = NamespacePair()
        defer { pair.remove() }
        guard let (host, guest, socket) = try await Self.startNIC(pair, extra: offloads ? [] : ["--no-net-offloads"]) else { return }

        // Every size up to the MTU, fragmentation forbidden: 1472 + 28 = 1500.
        for size in [56, 512, 1472] {
            let ping = try await pair.spawn("a", ["ping", "-n", "-c", "3", "-i", "0.2", "-W", "5", "-M", "do", "-s", "\(size)", "10.201.0.2"]).finish()
            #expect(ping.output.contains("3 packets transmitted, 3 received"), "size \(size): \(ping.output)\(ping.errors)")
        }
        // One byte more does not fit the MTU.
        let tooBig = try await pair.spawn("a", ["ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", "1473", "10.201.0.2"]).finish()
        #expect(tooBig.status != 0)
        let flood = try await pair.spawn("a", ["ping", "-n", "-f", "-c", "500", "-W", "5", "10.201.0.2"]).finish()
        #expect(flood.output.contains("500 packets transmitted, 500 received, 0% packet loss"), "\(flood.output)\(flood.errors)")

        // iperf3 in b; each client run ends the server run, the next starts it again.
        for arguments in [["-t", "2"], ["-t", "2", "-R"], ["-t", "2", "-P", "4"], ["-t", "2", "-u", "-b", "20M"]] {
            let server = try pair.spawn("b", ["iperf3", "-s", "-1", "-B", "10.201.0.2", "--forceflush"])
            guard await Self.waitFor("Server listening", in: server) != nil else {
                Issue.record("iperf3 server: \(await server.finish().errors)")
                return
            }
            let client = try await pair.spawn("a", ["iperf3", "-c", "10.201.0.2", "-f", "m"] + arguments).finish()
            #expect(client.status == 0, "\(arguments): \(client.output)\(client.errors)")
            #expect((Self.receiverRate(client.output) ?? 0) > 0, "\(arguments): \(client.output)")
            if arguments.contains("-u") {
                // "… 0.123/4567 (0.0027%)  receiver": the loss is measured and reported.
                let receiver = client.output.split(separator: "\n").last { $0.hasSuffix("receiver") } ?? ""
                #expect(receiver.contains("%"), "\(client.output)")
            }
            _ = await server.finish()
        }

        let stat = try await Spawned(["net", "stat", "--host", socket + ".admin"]).finish()
        #expect(stat.status == 0 && stat.output.contains("queue 0: rx_packets") && stat.output.contains("malformed 0"), "\(stat)")
        // The TCP runs crossed as large segments both ways exactly when offloads are on.
        func counter(_ name: String) -> Int? {
            let fields = stat.output.split(whereSeparator: { $0 == " " || $0 == "\n" })
            return fields.firstIndex(of: Substring(name)).flatMap { Int(fields[$0 + 1]) }
        }
        #expect(stat.output.contains(offloads ? "offloads checksum lso rsc" : "offloads none"), "\(stat.output)")
        #expect(offloads ? (counter("tx_large") ?? 0) > 0 : counter("tx_large") == 0, "\(stat.output)")
        #expect(offloads ? (counter("rx_coalesced") ?? 0) > 0 : counter("rx_coalesced") == 0, "\(stat.output)")
        guest.kill(SIGTERM)
        #expect(await guest.finish().status == 0)
        host.kill(SIGTERM)
        #expect(await host.finish().status == 0)
    }

    /// `vmbus ctl service` replaces the host while iperf3 runs TCP through the NIC (and a ping
    /// flood runs beside it): the new host takes over the TAP device and the NIC's state, the
    /// TCP stream carries on to its end, and the successor's NIC counters show it carried
    /// traffic.
    @Test func theHostIsReplacedWhileIperf3Runs() async throws {
        try await NamespacePair.requireAvailable()
        let pair = NamespacePair()
        defer { pair.remove() }
        guard let (host, guest, socket) = try await Self.startNIC(pair) else { return }
        let server = try pair.spawn("b", ["iperf3", "-s", "-1", "-B", "10.201.0.2", "--forceflush"])
        guard await Self.waitFor("Server listening", in: server) != nil else {
            Issue.record("iperf3 server: \(await server.finish().errors)")
            return
        }
        let client = try pair.spawn("a", ["iperf3", "-c", "10.201.0.2", "-f", "m", "-t", "5", "-i", "1", "--forceflush"])
        // The first interval's report: TCP is flowing.
        #expect(await Self.waitFor(" sec ", in: client) != nil)
        let service = try await ctl(["service"], admin: socket + ".admin")
        #expect(service.status == 0 && service.output.contains("taken over by the new host"), "\(service.output)\(service.errors)")
        #expect(client.process.isRunning, "the takeover landed after iperf3 had finished: it proves nothing")
        let report = await Self.waitFor("took over", in: host) ?? ""
        let current = Int32(report.split(separator: " ").dropFirst(3).first ?? "") ?? 0
        let ping = try await pair.spawn("a", ["ping", "-n", "-c", "20", "-i", "0.05", "-W", "5", "10.201.0.2"]).finish()
        #expect(ping.output.contains("20 packets transmitted, 20 received"), "\(ping.output)\(ping.errors)")
        let finished = await client.finish()
        #expect(finished.status == 0, "\(finished.output)\(finished.errors)")
        #expect((Self.receiverRate(finished.output) ?? 0) > 0, "\(finished.output)")
        _ = await server.finish()

        let stat = try await Spawned(["net", "stat", "--host", socket + ".admin"]).finish()
        #expect(stat.status == 0 && stat.output.contains("malformed 0"), "\(stat.output)")
        let fields = stat.output.split(whereSeparator: { $0 == " " || $0 == "\n" })
        let received = fields.firstIndex(of: "rx_packets").flatMap { Int(fields[$0 + 1]) } ?? 0
        #expect(received > 0, "the new host's NIC carried the rest of the stream: \(stat.output)")
        guest.kill(SIGTERM)
        #expect(await guest.finish().status == 0)
        #expect(current > 0, "\(report)")
        kill(current, SIGTERM)
        #expect(await host.finish().status == 0)
    }
}
