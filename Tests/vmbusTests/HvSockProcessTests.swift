import Dispatch
import Foundation
import Testing
import VMBusMemory

/// A host process with hvsock and a relay, and a guest process with a relay, both up.
struct RelayPair {
    let host: Spawned
    let guest: Spawned
    let socket: String
    let directory: String
    var hostRelay: String { self.directory + "/host" }
    var guestRelay: String { self.directory + "/guest" }

    /// The guest's `forwarding …` lines.
    var forwards: [String] = []

    init(guestArguments: [String] = [], forwards: Int = 0) async throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-relay-\(UInt32.random(in: 0...UInt32.max))").path
        self.socket = self.directory + "/bus.sock"
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
        self.host = try Spawned(["host", "--listen", self.socket, "--vsock-relay", self.directory + "/host", "--log-level", "warning"])
        #expect(await self.host.line()?.hasPrefix("vmbus host: admin socket") == true)
        #expect(await self.host.line() == "vmbus host: vsock relay \(self.directory)/host/vsock")
        #expect(await self.host.line() == "vmbus host: listening on \(self.socket)")
        self.guest = try await Self.startGuest(self.socket, self.directory + "/guest", guestArguments)
        for _ in 0..<forwards { self.forwards.append(await self.guest.line() ?? "") }
    }

    static func startGuest(_ socket: String, _ relay: String, _ extra: [String] = []) async throws -> Spawned {
        let guest = try Spawned(["guest", "--connect", socket, "--memory", "64M", "--vsock-relay", relay] + extra)
        #expect(await guest.line()?.hasPrefix("guest: connected") == true)
        #expect(await guest.line() == "guest: vsock relay \(relay)/vsock")
        return guest
    }

    func stop() {
        self.guest.kill(SIGTERM)
        _ = self.guest.finishBlocking()
        self.host.kill(SIGTERM)
        _ = self.host.finishBlocking()
        try? FileManager.default.removeItem(atPath: self.directory)
    }
}

/// Connects through a relay's `vsock` socket to `port`; returns the socket and the answer line.
func relayConnect(_ relay: String, port: UInt32) async throws -> (StreamSocket, String) {
    try await offThePool { try relayConnectBlocking(relay, port: port) }
}

/// ``relayConnect(_:port:)`` on the calling thread.
func relayConnectBlocking(_ relay: String, port: UInt32) throws -> (StreamSocket, String) {
    let socket = try StreamSocket.connect(.unix(relay + "/vsock"))
    try socket.write(Array("CONNECT \(port)\n".utf8)[...])
    var line: [UInt8] = []
    var byte = [UInt8](repeating: 0, count: 1)
    while try DescriptorIO.readSome(socket.fileDescriptor, into: &byte, count: 1) == 1, byte[0] != 10 { line.append(byte[0]) }
    return (socket, String(decoding: line, as: UTF8.self))
}

/// Writes `data` (then half-closes) while reading to the end; returns what came back.
func roundTrip(_ socket: StreamSocket, _ data: [UInt8]) async throws -> [UInt8] {
    try await offThePool { try roundTripBlocking(socket, data) }
}

/// Writes `data` from another thread (then half-closes) while this one reads to the end.
func roundTripBlocking(_ socket: StreamSocket, _ data: [UInt8]) throws -> [UInt8] {
    let writer = Thread {
        var offset = 0
        while offset < data.count {
            let end = min(offset + 50_000, data.count)
            guard (try? socket.write(data[offset..<end])) != nil else { return }
            offset = end
        }
        socket.shutdownWrite()
    }
    writer.start()
    var all: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = try socket.read(into: &buffer)
        if n == 0 { return all }
        all += buffer[0..<n]
    }
}

/// A Unix echo server at `path` for `connections` connections (each on its own thread).
func echoServer(at path: String, connections: Int = 1) throws {
    let server = try StreamSocket.listen(.unix(path))
    Thread {
        for _ in 0..<connections {
            guard let client = try? server.accept() else { return }
            Thread {
                var buffer = [UInt8](repeating: 0, count: 65536)
                while let n = try? client.read(into: &buffer), n > 0 {
                    guard (try? client.write(buffer[0..<n])) != nil else { return }
                }
                client.shutdownWrite()
            }.start()
        }
        withExtendedLifetime(server) {}
    }.start()
}

func pseudoRandom(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed | 1
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return UInt8(truncatingIfNeeded: state >> 33)
    }
}

@Suite(.serialized) struct HvSockProcessTests {
    init() throws {
        try #require(FileManager.default.isExecutableFile(atPath: vmbusBinary().path), "vmbus binary not built")
    }

    @Test func relaysCarryLargeRandomStreamsBothWaysByteExact() async throws {
        let pair = try await RelayPair()
        defer { pair.stop() }
        // Host → guest: a guest-side Unix service on port 5000.
        try echoServer(at: pair.guestRelay + "/vsock_5000")
        let (toGuest, answer) = try await relayConnect(pair.hostRelay, port: 5000)
        #expect(answer.hasPrefix("OK "))
        let down = pseudoRandom(6 << 20, seed: 1)
        #expect(try await roundTrip(toGuest, down) == down)
        // Guest → host: a host-side Unix service on port 6000.
        try echoServer(at: pair.hostRelay + "/vsock_6000")
        let (toHost, answer2) = try await relayConnect(pair.guestRelay, port: 6000)
        #expect(answer2.hasPrefix("OK "))
        let up = pseudoRandom((5 << 20) + 7, seed: 2)
        #expect(try await roundTrip(toHost, up) == up)
    }

