import Foundation
import Testing
import VMBusMemory

/// Hibernation and host takeover from the shell, as docs/SERVICING.md shows them.
@Suite(.serialized) struct ServicingProcessTests {
    init() throws {
        try #require(FileManager.default.isExecutableFile(atPath: vmbusBinary().path), "vmbus binary not built")
    }

    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-\(name)-\(UInt32.random(in: 0...UInt32.max))").path
    }

    @Test func aGuestHibernatesOnSIGUSR1AndResumesFromTheFile() async throws {
        let (host, path) = try await startHost()
        let file = Self.temporaryPath("hibernate")
        defer { try? FileManager.default.removeItem(atPath: file) }
        let guest = try Spawned(["guest", "--connect", path, "--memory", "32M", "--hibernate-to", file])
        #expect(await guest.line()?.hasPrefix("guest: connected") == true)
        guest.kill(SIGUSR1)
        let (status, output, errors) = await guest.finish()
        #expect(status == 0, "\(errors)")
        // Two echo devices and the six integration services.
        #expect(output.contains("guest: hibernated to \(file): VMBus 6.0, 8 device(s) to resume ("), "\(output)")
        let size = try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int
        #expect((size ?? 0) > 32 << 20, "the file holds all of guest memory")

        let resumed = try Spawned(["guest", "--connect", path, "--resume", file, "--echo-rounds", "20"])
        let back = await resumed.finish()
        #expect(back.status == 0, "\(back.errors)")
        #expect(back.output.contains("guest: resumed from \(file): 8 device(s) back with their drivers"), "\(back.output)")
        #expect(back.output.split(separator: "\n").filter { $0.hasSuffix("20 round trips byte-exact") }.count == 2)

        // A file that is not a hibernation is refused with the reason.
        let bogus = Self.temporaryPath("bogus")
        #expect(FileManager.default.createFile(atPath: bogus, contents: Data("not a state".utf8)))
        defer { try? FileManager.default.removeItem(atPath: bogus) }
        let refused = try Spawned(["guest", "--connect", path, "--resume", bogus, "--echo-rounds", "1"])
        let failure = await refused.finish()
        #expect(failure.status == 1)
        #expect(failure.errors.contains("cannot resume from \(bogus)") && failure.errors.contains("cut short"), "\(failure.errors)")
        host.kill(SIGTERM)
        #expect(await host.finish().status == 0)
    }

    /// A guest serving a port through its vsock relay hibernates and resumes: the program
    /// listening behind the relay carries on, and the host reaches it again afterwards; the
    /// integration services answer the resumed guest.
    @Test func aGuestsHvsockListenerAnswersAgainAfterResume() async throws {
        let directory = Self.temporaryPath("hibernate-hvsock")
        try FileManager.default.createDirectory(atPath: directory + "/guest", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let socket = directory + "/bus.sock"
        let host = try Spawned(["host", "--listen", socket, "--device", "ic", "--vsock-relay", directory + "/host", "--log-level", "warning"])
        #expect(await host.line()?.hasPrefix("vmbus host: admin socket") == true)
        #expect(await host.line() == "vmbus host: vsock relay \(directory)/host/vsock")
        #expect(await host.line() == "vmbus host: listening on \(socket)")
        // The guest's program: an echo server behind the relay, for a connection before the
        // hibernation and one after.
        try echoServer(at: directory + "/guest/vsock_5000", connections: 2)
        let file = directory + "/guest.hib"
        let guest = try Spawned(["guest", "--connect", socket, "--memory", "32M", "--vsock-relay", directory + "/guest", "--hibernate-to", file])
        #expect(await NetworkProcessTests.waitFor("guest: vsock relay", in: guest) != nil)
        let before = try await relayConnect(directory + "/host", port: 5000)
        #expect(before.1.hasPrefix("OK"), "\(before.1)")
        #expect(try await roundTrip(before.0, Array("before".utf8)) == Array("before".utf8))

        guest.kill(SIGUSR1)
        let hibernated = await guest.finish()
        #expect(hibernated.status == 0 && hibernated.output.contains("guest: hibernated to \(file)"), "\(hibernated.output)\(hibernated.errors)")
        let resumed = try Spawned(["guest", "--connect", socket, "--resume", file, "--vsock-relay", directory + "/guest"])
        #expect(await NetworkProcessTests.waitFor("guest: resumed from \(file)", in: resumed) != nil)
        #expect(await NetworkProcessTests.waitFor("guest: vsock relay", in: resumed) != nil)
        let after = try await relayConnect(directory + "/host", port: 5000)
        #expect(after.1.hasPrefix("OK"), "\(after.1)")
        let data = pseudoRandom(300_000, seed: 9)
        #expect(try await roundTrip(after.0, data) == data)
        let heartbeat = try await ctl(["heartbeat"], admin: socket + ".admin")
        #expect(heartbeat.status == 0, "\(heartbeat.errors)")
        resumed.kill(SIGTERM)
        #expect(await resumed.finish().status == 0)
        host.kill(SIGTERM)
        #expect(await host.finish().status == 0)
    }
}

