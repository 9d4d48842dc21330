import Foundation
import Testing
import VMBusCapture
import VMBusWire

/// A host's own capture replays too: the operator's requests it got on its admin socket
/// (`vmbus ctl kvp`, `copy`) are in the file, with the copied file's bytes, and the replay
/// makes them again against a fresh host — after the source file is gone.
@Suite(.serialized) struct HostCaptureReplayTests {
    @Test func aHostsCaptureWithOperatorRequestsReplays() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-hostreplay-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let file = work + "/host.pcapng"
        let path = work + "/bus.sock"
        let host = try Spawned([
            "host", "--listen", path, "--device", "echo", "--device", "ic", "--log-level", "warning", "--capture", file, "--snaplen", "65536",
        ])
        while let line = await host.line(), !line.hasPrefix("vmbus host: listening") {}
        let guest = try Spawned(["guest", "--connect", path, "--memory", "32M", "--kvp-dir", work + "/kvp", "--fcopy-root", work + "/root"])
        #expect(await guest.line()?.hasPrefix("guest: connected") == true)
        let admin = path + ".admin"
        var status = try await ctl(["status"], admin: admin)
        for _ in 0..<50 where !status.output.contains("vss: open") { status = try await ctl(["status"], admin: admin) }
        #expect(try await ctl(["kvp", "set", "Replay", "once more"], admin: admin).status == 0)
        let source = work + "/source.txt"
        try Data("copied by an operator\n".utf8).write(to: URL(fileURLWithPath: source))
        #expect(try await ctl(["copy", source, "inbox/copied.txt", "--create-path"], admin: admin).status == 0)
        #expect(try await ctl(["kvp", "get", "Replay"], admin: admin).output == "once more\n")
        guest.kill(SIGTERM)
        #expect(await guest.finish().status == 0)
        host.kill(SIGTERM)
        #expect(await host.finish().status == 0)
        try FileManager.default.removeItem(atPath: source)

        // The three requests are in the file, the copy's with the file's bytes.
        let capture = try CaptureFile(path: file)
        let requests = capture.records.filter { $0.header.kind == .operatorRequest }.compactMap { try? OperatorRequest(parsing: $0.data) }
        #expect(requests.map(\.command) == ["kvp", "copy", "kvp"], "\(requests)")
        #expect(requests.dropFirst().first?.attachment == Array("copied by an operator\n".utf8))

        let again = work + "/again.sock"
        let fresh = try Spawned(["host", "--listen", again, "--device", "echo", "--device", "ic", "--log-level", "warning"])
        defer {
            fresh.kill(SIGTERM)
            _ = fresh.finishBlocking()
        }
        while let line = await fresh.line(), !line.hasPrefix("vmbus host: listening") {}
        let replay = try Spawned(["capture", "replay", file, "--connect", again, "--timeout", "30"])
        let (code, report, errors) = await replay.finish()
        #expect(code == 0, "\(report)\n\(errors)")
        #expect(report.contains("every answer as captured"), "\(report)")
        #expect(errors.isEmpty, "\(errors)")
    }
}
