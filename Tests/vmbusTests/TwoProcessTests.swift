import Foundation
import Testing
import VMBusMemory
import VMBusWire

/// The `vmbus` binary next to the test bundle.
func vmbusBinary() -> URL {
    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("vmbus")
}

/// Runs blocking work (waiting for a child, reading its pipes, socket I/O) on a thread of its
/// own. Swift Testing runs tests on the concurrency pool, which has one thread per core: a test
/// that blocked there would starve the in-process tests running beside it on a 2-core machine.
/// Expectations stay in the test; only the waiting moves.
func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (done: CheckedContinuation<T, any Error>) in
        Thread { done.resume(with: Result { try body() }) }.start()
    }
}

/// ``offThePool(_:)`` for work that cannot throw.
func offThePool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { (done: CheckedContinuation<T, Never>) in
        Thread { done.resume(returning: body()) }.start()
    }
}

/// A spawned `vmbus` process with its standard output readable line by line.
// Unchecked: its members are set once in `init`; pipes and the process are read from one
// waiting thread at a time.
final class Spawned: @unchecked Sendable {
    let process = Process()
    let output = Pipe()
    let errors = Pipe()

    /// - Parameters:
    ///   - input: bytes for standard input (then end of file); `nil` inherits ours.
    ///   - executable: the program (default: the vmbus binary).
    ///   - environment: variables added to ours.
    init(_ arguments: [String], input: [UInt8]? = nil, executable: URL = vmbusBinary(), environment: [String: String] = [:]) throws {
        self.process.executableURL = executable
        self.process.arguments = arguments
        if !environment.isEmpty {
            self.process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        self.process.standardOutput = self.output
        self.process.standardError = self.errors
        let stdin = input.map { _ in Pipe() }
        if let stdin { self.process.standardInput = stdin }
        try self.process.run()
        if let stdin, let input {
            stdin.fileHandleForWriting.write(Data(input))
            try stdin.fileHandleForWriting.close()
        }
    }

    /// The next line of standard output, or `nil` at its end.
    func line() async -> String? { await offThePool { Self.line(self.output) } }

    /// The next line of standard error.
    func errorLine() async -> String? { await offThePool { Self.line(self.errors) } }

    static func line(_ pipe: Pipe) -> String? {
        var bytes: [UInt8] = []
        while true {
            let data = pipe.fileHandleForReading.readData(ofLength: 1)
            guard let byte = data.first else { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
    }

    /// Waits for the process and returns its status with the rest of its output.
    func finish() async -> (status: Int32, output: String, errors: String) {
        await offThePool { self.finishBlocking() }
    }

    /// ``finish()`` blocking this thread (for `defer`, which cannot wait; the child was just
    /// signalled, so the wait is short).
    func finishBlocking() -> (status: Int32, output: String, errors: String) {
        let output = String(decoding: self.output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errors = String(decoding: self.errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        self.process.waitUntilExit()
        return (self.process.terminationStatus, output, errors)
    }

    /// Signals the process while it runs: once it has ended its id may be another program's
    /// (two-core CI runs recycle ids within a minute), and a signal there stops a stranger.
    func kill(_ signal: Int32) {
        if self.process.isRunning { Foundation.kill(self.process.processIdentifier, signal) }
    }
}

/// A host process listening on a fresh socket; returns once it accepts guests.
func startHost(_ devices: String = "echo:2") async throws -> (Spawned, String) {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-\(UInt32.random(in: 0...UInt32.max)).sock").path
    let host = try Spawned(["host", "--listen", path, "--device", devices, "--device", "ic", "--log-level", "warning"])
    #expect(await host.line() == "vmbus host: admin socket \(path).admin")
    #expect(await host.line() == "vmbus host: listening on \(path)")
    return (host, path)
}

@Suite(.serialized) struct TwoProcessTests {
    init() throws {
        try #require(FileManager.default.isExecutableFile(atPath: vmbusBinary().path), "vmbus binary not built")
    }

    @Test func aHostAndAGuestComeUpAndListTheBus() async throws {
        let (host, path) = try await startHost()
        let guest = try Spawned(["guest", "--connect", path, "--list", "--json", "--memory", "32M"])
        let (status, output, errors) = await guest.finish()
        #expect(status == 0, "\(errors)")
        #expect(output.contains("\"relid\": 1") && output.contains("\"relid\": 2"))
        #expect(output.contains("\"class_name\": \"swift-vmbus echo\"") && output.contains("\"driver\": \"echo\""))
        #expect(output.contains("\"ring_out_bytes\": 65536"))
        host.kill(SIGTERM)
        #expect(await host.finish().status == 0)
        #expect(!FileManager.default.fileExists(atPath: path), "the socket file is removed")
    }

    @Test func echoTrafficIsByteExactAcrossProcesses() async throws {
        let (host, path) = try await startHost("echo:3")
        let guest = try Spawned(["guest", "--connect", path, "--echo-rounds", "300", "--memory", "32M"])
        let (status, output, errors) = await guest.finish()
        #expect(status == 0, "\(errors)")
        #expect(output.split(separator: "\n").filter { $0.hasSuffix("300 round trips byte-exact") }.count == 3)
        host.kill(SIGTERM)
        _ = await host.finish()
    }

    @Test func aKilledGuestIsReleasedAndTheNextGuestIsServed() async throws {
        let (host, path) = try await startHost()
        let doomed = try Spawned(["guest", "--connect", path, "--traffic", "--memory", "32M"])
        #expect(await doomed.line()?.hasPrefix("guest: connected") == true)
        doomed.kill(SIGKILL)
        #expect(await doomed.finish().status != 0)
        let next = try Spawned(["guest", "--connect", path, "--echo-rounds", "20", "--memory", "32M"])
        let (status, _, errors) = await next.finish()
        #expect(status == 0, "\(errors)")
        host.kill(SIGTERM)
        #expect(await host.finish().status == 0)
    }

    @Test func aKilledHostMakesTheGuestExitWithAClearError() async throws {
        let (host, path) = try await startHost()
        let guest = try Spawned(["guest", "--connect", path, "--traffic", "--memory", "32M"])
        #expect(await guest.line()?.hasPrefix("guest: connected") == true)
        host.kill(SIGKILL)
        _ = await host.finish()
        let (status, _, errors) = await guest.finish()
        #expect(status == 1)
        #expect(errors.contains("host gone"))
        LocalSocket.removeFile(path: path)
    }

    @Test func badDatagramsFromARawClientCloseOnlyThatConnection() async throws {
        let (host, path) = try await startHost()
        for garbage: [UInt8] in [[0xFF], [1, 0, 0, 0, 0, 0, 0, 0], [4, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]] {
            let raw = try LocalSocket.connect(path: path)
            try raw.send(garbage)
            var ended = false
            for _ in 0..<3 where !ended { ended = try raw.receive().isEndOfStream }
            #expect(ended, "the host closes a connection that sends \(garbage)")
        }
        let guest = try Spawned(["guest", "--connect", path, "--echo-rounds", "5", "--memory", "32M"])
        #expect(await guest.finish().status == 0)
        host.kill(SIGTERM)
        #expect(await host.finish().status == 0)
    }
}

/// Runs `vmbus ctl` and returns its status and output.
func ctl(_ arguments: [String], admin: String) async throws -> (status: Int32, output: String, errors: String) {
    let process = try Spawned(["ctl"] + arguments + ["--host", admin])
    return await process.finish()
}

@Suite(.serialized) struct IntegrationServiceProcessTests {
    @Test func heartbeatKVPAndFileCopyAcrossProcesses() async throws {
        let (host, path) = try await startHost("echo")
        let admin = path + ".admin"
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-ic-\(UInt32.random(in: 0...UInt32.max))").path
        defer { try? FileManager.default.removeItem(atPath: work) }
        func startGuest() async throws -> Spawned {
            let guest = try Spawned(["guest", "--connect", path, "--memory", "32M", "--kvp-dir", work + "/kvp", "--fcopy-root", work + "/root"])
            #expect(await guest.line()?.hasPrefix("guest: connected") == true)
            return guest
        }
        var guest = try await startGuest()
        // The services negotiate right after the channels open; status shows them.
        var status = try await ctl(["status"], admin: admin)
        for _ in 0..<50 where !status.output.contains("vss: open") { status = try await ctl(["status"], admin: admin) }
        #expect(status.output.contains("kvp: open, framework 3.0, version 4.0"), "\(status)")
        let beat = try await ctl(["heartbeat"], admin: admin)
        #expect(beat.status == 0 && beat.output.contains("heartbeat answered"), "\(beat)")
        #expect(try await ctl(["kvp", "set", "Owner", "Ünïcode ✓"], admin: admin).status == 0)
        #expect(try await ctl(["kvp", "get", "Owner"], admin: admin).output == "Ünïcode ✓\n")
        let missing = try await ctl(["kvp", "get", "Nope"], admin: admin)
        #expect(missing.status == 1 && missing.errors.contains("no key"))
        // File copy, byte-exact.
        let source = work + "/source.bin"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        try Data(bytes).write(to: URL(fileURLWithPath: source))
        let copy = try await ctl(["copy", source, "in/file.bin", "--create-path"], admin: admin)
        #expect(copy.status == 0, "\(copy)")
        #expect(FileManager.default.contents(atPath: work + "/root/in/file.bin") == Data(bytes))
        let again = try await ctl(["copy", source, "in/file.bin"], admin: admin)
        #expect(again.status == 1 && again.errors.contains("exists"))
        // Nested missing directories, a directory as the destination, a name outside ASCII
        // (kept whole by our guest, with a warning about Linux's daemon).
        let nested = try await ctl(["copy", source, "a/b/c/", "--create-path"], admin: admin)
        #expect(nested.status == 0 && !nested.errors.contains("warning"), "\(nested)")
        #expect(FileManager.default.contents(atPath: work + "/root/a/b/c/source.bin") == Data(bytes))
        let unicode = try await ctl(["copy", source, "a/b/c/ünï.bin"], admin: admin)
        #expect(unicode.status == 0 && unicode.errors.contains("warning: 'a/b/c/ünï.bin' is not plain ASCII"), "\(unicode)")
        #expect(FileManager.default.contents(atPath: work + "/root/a/b/c/ünï.bin") == Data(bytes))
        // KVP survives a guest restart.
        guest.kill(SIGTERM)
        #expect(await guest.finish().status == 0)
        guest = try await startGuest()
        var value = try await ctl(["kvp", "get", "Owner"], admin: admin)
        for _ in 0..<50 where value.status != 0 { value = try await ctl(["kvp", "get", "Owner"], admin: admin) }
        #expect(value.output == "Ünïcode ✓\n", "\(value)")
        guest.kill(SIGTERM)
        _ = await guest.finish()
        host.kill(SIGTERM)
        #expect(await host.finish().status == 0)
    }
}