/// `vmbus ctl service` and `vmbus host --takeover` under traffic.
@Suite(.serialized) struct TakeoverProcessTests {
    init() throws {
        try #require(FileManager.default.isExecutableFile(atPath: vmbusBinary().path), "vmbus binary not built")
    }

    /// Three takeovers in a row while a guest runs echo traffic that it checks byte for byte
    /// (a wrong or failed answer makes it exit 1 when stopped; a host that goes makes it exit 1
    /// at once): the guest never notices, and the last host serves `ctl` on the same admin
    /// socket. The traffic is paced (500 rounds/s) so that these processes leave the other
    /// suites running beside them their share of two cores.
    @Test func theHostIsReplacedThreeTimesUnderTraffic() async throws {
        let (host, path) = try await startHost()
        let admin = path + ".admin"
        let guest = try Spawned(["guest", "--connect", path, "--traffic", "--traffic-rate", "500", "--memory", "32M"])
        #expect(await guest.line()?.hasPrefix("guest: connected") == true)
        var current: Int32 = 0
        for round in 0..<3 {
            let service = try await ctl(["service"], admin: admin)
            #expect(service.status == 0, "round \(round): \(service.errors)")
            #expect(service.output.contains("started the successor") && service.output.contains("taken over by the new host"))
            // The successor writes to the same standard output as the first host.
            let report = await host.line() ?? ""
            #expect(report.hasPrefix("vmbus host: pid ") && report.contains("after a pause of"), "\(report)")
            current = Int32(report.split(separator: " ")[3]) ?? 0
            #expect(await host.line() == "vmbus host: admin socket \(admin)")
            #expect(await host.line() == "vmbus host: listening on \(path)")
        }
        let status = try await ctl(["status"], admin: admin)
        #expect(status.output.contains("1 guest(s) connected, 1 served since start"), "\(status.output)")
        #expect(status.output.contains("heartbeat: open"))
        let heartbeat = try await ctl(["heartbeat"], admin: admin)
        #expect(heartbeat.status == 0, "\(heartbeat.errors)")
        guest.kill(SIGTERM)
        let ended = await guest.finish()
        #expect(ended.status == 0, "the guest saw nothing go wrong: \(ended.errors)")
        // The successors share the first host's standard output: stop the last one, then the
        // pipe ends and the first host's status (it exited 0 when it handed over) is read.
        #expect(current > 0)
        kill(current, SIGTERM)
        #expect(await host.finish().status == 0)
    }

    /// The successor dies after receiving the state, or after restoring it but before saying
    /// it runs: the old host carries on serving, as if nothing happened.
    @Test(arguments: ["received", "restored"])
    func aSuccessorThatDiesLeavesTheOldHostServing(_ fault: String) async throws {
        let (host, path) = try await startHost()
        let admin = path + ".admin"
        let guest = try Spawned(["guest", "--connect", path, "--traffic", "--traffic-rate", "500", "--memory", "32M"])
        #expect(await guest.line()?.hasPrefix("guest: connected") == true)
        let successor = try Spawned([
            "host", "--listen", path, "--device", "echo:2", "--device", "ic", "--log-level", "warning", "--takeover", admin,
            "--takeover-fault", fault,
        ])
        #expect(await successor.finish().status == 3)
        let status = try await ctl(["status"], admin: admin)
        #expect(status.status == 0 && status.output.contains("1 guest(s) connected"), "\(status.errors)")
        let heartbeat = try await ctl(["heartbeat"], admin: admin)
        #expect(heartbeat.status == 0, "\(heartbeat.errors)")
        // And a takeover after that works.
        let service = try await ctl(["service"], admin: admin)
        #expect(service.status == 0, "\(service.errors)")
        let report = await host.line() ?? ""
        let current = Int32(report.split(separator: " ").dropFirst(3).first ?? "") ?? 0
        guest.kill(SIGTERM)
        #expect(await guest.finish().status == 0)
        #expect(current > 0, "\(report)")
        kill(current, SIGTERM)
        #expect(await host.finish().status == 0)
    }

