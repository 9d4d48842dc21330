import Foundation
import Testing
import VMBusMemory
import VMBusWire

@testable import VMBusStorage

/// The server over a real Unix socket, driven by a raw client: requests in flight and answered
/// out of order, unaligned requests from a client that negotiated nothing, hostile input that
/// must close one connection and nothing else, and a clean stop.
@Suite struct NBDServerTests {
    /// Sixteen writes sent back to back without waiting, then their replies (matched by cookie),
    /// then the data read back the same way.
    @Test func manyRequestsInFlightOnOneConnection() async throws {
        let fixture = try NBDFixture()
        try await offPool {
            let client = try NBDTestClient.connect(fixture.scratch.socket)
            let chunks = (0..<16).map { patternBytes(4096, seed: UInt64($0)) }
            for (n, chunk) in chunks.enumerated() {
                try client.sendRequest(.write, cookie: UInt64(100 + n), offset: UInt64(n * 8192), length: 4096, data: chunk)
            }
            var answered = Set<UInt64>()
            for _ in chunks {
                let reply = try client.readReply()
                #expect(reply.error == .none)
                answered.insert(reply.cookie)
            }
            #expect(answered == Set((0..<16).map { UInt64(100 + $0) }))
            for (n, chunk) in chunks.enumerated() {
                #expect(try fixture.bytes(n * 8192, 4096) == chunk)
                #expect(try client.read(at: UInt64(n * 8192), length: 4096).get() == chunk)
            }
            try client.disconnect()
            #expect(client.isClosedByServer())
        }
        await fixture.server.stop()
        let statistics = fixture.server.statistics
        #expect((statistics.writes, statistics.reads, statistics.bytesWritten, statistics.errors) == (16, 16, 65536, 0))
    }

    /// A read the device holds does not hold up the one behind it: its reply comes first.
    @Test func repliesLeaveAsRequestsComplete() async throws {
        let disk = try MemoryDisk(contents: patternBytes(64 * 512, seed: 5))
        let device = TestBlockDevice(disk, held: [0])
        let fixture = try NBDFixture(disk: disk, device: device)
        try await offPool {
            let client = try NBDTestClient.connect(fixture.scratch.socket)
            try client.sendRequest(.read, cookie: 1, offset: 0, length: 512)
            try client.sendRequest(.read, cookie: 2, offset: 4096, length: 512)
            let first = try client.readReply()
            #expect(first == NBDSimpleReply(error: .none, cookie: 2))
            #expect(try client.read(512) == Array(try disk.read(at: 4096, count: 512)))
            device.release()
            #expect(try client.readReply() == NBDSimpleReply(error: .none, cookie: 1))
            #expect(try client.read(512) == Array(try disk.read(at: 0, count: 512)))
        }
        await fixture.server.stop()
    }

    /// A client that went straight to EXPORT_NAME agreed to no block sizes: it may write and
    /// read any byte range, and the server does the read-modify-write.
    @Test func exportNameClientWritesAndReadsAnyByteRange() async throws {
        let fixture = try NBDFixture(sectorSize: 4096, exportName: "disk")
        try await offPool {
            let client = try NBDTestClient(path: fixture.scratch.socket)
            try client.greet(clientFlags: 0b01)  // without NO_ZEROES: the 124 zeros follow
            try client.sendOption(.exportName, Array("disk".utf8))
            var reader = WireReader(try client.read(10 + 124))
            #expect(try reader.readBigEndianUInt64() == 8 << 20)
            #expect(NBDTransmissionFlags(rawValue: try reader.readBigEndianUInt16()).contains(.sendTrim))
            let a = patternBytes(1000, seed: 1)
            let b = patternBytes(9000, seed: 2)
            #expect(try client.write(a, at: 100) == .none)
            #expect(try client.write(b, at: 4000) == .none)
            #expect(try client.write([0x5a], at: (8 << 20) - 1, flags: .fua) == .none)
            var model = [UInt8](repeating: 0, count: 16384)
            model.replaceSubrange(100..<1100, with: a)
            model.replaceSubrange(4000..<13000, with: b)
            #expect(try fixture.bytes(0, 16384) == model)
            #expect(try client.read(at: 50, length: 13000).get() == Array(model[50..<13050]))
            #expect(try client.read(at: (8 << 20) - 3, length: 3).get() == [0, 0, 0x5a])
            #expect(try client.command(.writeZeroes, offset: 150, length: 100) == .none)
            model.replaceSubrange(150..<250, with: [UInt8](repeating: 0, count: 100))
            #expect(try fixture.bytes(0, 16384) == model)
            #expect(try client.command(.flush) == .none)
        }
        await fixture.server.stop()
    }

