import Foundation
import Testing
import VMBusMemory
import VMBusWire

/// The `vmbus` binary next to the test bundle.
func vmbusBinary() -> URL {
    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("vmbus")
}

/// A spawned `vmbus` process with its standard output readable line by line.
final class Spawned {
    let process = Process()
    let output = Pipe()
    let errors = Pipe()

    /// - Parameter input: bytes for standard input (then end of file); `nil` inherits ours.
    init(_ arguments: [String], input: [UInt8]? = nil) throws {
        self.process.executableURL = vmbusBinary()
        self.process.arguments = arguments
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

    /// The next line of standard output (blocking), or `nil` at its end.
    func line() -> String? { Self.line(self.output) }

    /// The next line of standard error.
    func errorLine() -> String? { Self.line(self.errors) }

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
    func finish() -> (status: Int32, output: String, errors: String) {
        let output = String(decoding: self.output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errors = String(decoding: self.errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        self.process.waitUntilExit()
        return (self.process.terminationStatus, output, errors)
    }

    func kill(_ signal: Int32) { Foundation.kill(self.process.processIdentifier, signal) }
}

/// A host process listening on a fresh socket; returns once it accepts guests.
func startHost(_ devices: String = "echo:2") throws -> (Spawned, String) {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-\(UInt32.random(in: 0...UInt32.max)).sock").path
    let host = try Spawned(["host", "--listen", path, "--device", devices, "--device", "ic", "--log-level", "warning"])
    #expect(host.line() == "vmbus host: admin socket \(path).admin")
    #expect(host.line() == "vmbus host: listening on \(path)")
    return (host, path)
}

@Suite(.serialized) struct TwoProcessTests {
    init() throws {
        try #require(FileManager.default.isExecutableFile(atPath: vmbusBinary().path), "vmbus binary not built")
    }

    @Test func aHostAndAGuestComeUpAndListTheBus() throws {
        let (host, path) = try startHost()
        let guest = try Spawned(["guest", "--connect", path, "--list", "--json", "--memory", "32M"])
        let (status, output, errors) = guest.finish()
        #expect(status == 0, "\(errors)")
        #expect(output.contains("\"relid\": 1") && output.contains("\"relid\": 2"))
        #expect(output.contains("\"class_name\": \"swift-vmbus echo\"") && output.contains("\"driver\": \"echo\""))
        #expect(output.contains("\"ring_out_bytes\": 65536"))
        host.kill(SIGTERM)
        #expect(host.finish().status == 0)
        #expect(!FileManager.default.fileExists(atPath: path), "the socket file is removed")
    }

    @Test func echoTrafficIsByteExactAcrossProcesses() throws {
        let (host, path) = try startHost("echo:3")
        let guest = try Spawned(["guest", "--connect", path, "--echo-rounds", "300", "--memory", "32M"])
        let (status, output, errors) = guest.finish()
        #expect(status == 0, "\(errors)")
        #expect(output.split(separator: "\n").filter { $0.hasSuffix("300 round trips byte-exact") }.count == 3)
        host.kill(SIGTERM)
        _ = host.finish()
    }

    @Test func aKilledGuestIsReleasedAndTheNextGuestIsServed() throws {
        let (host, path) = try startHost()
        let doomed = try Spawned(["guest", "--connect", path, "--traffic", "--memory", "32M"])
        #expect(doomed.line()?.hasPrefix("guest: connected") == true)
        doomed.kill(SIGKILL)
        #expect(doomed.finish().status != 0)
        let next = try Spawned(["guest", "--connect", path, "--echo-rounds", "20", "--memory", "32M"])
        let (status, _, errors) = next.finish()
        #expect(status == 0, "\(errors)")
        host.kill(SIGTERM)
        #expect(host.finish().status == 0)
    }

    @Test func aKilledHostMakesTheGuestExitWithAClearError() throws {
        let (host, path) = try startHost()
        let guest = try Spawned(["guest", "--connect", path, "--traffic", "--memory", "32M"])
        #expect(guest.line()?.hasPrefix("guest: connected") == true)
        host.kill(SIGKILL)
        _ = host.finish()
        let (status, _, errors) = guest.finish()
        #expect(status == 1)
        #expect(errors.contains("host gone"))
        LocalSocket.removeFile(path: path)
    }

    @Test func badDatagramsFromARawClientCloseOnlyThatConnection() throws {
        let (host, path) = try startHost()
        for garbage: [UInt8] in [[0xFF], [1, 0, 0, 0, 0, 0, 0, 0], [4, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]] {
            let raw = try LocalSocket.connect(path: path)
            try raw.send(garbage)
            var ended = false
            for _ in 0..<3 where !ended { ended = try raw.receive().isEndOfStream }
            #expect(ended, "the host closes a connection that sends \(garbage)")
        }
        let guest = try Spawned(["guest", "--connect", path, "--echo-rounds", "5", "--memory", "32M"])
        #expect(guest.finish().status == 0)
        host.kill(SIGTERM)
        #expect(host.finish().status == 0)
    }
}

/// Runs `vmbus ctl` and returns its status and output.
func ctl(_ arguments: [String], admin: String) throws -> (status: Int32, output: String, errors: String) {
    let process = try Spawned(["ctl"] + arguments + ["--host", admin])
    return process.finish()
}

@Suite(.serialized) struct IntegrationServiceProcessTests {
    @Test func heartbeatKVPAndFileCopyAcrossProcesses() throws {
        let (host, path) = try startHost("echo")
        let admin = path + ".admin"
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-ic-\(UInt32.random(in: 0...UInt32.max))").path
        defer { try? FileManager.default.removeItem(atPath: work) }
        func startGuest() throws -> Spawned {
            let guest = try Spawned(["guest", "--connect", path, "--memory", "32M", "--kvp-dir", work + "/kvp", "--fcopy-root", work + "/root"])
            #expect(guest.line()?.hasPrefix("guest: connected") == true)
            return guest
        }
        var guest = try startGuest()
        // The services negotiate right after the channels open; status shows them.
        var status = try ctl(["status"], admin: admin)
        for _ in 0..<50 where !status.output.contains("vss: open") { status = try ctl(["status"], admin: admin) }
        #expect(status.output.contains("kvp: open, framework 3.0, version 4.0"), "\(status)")
        let beat = try ctl(["heartbeat"], admin: admin)
        #expect(beat.status == 0 && beat.output.contains("heartbeat answered"), "\(beat)")
        #expect(try ctl(["kvp", "set", "Owner", "Ünïcode ✓"], admin: admin).status == 0)
        #expect(try ctl(["kvp", "get", "Owner"], admin: admin).output == "Ünïcode ✓\n")
        let missing = try ctl(["kvp", "get", "Nope"], admin: admin)
        #expect(missing.status == 1 && missing.errors.contains("no key"))
        // File copy, byte-exact.
        let source = work + "/source.bin"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        try Data(bytes).write(to: URL(fileURLWithPath: source))
        let copy = try ctl(["copy", source, "in/file.bin", "--create-path"], admin: admin)
        #expect(copy.status == 0, "\(copy)")
        #expect(FileManager.default.contents(atPath: work + "/root/in/file.bin") == Data(bytes))
        let again = try ctl(["copy", source, "in/file.bin"], admin: admin)
        #expect(again.status == 1 && again.errors.contains("exists"))
        // KVP survives a guest restart.
        guest.kill(SIGTERM)
        #expect(guest.finish().status == 0)
        guest = try startGuest()
        var value = try ctl(["kvp", "get", "Owner"], admin: admin)
        for _ in 0..<50 where value.status != 0 { value = try ctl(["kvp", "get", "Owner"], admin: admin) }
        #expect(value.output == "Ünïcode ✓\n", "\(value)")
        guest.kill(SIGTERM)
        _ = guest.finish()
        host.kill(SIGTERM)
        #expect(host.finish().status == 0)
    }
}
