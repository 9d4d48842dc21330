import Foundation
import Testing
import VMBusCapture

/// SIGTERM on `vmbus host`, `vmbus guest` and `vmbus fcopy-daemon`: the one shutdown
/// (docs/OPERATIONS.md) runs each command's stop steps in their order and exits 0.
@Suite(.serialized) struct ShutdownProcessTests {
    /// The `shutdown: …` lines of a command's standard error, without the log prefix.
    static func steps(_ errors: String) -> [String] {
        errors.split(separator: "\n").compactMap { line in
            guard let range = line.range(of: "[vmbus] shutdown: ") else { return nil }
            return String(line[range.upperBound...])
        }
    }

    static func workDirectory() throws -> String {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-shutdown-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        return work
    }

    @Test func theHostStopsInOrderAndItsGuestSeesItGo() async throws {
        let work = try Self.workDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let path = work + "/bus.sock"
        let capture = work + "/host.pcapng"
        let host = try Spawned(["host", "--listen", path, "--device", "echo", "--log-level", "info", "--capture", capture])
        #expect(await host.line() == "vmbus host: admin socket \(path).admin")
        #expect(await host.line() == "vmbus host: listening on \(path)")
        let guest = try Spawned(["guest", "--connect", path, "--memory", "32M"])
        #expect(await guest.line()?.hasPrefix("guest: connected at VMBus") == true)

        host.kill(SIGTERM)
        let end = await host.finish()
        #expect(end.status == 0, "\(end.errors)")
        #expect(Self.steps(end.errors) == [
            "SIGINT or SIGTERM",
            "stop the metrics endpoint",
            "stop the vsock relay and the uio export",
            "stop the admin socket and remove it",
            "stop accepting guests, say goodbye to each (its channels closed) and remove the socket",
            "flush the disks",
            "finish the capture file",
            "done",
        ], "\(end.errors)")
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(!FileManager.default.fileExists(atPath: path + ".admin"))
        // Complete: the statistics block is written when the file is closed, after the goodbye.
        let file = try CaptureFile(path: capture)
        #expect(file.statistics[1] == CaptureFile.Statistics(received: UInt64(file.records.count), dropped: 0))
        // The guest was told, not left to find a dead socket.
        let guestEnd = await guest.finish()
        #expect(guestEnd.status == 1)
        #expect(guestEnd.errors.contains("the host ended the connection: normal shutdown"), "\(guestEnd.errors)")
    }

    @Test func theGuestLeavesTheBusThenStopsItsServicesAndTheHostServesOn() async throws {
        let work = try Self.workDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let path = work + "/bus.sock"
        let capture = work + "/guest.pcapng"
        let relay = work + "/relay"
        try FileManager.default.createDirectory(atPath: relay, withIntermediateDirectories: true)
        let host = try Spawned(["host", "--listen", path, "--device", "echo", "--device", "hvsock", "--log-level", "warning"])
        defer {
            host.kill(SIGTERM)
            _ = host.finishBlocking()
        }
        #expect(await host.line() == "vmbus host: admin socket \(path).admin")
        #expect(await host.line() == "vmbus host: listening on \(path)")
        let guest = try Spawned([
            "guest", "--connect", path, "--memory", "32M", "--traffic", "--log-level", "info", "--capture", capture,
            "--vsock-relay", relay,
        ])
        #expect(await guest.line()?.hasPrefix("guest: connected at VMBus") == true)
        #expect(await guest.line() == "guest: vsock relay \(relay)/vsock")

        guest.kill(SIGTERM)
        let end = await guest.finish()
        // Exit 0: the echoes that failed as the channels closed are not failures.
        #expect(end.status == 0, "\(end.errors)")
        #expect(Self.steps(end.errors) == [
            "SIGINT or SIGTERM",
            "leave the bus (the host closes this guest's channels)",
            "stop the NBD server and remove its socket",
            "stop the vsock relay and the forwarders",
            "finish the capture file",
            "done",
        ], "\(end.errors)")
        #expect(!FileManager.default.fileExists(atPath: relay + "/vsock"))
        let file = try CaptureFile(path: capture)
        #expect(file.statistics[1] == CaptureFile.Statistics(received: UInt64(file.records.count), dropped: 0))
        // The host released that guest and takes the next one.
        let next = try await Spawned(["guest", "--connect", path, "--list", "--memory", "32M"]).finish()
        #expect(next.status == 0, "\(next.errors)")
    }

    @Test func theFcopyDaemonClosesItsChannelAndExitsZero() async throws {
        let work = try Self.workDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let directory = work + "/export"
        let socket = work + "/bus.sock"
        let host = try Spawned(["host", "--listen", socket, "--device", "echo", "--uio-export", directory, "--log-level", "warning"])
        defer {
            host.kill(SIGTERM)
            _ = host.finishBlocking()
        }
        #expect(await host.line() == "vmbus host: admin socket \(socket).admin")
        #expect(await host.line() == "vmbus host: uio export \(directory)/sys")
        #expect(await host.line() == "vmbus host: listening on \(socket)")
        let daemon = try Spawned(["fcopy-daemon", "--sysfs", directory + "/sys", "--root", work])
        #expect(await daemon.errorLine()?.contains("serving file copy on \(directory)/dev/uio0") == true)

        daemon.kill(SIGTERM)
        let end = await daemon.finish()
        #expect(end.status == 0, "\(end.errors)")
        #expect(Self.steps(end.errors) == [
            "SIGINT or SIGTERM",
            "close the channel and the uio notifier",
            "close the channel and the uio notifier, if the host ended them",
            "done",
        ], "\(end.errors)")
        #expect(end.errors.contains("[vmbus] stopped; "), "\(end.errors)")
        // The export serves the next daemon: this one let go of the node.
        let next = try Spawned(["fcopy-daemon", "--sysfs", directory + "/sys", "--root", work])
        #expect(await next.errorLine()?.contains("serving file copy on \(directory)/dev/uio0") == true)
        next.kill(SIGTERM)
        #expect(await next.finish().status == 0)
    }
}