    /// Errors are answered and the connection goes on: the refused write's data is skipped, so
    /// the next request still parses.
    @Test func refusedRequestsAreAnsweredAndTheConnectionGoesOn() async throws {
        let fixture = try NBDFixture(megabytes: 1)
        try await offPool {
            let client = try NBDTestClient.connect(fixture.scratch.socket)
            #expect(try client.read(at: (1 << 20) - 100, length: 512) == .failure(.invalid))
            #expect(try client.write(patternBytes(512, seed: 1), at: 1 << 20) == .noSpace)
            #expect(try client.write(patternBytes(512, seed: 1), at: 0, flags: .noHole) == .invalid)
            #expect(try client.command(NBDCommand(rawValue: 99)) == .invalid)
            #expect(try client.command(.blockStatus, length: 512) == .invalid)
            #expect(try client.command(.trim, offset: 1 << 20, length: 1) == .invalid)
            #expect(try client.read(at: 0, length: 0) == .success([]))
            #expect(try client.write([7, 7, 7], at: 10) == .none)
            #expect(try client.read(at: 10, length: 3) == .success([7, 7, 7]))
        }
        await fixture.server.stop()
        #expect(fixture.server.statistics.errors == 6)
        #expect(fixture.server.statistics.protocolViolations == 0)
    }

    @Test func readOnlyExportRefusesWritesTrimsAndZeroesWithEPERM() async throws {
        let fixture = try NBDFixture(megabytes: 1, readOnly: true)
        try await offPool {
            let client = try NBDTestClient(path: fixture.scratch.socket)
            try client.greet()
            #expect(try client.go().flags.contains(.readOnly))
            #expect(try client.write([1, 2, 3], at: 0) == .permission)
            #expect(try client.command(.trim, length: 512) == .permission)
            #expect(try client.command(.writeZeroes, length: 512) == .permission)
            #expect(try client.read(at: 0, length: 3) == .success([0, 0, 0]))
        }
        await fixture.server.stop()
    }

    /// Each of these ends its own connection (the server cannot follow the stream past it) and
    /// nothing else: a fresh client is served afterwards.
    @Test(arguments: [
        "bad request magic", "a 4 GiB write", "an option claiming 1 GiB", "an option without IHAVEOPT",
        "unknown client flags", "EXPORT_NAME for no export", "garbage after the greeting",
    ])
    func hostileClientsLoseOnlyTheirConnection(what: String) async throws {
        let fixture = try NBDFixture(megabytes: 1)
        try await offPool {
            let client = try NBDTestClient(path: fixture.scratch.socket)
            switch what {
            case "bad request magic":
                try client.greet()
                _ = try client.go()
                try client.send([UInt8](repeating: 0xee, count: NBDRequest.wireSize))
            case "a 4 GiB write":
                try client.greet()
                _ = try client.go()
                try client.sendRequest(.write, cookie: 1, offset: 0, length: 0xffff_ffff)
            case "an option claiming 1 GiB":
                try client.greet()
                var writer = WireWriter()
                NBDOptionHeader(option: .go, length: 1 << 30).write(to: &writer)
                try client.send(writer.bytes)
                #expect(try client.readOptionReply().type == .errorTooBig)
            case "an option without IHAVEOPT":
                try client.greet()
                try client.send([UInt8](repeating: 0, count: 16))
            case "unknown client flags":
                try client.greet(clientFlags: 0xffff_ffff)
            case "EXPORT_NAME for no export":
                try client.greet()
                try client.sendOption(.exportName, Array("nope".utf8))
            default:
                try client.greet()
                try client.send(Array(repeating: 0x41, count: 1000))
            }
            #expect(client.isClosedByServer(), "\(what)")
            let next = try NBDTestClient.connect(fixture.scratch.socket)
            #expect(try next.write([1], at: 0) == .none)
        }
        await fixture.server.stop()
        #expect(fixture.server.statistics.protocolViolations == 1, "\(what)")
    }