    /// A successor whose devices cannot claim the saved channels refuses the state; the old
    /// host carries on and `ctl service` would say why.
    @Test func aSuccessorWithOtherDevicesRefusesAndTheOldHostCarriesOn() async throws {
        let (host, path) = try await startHost()
        let admin = path + ".admin"
        let guest = try Spawned(["guest", "--connect", path, "--traffic", "--traffic-rate", "500", "--memory", "32M"])
        #expect(await guest.line()?.hasPrefix("guest: connected") == true)
        let successor = try Spawned(["host", "--listen", path, "--device", "discard", "--log-level", "warning", "--takeover", admin])
        let refused = await successor.finish()
        #expect(refused.status == 1)
        #expect(refused.errors.contains("cannot take over") && refused.errors.contains("no device in this host"), "\(refused.errors)")
        let heartbeat = try await ctl(["heartbeat"], admin: admin)
        #expect(heartbeat.status == 0, "\(heartbeat.errors)")
        guest.kill(SIGTERM)
        #expect(await guest.finish().status == 0)
        host.kill(SIGTERM)
        #expect(await host.finish().status == 0)
    }

    /// Streams through the guest's vsock relay to the host's echo and discard services, each
    /// half written when `ctl service` replaces the host: the echo returns every byte in
    /// order and the discard counts every byte, across both hosts.
    @Test func hvsockStreamsHalfWayAreCarried() async throws {
        let path = ServicingProcessTests.temporaryPath("hvsock") + ".sock"
        let directory = ServicingProcessTests.temporaryPath("hvsock-relay")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let host = try Spawned(["host", "--listen", path, "--device", "hvsock", "--device", "ic", "--log-level", "warning"])
        #expect(await host.line() == "vmbus host: admin socket \(path).admin")
        #expect(await host.line() == "vmbus host: listening on \(path)")
        let guest = try await RelayPair.startGuest(path, directory)
        let (echo, echoAnswer) = try await relayConnect(directory, port: 7)
        let (discard, discardAnswer) = try await relayConnect(directory, port: 9)
        #expect(echoAnswer.hasPrefix("OK") && discardAnswer.hasPrefix("OK"), "\(echoAnswer) \(discardAnswer)")
        let echoData = pseudoRandom(4 << 20, seed: 3)
        let discardData = pseudoRandom(6 << 20 + 5, seed: 4)
        let echoed = Task {
            try await offThePool { () throws -> [UInt8] in
                var all: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = try echo.read(into: &buffer)
                    if n == 0 { return all }
                    all += buffer[0..<n]
                }
            }
        }
        try await offThePool {
            try echo.write(echoData[..<(echoData.count / 2)])
            try discard.write(discardData[..<(discardData.count / 2)])
        }
        let service = try await ctl(["service"], admin: path + ".admin")
        #expect(service.status == 0 && service.output.contains("taken over by the new host"), "\(service.output)\(service.errors)")
        let report = await host.line() ?? ""
        let current = Int32(report.split(separator: " ").dropFirst(3).first ?? "") ?? 0
        try await offThePool {
            try echo.write(echoData[(echoData.count / 2)...])
            echo.shutdownWrite()
            try discard.write(discardData[(discardData.count / 2)...])
            discard.shutdownWrite()
        }
        let back = try await echoed.value
        let same = back == echoData
        #expect(same, "\(back.count) of \(echoData.count) bytes came back")
        let count = try await offThePool { () throws -> [UInt8] in
            var buffer = [UInt8](repeating: 0, count: 8)
            return try discard.readFully(into: &buffer, at: 0, count: 8) ? buffer : []
        }
        #expect(count == (0..<8).map { UInt8(truncatingIfNeeded: UInt64(discardData.count) >> (8 * $0)) }, "the count spans both hosts")

