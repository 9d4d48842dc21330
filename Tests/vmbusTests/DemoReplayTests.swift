import Foundation
import Testing

/// `vmbus capture replay`: the demo's capture — four guests, a NIC pair on a switch, a disk,
/// hvsock, the integration services driven through the admin socket, and the host replaced
/// in the middle — played again as the guests against a fresh host started as the demo's
/// was, gets every answer the demo's guests got.
@Suite(.serialized) struct DemoReplayTests {
    @Test func theDemosCaptureReplaysAgainstALikeHost() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-replay-demo-\(UInt32.random(in: 0...UInt32.max)).pcapng").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        // Whole hvsock packets (16 KiB): a replay sends what the guest sent, so nothing it sent may be cut.
        // A capture that lost records (its writer fell behind with the whole suite on two
        // cores, and the demo says so) cannot replay exactly: it is made again, up to three times.
        var (status, output) = (Int32(-1), "")
        for _ in 0..<3 {
            (status, output) = try await runVMBus(["demo", "--seconds", "1", "--capture", file, "--snaplen", "65536"], errors: false)
            if !output.contains("record(s) lost") { break }
        }
        #expect(status == 0, "\(output)")
        try #require(!output.contains("record(s) lost"), "three captures in a row lost records: \(output)")
        // The demo says how to start a like host.
        let hint = try #require(output.split(separator: "\n").first { $0.hasPrefix("capture: to replay it") })
        let hostArguments = try #require(hint.split(separator: "'").dropFirst().first).split(separator: " ").dropFirst(4).map(String.init)
        #expect(hostArguments.contains("--net") && hostArguments.contains("--disk"), "\(hint)")

        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-replay-\(UInt32.random(in: 0...UInt32.max)).sock").path
        let host = try Spawned(["host", "--listen", path, "--log-level", "warning"] + hostArguments)
        defer {
            host.kill(SIGTERM)
            _ = host.finishBlocking()
        }
        while let line = await host.line(), !line.hasPrefix("vmbus host: listening") {}

        let replay = try Spawned(["capture", "replay", file, "--connect", path, "--timeout", "30"])
        let (code, report, errors) = await replay.finish()
        #expect(code == 0, "\(report)\n\(errors)")
        #expect(report.contains("replay: 4 connection(s)") && report.contains("every answer as captured"), "\(report)")
        // Every connection compared answers and found no difference; the NIC guests' thousands of frames among them.
        let lines = report.split(separator: "\n").filter { $0.hasPrefix("connection ") }
        #expect(lines.count == 4 && lines.allSatisfy { $0.contains(", 0 difference(s)") }, "\(report)")
        // The one thing a replay cannot promise (docs/CAPTURE.md, limits): an operator's request
        // to a timer-driven service can meet the live host's own timer. A replay slower than the
        // capture (the whole suite on two cores) sees more periodic requests than it holds
        // answers for; the operator's may be the one left unanswered. Anything else is an error.
        let unexpected = errors.split(separator: "\n").filter {
            !$0.contains("operator request 'heartbeat'") && !$0.contains("operator request 'time'")
        }
        #expect(unexpected.isEmpty, "\(errors)")
    }
}