    /// `NBD_CMD_DISC` with a write still in flight: the write is answered and done before the
    /// connection closes.
    @Test func disconnectAnswersWhatIsInFlightFirst() async throws {
        let fixture = try NBDFixture(megabytes: 1)
        let data = patternBytes(65536, seed: 3)
        try await offPool {
            let client = try NBDTestClient.connect(fixture.scratch.socket)
            try client.sendRequest(.write, cookie: 5, offset: 4096, length: 65536, data: data)
            try client.disconnect()
            #expect(try client.readReply() == NBDSimpleReply(error: .none, cookie: 5))
            #expect(client.isClosedByServer())
        }
        #expect(try fixture.bytes(4096, 65536) == data)
        await fixture.server.stop()
    }

    /// `stop()` lets a held request finish and be answered, closes the connection, removes the
    /// socket file and refuses to start again.
    @Test func stopAnswersInFlightRequestsThenCloses() async throws {
        let disk = try MemoryDisk(contents: patternBytes(64 * 512, seed: 9))
        let device = TestBlockDevice(disk, held: [8])
        // The log line `stop()` writes once every connection was told to stop lets the read go.
        let scratch = try NBDScratch()
        let server = NBDServer(device: device, configuration: .init(log: { line in
            if line.contains("stopping") { device.release() }
        }))
        try server.start(.unix(scratch.socket))
        let client = try await offPool {
            let client = try NBDTestClient.connect(scratch.socket)
            try client.sendRequest(.read, cookie: 77, offset: 8 * 512, length: 1024)
            return client
        }
        // The read is in the device before stop begins; it is answered, not refused.
        await device.heldReadArrived.wait()
        await server.stop()
        #expect(server.statistics.activeConnections == 0)
        try await offPool { () throws in
            #expect(try client.readReply() == NBDSimpleReply(error: .none, cookie: 77))
            #expect(try client.read(1024) == Array(try disk.read(at: 8 * 512, count: 1024)))
            #expect(client.isClosedByServer())
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.socket))
        #expect(throws: NBDServerError.stopped) { try server.start(.unix(scratch.socket)) }
    }

    @Test func tcpListenerReportsItsPortAndServes() async throws {
        let server = NBDServer(device: BackendBlockDevice(try MemoryDisk(sectorCount: 64)))
        let address = try server.start(.tcp(host: "127.0.0.1", port: 0))
        guard case .tcp(_, let port) = address, port > 0 else {
            Issue.record("no port: \(address)")
            return
        }
        try await offPool {
            let socket = try StreamSocket.connect(address)
            var greeting = [UInt8](repeating: 0, count: NBDGreeting.wireSize)
            #expect(try socket.readFully(into: &greeting, at: 0, count: greeting.count))
            #expect(greeting == NBDHandshake.greeting)
        }
        await server.stop()
    }

    @Test func connectionsOverTheLimitAreClosedAtOnce() async throws {
        let fixture = try NBDFixture(disk: try MemoryDisk(sectorCount: 64), configuration: .init(maximumConnections: 1))
        try await offPool {
            let first = try NBDTestClient.connect(fixture.scratch.socket)
            let second = try NBDTestClient(path: fixture.scratch.socket)
            #expect(second.isClosedByServer())
            #expect(try first.write([1], at: 0) == .none)
        }
        await fixture.server.stop()
        #expect(fixture.server.statistics.connectionsRefused == 1)
    }
}
