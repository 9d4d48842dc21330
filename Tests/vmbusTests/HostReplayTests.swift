import Foundation
import Testing

/// `vmbus capture replay --as host`: a captured host, played to a live `vmbus guest` run as the
/// captured one was, serves it as the real host did (the guest's echoes come back byte-exact,
/// every guest message and packet as captured); a guest that does less is reported.
@Suite(.serialized) struct HostReplayTests {
    static func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-hostreplay-\(UInt32.random(in: 0...UInt32.max))-\(name)").path
    }

    /// A guest's capture of `rounds` echo rounds on each of two channels, with its heartbeat.
    static func captureGuest(rounds: Int) async throws -> String {
        let (host, path) = try await startHost("echo:2")
        defer {
            host.kill(SIGTERM)
            _ = host.finishBlocking()
        }
        let file = Self.temporary("guest.pcapng")
        let guest = try Spawned(["guest", "--connect", path, "--echo-rounds", "\(rounds)", "--memory", "32M", "--capture", file, "--snaplen", "65536"])
        let (status, _, errors) = await guest.finish()
        #expect(status == 0, "\(errors)")
        return file
    }

    /// Replays `file` as the host and runs a guest against it; returns both ends' results.
    static func replay(_ file: String, guestRounds: Int) async throws
        -> (replay: (status: Int32, output: String, errors: String), guest: (status: Int32, output: String, errors: String))
    {
        let path = Self.temporary("replay.sock")
        let replay = try Spawned(["capture", "replay", file, "--as", "host", "--listen", path, "--timeout", "5"])
        #expect(await replay.line() == "replay: listening on \(path)")
        let guest = try Spawned(["guest", "--connect", path, "--echo-rounds", "\(guestRounds)", "--memory", "32M"])
        let guestEnd = await guest.finish()
        return (await replay.finish(), guestEnd)
    }

    @Test func aCapturedHostServesALiveGuestAsTheHostDid() async throws {
        let file = try await Self.captureGuest(rounds: 30)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let (replay, guest) = try await Self.replay(file, guestRounds: 30)
        #expect(guest.status == 0, "\(guest.errors)")
        #expect(guest.output.split(separator: "\n").filter { $0.hasSuffix("30 round trips byte-exact") }.count == 2, "\(guest.output)")
        #expect(replay.status == 0, "\(replay.output)\n\(replay.errors)")
        #expect(replay.output.contains("connection 1: ") && replay.output.contains("every answer as captured"), "\(replay.output)")
    }

    @Test func aGuestThatDoesLessIsReported() async throws {
        let file = try await Self.captureGuest(rounds: 30)
        defer { try? FileManager.default.removeItem(atPath: file) }
        // Twenty rounds where the capture has thirty: the 21st request on the first channel
        // never comes (the replay says which record), and the replay ends with status 1.
        let (replay, _) = try await Self.replay(file, guestRounds: 20)
        #expect(replay.status == 1, "\(replay.output)\n\(replay.errors)")
        let differences = replay.output.split(separator: "\n").filter { $0.hasPrefix("  connection 1 record ") }
        #expect(!differences.isEmpty && differences.first?.contains("(relid 1): expected packet type 0x6") == true, "\(replay.output)")
    }
}