        guest.kill(SIGTERM)
        #expect(await guest.finish().status == 0)
        #expect(current > 0, "\(report)")
        kill(current, SIGTERM)
        #expect(await host.finish().status == 0)
    }

    /// `ctl service` while `ctl copy` sends a file into the guest: the takeover waits for the
    /// copy to end (the file-copy service settles before anything is held), the copy succeeds,
    /// and the guest's file is the source byte for byte.
    @Test func aFileCopyInProgressFinishesBeforeTheTakeover() async throws {
        let (host, path) = try await startHost("echo")
        let admin = path + ".admin"
        let work = ServicingProcessTests.temporaryPath("fcopy")
        defer { try? FileManager.default.removeItem(atPath: work) }
        try FileManager.default.createDirectory(atPath: work + "/root", withIntermediateDirectories: true)
        let guest = try Spawned(["guest", "--connect", path, "--memory", "32M", "--fcopy-root", work + "/root"])
        #expect(await guest.line()?.hasPrefix("guest: connected") == true)
        let source = work + "/source.bin"
        let data = Data(pseudoRandom(6 << 20, seed: 5))
        try data.write(to: URL(fileURLWithPath: source))
        let copy = try Spawned(["ctl", "copy", source, "in/copy.bin", "--create-path", "--host", admin])
        // The progress bar's first step: the copy is under way.
        let underWay = await offThePool { () -> Bool in
            var seen: [UInt8] = []
            while let byte = copy.errors.fileHandleForReading.readData(ofLength: 1).first {
                seen.append(byte)
                if byte == UInt8(ascii: "%") { return true }
            }
            return false
        }
        #expect(underWay)
        let service = try await ctl(["service"], admin: admin)
        #expect(service.status == 0 && service.output.contains("taken over by the new host"), "\(service.output)\(service.errors)")
        let copied = await copy.finish()
        #expect(copied.status == 0 && copied.output.contains("copied \(data.count) bytes"), "\(copied.output)\(copied.errors)")
        let same = FileManager.default.contents(atPath: work + "/root/in/copy.bin") == data
        #expect(same, "the guest's file is the source")
        let report = await host.line() ?? ""
        let current = Int32(report.split(separator: " ").dropFirst(3).first ?? "") ?? 0
        // The new host copies too.
        let again = try await ctl(["copy", source, "in/again.bin"], admin: admin)
        #expect(again.status == 0, "\(again.errors)")
        guest.kill(SIGTERM)
        #expect(await guest.finish().status == 0)
        #expect(current > 0, "\(report)")
        kill(current, SIGTERM)
        #expect(await host.finish().status == 0)
    }

    /// A host capturing the bus is replaced: the old host's file is complete, and the new
    /// host captures into the next name (`bus.1.pcapng`).
    @Test func aCaptureGoesOnInTheNextFileAfterATakeover() async throws {
        let directory = ServicingProcessTests.temporaryPath("capture-takeover")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/bus.sock"
        let host = try Spawned(["host", "--listen", path, "--device", "echo", "--capture", directory + "/bus.pcapng", "--log-level", "warning"])
        #expect(await host.line() == "vmbus host: admin socket \(path).admin")
        #expect(await host.line() == "vmbus host: listening on \(path)")
        let guest = try Spawned(["guest", "--connect", path, "--traffic", "--traffic-rate", "200", "--memory", "32M"])
        #expect(await guest.line()?.hasPrefix("guest: connected") == true)
        let service = try await ctl(["service"], admin: path + ".admin")
        #expect(service.status == 0, "\(service.errors)")
        let report = await host.line() ?? ""
        let current = Int32(report.split(separator: " ").dropFirst(3).first ?? "") ?? 0
        let before = try await Spawned(["capture", "summary", directory + "/bus.pcapng"]).finish()
        #expect(before.status == 0 && before.output.contains("guest→host INITIATE_CONTACT: 1"), "\(before.output)\(before.errors)")
        guest.kill(SIGTERM)
        #expect(await guest.finish().status == 0)
        #expect(current > 0, "\(report)")
        kill(current, SIGTERM)
        #expect(await host.finish().status == 0)
        let after = try await Spawned(["capture", "summary", directory + "/bus.1.pcapng"]).finish()
        #expect(after.status == 0 && after.output.contains("relid 1: packets guest→host"), "\(after.output)\(after.errors)")
        #expect(!after.output.contains("INITIATE_CONTACT"), "the successor joined mid-session: \(after.output)")
    }
}

