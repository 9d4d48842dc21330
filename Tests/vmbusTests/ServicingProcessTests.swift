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
        #expect(output.contains("guest: hibernated to \(file): VMBus 6.0, 8 device(s) to resume"), "\(output)")
        let size = try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int
        #expect((size ?? 0) > 32 << 20, "the file holds all of guest memory")

        let resumed = try Spawned(["guest", "--connect", path, "--resume", file, "--echo-rounds", "20"])
        let back = await resumed.finish()
        #expect(back.status == 0, "\(back.errors)")
        #expect(back.output.contains("guest: resumed from \(file): 8 device(s) back with their drivers"), "\(back.output)")
        #expect(back.output.split(separator: "\n").filter { $0.hasSuffix("20 round trips byte-exact") }.count == 2)

        // A file that is not a hibernation is refused with the reason.
        let bogus = Self.temporaryPath("bogus")
        FileManager.default.createFile(atPath: bogus, contents: Data("not a state".utf8))
        defer { try? FileManager.default.removeItem(atPath: bogus) }
        let refused = try Spawned(["guest", "--connect", path, "--resume", bogus, "--echo-rounds", "1"])
        let failure = await refused.finish()
        #expect(failure.status == 1)
        #expect(failure.errors.contains("cannot resume from \(bogus)") && failure.errors.contains("cut short"), "\(failure.errors)")
        host.kill(SIGTERM)
        #expect(await host.finish().status == 0)
    }
}
