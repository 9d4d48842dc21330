import Foundation
import Testing

/// `Scripts/net-namespaces.sh`, the scaffolding of the network tests and benchmarks.
let netNamespacesScript = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Scripts/net-namespaces.sh")

/// Runs the namespace script with `arguments` to its end.
func netNamespaces(_ arguments: [String]) async throws -> (status: Int32, output: String, errors: String) {
    try await Spawned(arguments, executable: netNamespacesScript).finish()
}

/// A namespace pair for one test: unique to this process and call, removed by ``remove()``.
struct NamespacePair {
    let prefix = "vmbt-\(getpid())-\(UInt16.random(in: 0...UInt16.max))"

    /// Skips the calling test, with the script's reasons, where namespaces, TAPs or the tools
    /// are unavailable.
    static func requireAvailable() async throws {
        let (status, output, _) = try await netNamespaces(["check", "--tools"])
        if status != 0 { try Test.cancel(Comment(rawValue: "network namespaces \(output.trimmingCharacters(in: .whitespacesAndNewlines))")) }
    }

    /// Blocking, for `defer`: deletes both namespaces and what runs in them.
    func remove() {
        _ = try? Spawned(["down", self.prefix], executable: netNamespacesScript).finishBlocking()
    }

    /// Starts `command` inside side `a` or `b`.
    func spawn(_ side: String, _ command: [String]) throws -> Spawned {
        try Spawned(["exec", self.prefix, side] + command, executable: netNamespacesScript)
    }
}

/// Real traffic with the real tools between two namespaces joined by veth: proves the
/// scaffolding the VMBus NIC test reuses (with a TAP on each side instead of the veth).
@Suite struct NetNamespaceTests {
    @Test func pingAndIperf3CrossAVethPairBetweenTwoNamespaces() async throws {
        try await NamespacePair.requireAvailable()
        let pair = NamespacePair()
        defer { pair.remove() }
        for step in [["up", pair.prefix], ["veth", pair.prefix]] {
            let (status, _, errors) = try await netNamespaces(step)
            try #require(status == 0, "\(step): \(errors)")
        }

        let ping = try await pair.spawn("a", ["ping", "-n", "-c", "3", "-i", "0.2", "-W", "5", "10.200.0.2"]).finish()
        #expect(ping.status == 0, "\(ping.output)\(ping.errors)")
        #expect(ping.output.contains("3 packets transmitted, 3 received"))

        // The server's listening line is the signal to start the client; -1: it ends after one.
        let server = try pair.spawn("b", ["iperf3", "-s", "-1", "-B", "10.200.0.2", "--forceflush"])
        var line: String?
        repeat { line = await server.line() } while line.map { !$0.contains("Server listening") } ?? false
        if line == nil {
            Issue.record("the iperf3 server ended without listening: \(await server.finish().errors)")
            return
        }
        let client = try await pair.spawn("a", ["iperf3", "-c", "10.200.0.2", "-t", "1", "-f", "m"]).finish()
        #expect(client.status == 0, "\(client.output)\(client.errors)")
        // "[  5]   0.00-1.00   sec   1.2 MBytes  9876 Mbits/sec   receiver": more than nothing.
        let receiver = client.output.split(separator: "\n").last { $0.hasSuffix("receiver") }
        let fields = receiver?.split(separator: " ") ?? []
        let rate = fields.firstIndex(of: "Mbits/sec").flatMap { $0 > 0 ? Double(fields[$0 - 1]) : nil }
        #expect((rate ?? 0) > 0, "\(client.output)")
        #expect(await server.finish().status == 0)
    }

    @Test func theScriptRefusesPrefixesThatCouldNameSomethingElse() async throws {
        let (status, _, errors) = try await netNamespaces(["down", "../x y"])
        #expect(status != 0 && errors.contains("invalid PREFIX"))
    }
}
