import Foundation
import Testing
import VMBusMemory
@testable import vmbus

/// `vmbus host` and `vmbus ctl` as a user meets them: exit statuses and errors that tell the
/// truth, a socket path that is not silently taken over, monitored channels for outside guests.
@Suite(.serialized) struct HostCLIProcessTests {
    @Test func aFailedBackupExitsNonZero() async throws {
        let (host, path) = try await startHost("echo")
        let admin = path + ".admin"
        // The freeze hook fails, as a guest whose file systems cannot be frozen.
        let guest = try Spawned(["guest", "--connect", path, "--memory", "16M", "--pre-freeze", "exit 3"])
        #expect(await guest.line()?.hasPrefix("guest: connected") == true)
        var status = try await ctl(["status"], admin: admin)
        for _ in 0..<50 where !status.output.contains("vss: open, framework") { status = try await ctl(["status"], admin: admin) }
        let backup = try await ctl(["backup"], admin: admin)
        #expect(backup.status != 0, "\(backup)")
        #expect(backup.output.contains("freeze: failed"), "\(backup)")
        #expect(backup.errors.contains("backup failed at freeze; nothing was frozen"), "\(backup)")
        guest.kill(SIGTERM)
        _ = await guest.finish()
        host.kill(SIGTERM)
        #expect(await host.finish().status == 0)
    }

    @Test func aLiveSocketIsNotTakenOverButAStaleOneIsReplaced() async throws {
        let (host, path) = try await startHost("echo")
        // A second host on the same path: refused, and the first keeps its guests' socket.
        let second = try Spawned(["host", "--listen", path, "--log-level", "warning"])
        let refused = await second.finish()
        #expect(refused.status != 0 && refused.errors.contains("another process is listening on it"), "\(refused)")
        let status = try await ctl(["status"], admin: path + ".admin")
        #expect(status.status == 0 && status.output.contains("0 guest(s) connected"), "\(status)")
        host.kill(SIGTERM)
        #expect(await host.finish().status == 0)

        // A socket file nobody listens on (its host died): replaced.
        let stale = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-stale-\(UInt32.random(in: 0...UInt32.max)).sock").path
        do { _ = try LocalSocket.listen(path: stale) }  // closed at once, the file stays
        #expect(FileManager.default.fileExists(atPath: stale))
        let third = try Spawned(["host", "--listen", stale, "--log-level", "warning"])
        #expect(await third.line() == "vmbus host: admin socket \(stale).admin")
        #expect(await third.line() == "vmbus host: listening on \(stale)")
        third.kill(SIGTERM)
        #expect(await third.finish().status == 0)

        // A path that is not a socket is never deleted.
        let file = stale + ".txt"
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let fourth = try Spawned(["host", "--listen", file, "--log-level", "warning"])
        let notSocket = await fourth.finish()
        #expect(notSocket.status != 0 && notSocket.errors.contains("not a socket"), "\(notSocket)")
        #expect(FileManager.default.contents(atPath: file) == Data("keep me".utf8))
    }

    @Test func monitoredChannelsForAnOutsideGuest() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-mnf-\(UInt32.random(in: 0...UInt32.max)).sock").path
        let host = try Spawned(["host", "--listen", path, "--device", "echo:2", "--monitor", "--log-level", "warning"])
        #expect(await host.line() == "vmbus host: admin socket \(path).admin")
        #expect(await host.line() == "vmbus host: listening on \(path)")
        let list = try await Spawned(["guest", "--connect", path, "--memory", "16M", "--monitor", "--list", "--json"]).finish()
        #expect(list.status == 0, "\(list)")
        let rows = try JSONSerialization.jsonObject(with: Data(list.output.utf8)) as? [[String: Any]] ?? []
        let monitorIDs = rows.compactMap { $0["monitor_id"] as? Int }
        #expect(monitorIDs.count == 2 && Set(monitorIDs).count == 2, "both echo devices have monitor ids: \(list.output)")
        // Echo traffic with the guest signalling through the monitor page.
        let echo = try await Spawned(["guest", "--connect", path, "--memory", "16M", "--monitor", "--echo-rounds", "200"]).finish()
        #expect(echo.status == 0, "\(echo)")
        host.kill(SIGTERM)
        #expect(await host.finish().status == 0)
    }
}