    @Test func manyConnectionsAtOnceThroughTheRelay() async throws {
        let pair = try await RelayPair()
        defer { pair.stop() }
        let count = 12
        let results = Locked<[Int: Bool]>([:])
        let group = DispatchGroup()
        let relay = pair.guestRelay
        for i in 0..<count {
            group.enter()
            Thread {
                defer { group.leave() }
                let data = pseudoRandom(300_000 + i, seed: UInt64(i + 10))
                // The host's echo service on port 7.
                guard let (socket, answer) = try? relayConnectBlocking(relay, port: 7), answer.hasPrefix("OK ") else { return }
                let back = try? roundTripBlocking(socket, data)
                results.withLock { $0[i] = back == data }
            }.start()
        }
        await offThePool { group.wait() }
        #expect(results.withLock { $0 }.count == count)
        #expect(results.withLock { $0 }.values.allSatisfy { $0 })
    }

    @Test func aPortNobodyListensOnAndABadRequestAreRefusedClearly() async throws {
        let pair = try await RelayPair()
        defer { pair.stop() }
        let (_, refused) = try await relayConnect(pair.guestRelay, port: 4444)
        #expect(refused.hasPrefix("ERROR") && refused.contains("refused"))
        let socket = try StreamSocket.connect(.unix(pair.hostRelay + "/vsock"))
        try socket.write(Array("HELLO 1\n".utf8)[...])
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = try socket.read(into: &buffer)
        #expect(String(decoding: buffer[0..<n], as: UTF8.self).hasPrefix("ERROR expected 'CONNECT <port>'"))
    }

    @Test func sockConnectAndListenTalkAcrossTheTwoSides() async throws {
        let pair = try await RelayPair()
        defer { pair.stop() }
        let listener = try Spawned(["sock", "listen", "--port", "7100", "--relay", pair.guestRelay], input: Array("pong from the guest\n".utf8))
        #expect(await listener.errorLine() == "vmbus sock: listening on \(pair.guestRelay)/vsock_7100")
        let client = try Spawned(["sock", "connect", "--port", "7100", "--relay", pair.hostRelay], input: Array("ping from the host\n".utf8))
        let (status, output, errors) = await client.finish()
        #expect(status == 0, "\(errors)")
        #expect(output == "pong from the guest\n")
        let (listenStatus, listenOutput, _) = await listener.finish()
        #expect(listenStatus == 0)
        #expect(listenOutput == "ping from the host\n")
        // Nobody on the host's port 7101: a clear refusal, exit status 1.
        let refused = try Spawned(["sock", "connect", "--port", "7101", "--relay", pair.guestRelay], input: [])
        let (refusedStatus, _, refusedErrors) = await refused.finish()
        #expect(refusedStatus == 1 && refusedErrors.contains("refused"))
    }

    @Test func aKilledGuestEndsItsRelayedStreamsAndTheHostServesTheNext() async throws {
        let pair = try await RelayPair()
        defer { pair.stop() }
        try echoServer(at: pair.guestRelay + "/vsock_5001")
        let (socket, answer) = try await relayConnect(pair.hostRelay, port: 5001)
        #expect(answer.hasPrefix("OK "))
        try socket.write([1, 2, 3, 4][...])
        var buffer = [UInt8](repeating: 0, count: 16)
        #expect(try DescriptorIO.readFully(socket.fileDescriptor, into: &buffer, count: 4))
        pair.guest.kill(SIGKILL)
        _ = await pair.guest.finish()
        // Mid-stream: the relayed socket ends (end of stream or reset), it does not hang.
        let after = try? socket.read(into: &buffer)
        #expect(after == nil || after == 0)
        // The host lives on and relays for the next guest.
        let next = try await RelayPair.startGuest(pair.socket, pair.directory + "/guest2")
        defer {
            next.kill(SIGTERM)
            _ = next.finishBlocking()
        }
        try echoServer(at: pair.directory + "/guest2/vsock_5002")
        let (again, answer2) = try await relayConnect(pair.hostRelay, port: 5002)
        #expect(answer2.hasPrefix("OK "))
        #expect(try await roundTrip(again, [9, 8, 7]) == [9, 8, 7])
    }

    @Test func aGuestForwardCarriesLocalClientsToAHostPort() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-fwd-\(UInt32.random(in: 0...UInt32.max))").path
        let pair = try await RelayPair(guestArguments: ["--forward", "unix:\(directory).sock=7", "--forward", "tcp:127.0.0.1:0=7"], forwards: 2)
        defer {
            pair.stop()
            LocalSocket.removeFile(path: directory + ".sock")
        }
        #expect(pair.forwards.first == "guest: forwarding unix:\(directory).sock to host port 7")
        let socket = try StreamSocket.connect(.unix(directory + ".sock"))
        let data = pseudoRandom(1 << 20, seed: 5)
        #expect(try await roundTrip(socket, data) == data)
        // TCP on a free port, as printed.
        let line = try #require(pair.forwards.last)
        let port = try #require(line.split(separator: " ")[2].split(separator: ":").last.flatMap { Int($0) })
        #expect(line == "guest: forwarding tcp:127.0.0.1:\(port) to host port 7")
        let tcp = try StreamSocket.connect(.tcp(host: "127.0.0.1", port: port))
        let more = pseudoRandom(300_000, seed: 6)
        #expect(try await roundTrip(tcp, more) == more)
    }
}
