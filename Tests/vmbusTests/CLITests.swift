import ArgumentParser
import Testing
import VMBusWire

@testable import vmbus

@Suite struct CLITests {
    @Test func hexInputAcceptsCommonDumpFormats() async throws {
        #expect(try parseHex("0x01 02:03,0A\nff") == [1, 2, 3, 10, 255])
        #expect(throws: CLIError.self) { try parseHex("abc") }
        #expect(throws: CLIError.self) { try parseHex("0g") }
    }

    @Test func versionsParseInEitherForm() async {
        #expect(VersionArgument(argument: "5.3")?.version == .win10_5_3)
        #expect(VersionArgument(argument: "0x60000")?.version == .copper)
        #expect(VersionArgument(argument: "five") == nil)
    }

    @Test func decodedMessagesShowTheirFields() async throws {
        let bytes = try ChannelMessage.openResult(OpenResult(childRelID: 7, openID: 8, status: .unsuccessful)).encode()
        let text = describe(try ChannelMessage.parse(bytes, version: .win8))
        #expect(text.contains("openResult"))
        #expect(text.contains("childRelID: 7") && text.contains("openID: 8"))
        #expect(text.contains("status: 0xc0000001"))
    }

    @Test func commandsParseTheirArguments() async throws {
        let command = try VMBusCommand.parseAsRoot(["decode", "message", "0300000000000000", "--version", "5.3"])
        #expect(command is DecodeMessage)
        #expect(throws: (any Error).self) { try VMBusCommand.parseAsRoot(["decode", "message", "00", "--version", "x"]) }
    }
}

import Foundation

@Suite struct RingFileToolTests {
    /// `vmbus ring send` and `vmbus ring recv` as two processes on one ring-pair file: 4 MiB of
    /// data arrive byte-exactly through a 64 KiB ring (so the writer blocks and resumes often).
    @Test func twoProcessesStreamThroughARingFile() async throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("vmbus")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            Issue.record("vmbus binary not found next to the test bundle at \(binary.path)")
            return
        }
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("swift-vmbus-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let pair = directory.appendingPathComponent("rings").path
        let input = directory.appendingPathComponent("in")
        let output = directory.appendingPathComponent("out")
        var generator = SystemRandomNumberGenerator()
        let data = Data((0..<(4 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        try data.write(to: input)
        #expect(FileManager.default.createFile(atPath: output.path, contents: nil))

        func process(_ arguments: [String]) -> Process {
            let p = Process()
            p.executableURL = binary
            p.arguments = arguments
            return p
        }
        let initialise = process(["ring", "init", pair, "--ring-size", "65536"])
        initialise.standardOutput = FileHandle.nullDevice
        try initialise.run()
        await offThePool { initialise.waitUntilExit() }
        #expect(initialise.terminationStatus == 0)

        let receiver = process(["ring", "recv", pair])
        receiver.standardOutput = try FileHandle(forWritingTo: output)
        let sender = process(["ring", "send", pair, "--packet-size", "3000"])
        sender.standardInput = try FileHandle(forReadingFrom: input)
        sender.standardError = FileHandle.nullDevice
        try receiver.run()
        try sender.run()
        await offThePool {
            sender.waitUntilExit()
            receiver.waitUntilExit()
        }
        #expect(sender.terminationStatus == 0 && receiver.terminationStatus == 0)
        #expect(try Data(contentsOf: output) == data)
    }
}

@Suite struct DemoTests {
    /// `vmbus demo` runs a device's whole life on the in-process bus and reports it.
    @Test func theDemoRunsEndToEndWithoutMistakes() async throws {
        let (status, output) = try await runVMBus(
            ["demo", "--in-process", "--devices", "3", "--rounds", "20", "--sub-channels", "2", "--monitor", "--trace"], errors: false)
        #expect(status == 0)
        #expect(output.contains("bound: relid 1 → echo, relid 2 → echo, relid 3 → echo"))
        #expect(output.contains("host enabled 2"))
        #expect(output.contains("guest mistakes 0, host mistakes 0"))
        #expect(output.contains("guest → host (conn 4): INITIATE_CONTACT"))
        #expect(output.contains("monitorAllocated: true") || output.contains("monitorFlags: 1"))
    }

    /// The default demo: a host child process and this guest, for one second of traffic.
    @Test func theTwoProcessDemoEndsCleanlyByItself() async throws {
        let (status, output) = try await runVMBus(["demo", "--seconds", "1"], errors: false)
        #expect(status == 0, "\(output)")
        #expect(output.contains("connected at VMBus 6.0"))
        #expect(output.contains("every byte checked"))
        #expect(output.contains("started the successor, pid ") && output.contains("taken over by the new host"), "the takeover step")
        #expect(output.contains("host enabled 2, offered as relids ["))
        #expect(output.contains("heartbeat answered"))
        #expect(output.contains("written by the host"))
        #expect(output.contains("fcopy: the guest's file holds: hello from the host"))
        #expect(output.contains("vss freeze: ok"))
        #expect(output.contains("done: guest disconnected, host exited with status 0, socket removed"))
    }

    @Test func badDemoOptionsAreRefused() async {
        #expect(throws: (any Error).self) { try VMBusCommand.parseAsRoot(["demo", "--devices", "0"]) }
        #expect(throws: (any Error).self) { try VMBusCommand.parseAsRoot(["demo", "--rounds", "0"]) }
        #expect(throws: (any Error).self) { try VMBusCommand.parseAsRoot(["demo", "--seconds", "0"]) }
        #expect(throws: (any Error).self) { try VMBusCommand.parseAsRoot(["guest", "--connect", "x", "--memory", "12"]) }
        #expect(throws: (any Error).self) { try VMBusCommand.parseAsRoot(["host", "--listen", "x", "--device", "disk"]) }
        #expect(throws: (any Error).self) { try VMBusCommand.parseAsRoot(["host", "--listen", "x", "--log-level", "loud"]) }
    }

    /// The uio NIC: the export needs a backend for its frames; the guest drives either a
    /// socket or a sysfs tree, and on a sysfs tree only the NIC.
    @Test func uioNetworkOptionsAreChecked() throws {
        #expect(throws: (any Error).self) { try VMBusCommand.parseAsRoot(["host", "--listen", "x", "--uio-export", "d", "--uio-device", "net"]) }
        _ = try VMBusCommand.parseAsRoot(["host", "--listen", "x", "--uio-export", "d", "--uio-device", "net", "--net", "switch"])
        #expect(throws: (any Error).self) { try VMBusCommand.parseAsRoot(["guest"]) }
        #expect(throws: (any Error).self) { try VMBusCommand.parseAsRoot(["guest", "--connect", "x", "--sysfs", "d", "--net", "tap:a"]) }
        #expect(throws: (any Error).self) { try VMBusCommand.parseAsRoot(["guest", "--sysfs", "d"]) }
        _ = try VMBusCommand.parseAsRoot(["guest", "--sysfs", "d", "--net", "tap:a"])
    }
}

/// `vmbus ring` commands agree with each other: `init` leaves nothing of an old file, `recv`
/// takes every packet `send` writes, and `send`'s defaults suit every ring `init` makes.
@Suite struct RingToolConsistencyTests {
    func scratch() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-ring-\(UInt64.random(in: 0...UInt64.max))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func run(_ arguments: [String], input: [UInt8]? = nil) async throws -> (status: Int32, output: String, errors: String) {
        try await Spawned(arguments, input: input).finish()
    }

    /// Old packets and an old control page must not survive in the new rings, whatever the old
    /// ring size was.
    @Test(arguments: [65536, 16384])
    func initOverAnOldFileLeavesItExactlyAsANewOne(oldRingSize: Int) async throws {
        let directory = try self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let old = directory + "/old", fresh = directory + "/fresh"
        #expect(try await self.run(["ring", "init", old, "--ring-size", "\(oldRingSize)"]).status == 0)
        let sent = try await self.run(["ring", "send", old, "--packet-size", "3000"], input: [UInt8](repeating: 0xAB, count: 10_000))
        #expect(sent.status == 0, "\(sent.errors)")
        #expect(try await self.run(["ring", "init", old, "--ring-size", "16384"]).status == 0)
        #expect(try await self.run(["ring", "init", fresh, "--ring-size", "16384"]).status == 0)
        let reused = try Data(contentsOf: URL(fileURLWithPath: old))
        let new = try Data(contentsOf: URL(fileURLWithPath: fresh))
        #expect(reused.count == new.count)
        #expect(reused == new, "\(zip(reused, new).filter { $0 != $1 }.count) bytes differ from a fresh file")
    }

    /// Packets above hvsock's 16 KiB data limit, which `send` writes into a large ring.
    @Test func recvTakesThePacketsSendWritesAboveSixteenKiB() async throws {
        let directory = try self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pair = directory + "/rings"
        #expect(try await self.run(["ring", "init", pair, "--ring-size", "65536"]).status == 0)
        let data = (0..<45_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8) }
        // 20000 + 20000 + 5000 and the end packet fit the 60 KiB data area: send ends by itself.
        let sent = try await self.run(["ring", "send", pair, "--packet-size", "20000"], input: data)
        #expect(sent.status == 0, "\(sent.errors)")
        let received = try await Spawned(["ring", "recv", pair]).finishBytes()
        #expect(received.status == 0, "\(received.errors)")
        #expect(received.output == data)
    }

    /// The default packet size fits the smallest ring (8192 bytes): send and recv stream
    /// through it with no options.
    @Test func theDefaultPacketSizeFitsTheSmallestRing() async throws {
        let directory = try self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pair = directory + "/rings"
        #expect(try await self.run(["ring", "init", pair, "--ring-size", "8192"]).status == 0)
        // Less than a pipe's buffer each way, so neither process waits on this test's reads.
        let data = (0..<40_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let receiver = try Spawned(["ring", "recv", pair])
        let sender = try Spawned(["ring", "send", pair], input: data)
        let sent = await sender.finish()
        #expect(sent.status == 0, "\(sent.errors)")
        #expect(sent.errors.contains("sent 40000 bytes in 11 packets"), "\(sent.errors)")
        let received = await receiver.finishBytes()
        #expect(received.status == 0, "\(received.errors)")
        #expect(received.output == data)
    }
}

extension Spawned {
    /// ``finish()`` with standard output as bytes.
    func finishBytes() async -> (status: Int32, output: [UInt8], errors: String) {
        await offThePool {
            let output = [UInt8](self.output.fileHandleForReading.readDataToEndOfFile())
            let errors = String(decoding: self.errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            self.process.waitUntilExit()
            return (self.process.terminationStatus, output, errors)
        }
    }
}

/// Runs the `vmbus` built next to the test bundle to its end: its exit status and standard
/// output (with standard error too unless `errors` is false).
func runVMBus(_ arguments: [String], errors: Bool = true) async throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("vmbus")
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    if errors { process.standardError = pipe }
    try process.run()
    let output = await offThePool {
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return output
    }
    return (process.terminationStatus, output)
}

@Suite struct BenchRingCLITests {
    func run(_ arguments: [String]) async throws -> (status: Int32, output: String) { try await runVMBus(arguments) }

    /// A short time-based run reports both reader rows and the one-thread cost for each size
    /// (each run itself checks that the reader saw every packet), and a payload that cannot
    /// fit the ring is refused with a reason.
    @Test func aShortRunReportsEveryCaseAndBadSizesAreRefused() async throws {
        let (status, output) = try await self.run(["bench", "ring", "--seconds", "0.02", "--runs", "1", "--sizes", "64", "16384", "--ring-only", "--json"])
        #expect(status == 0, "\(output)")
        for size in [64, 16384] {
            for name in ["ring copy", "ring in-place", "copy bound", "one thread"] {
                #expect(output.contains("\"case\": \"\(name)\", \"payload\": \(size)"), "\(name) \(size): \(output)")
            }
        }
        #expect(!output.contains("\"packets_per_s\": 0,"))
        let refused = try await self.run(["bench", "ring", "--ring-size", "8192", "--sizes", "16384"])
        #expect(refused.status != 0 && refused.output.contains("does not fit"), "\(refused.output)")
    }
}

extension BenchRingCLITests {
    /// Two guest processes with two channels each echo through one host and report a row.
    @Test func aSmallScaleRunReportsARow() async throws {
        let (status, output) = try await self.run([
            "bench", "scale", "--guests", "2", "--channels", "2", "--seconds", "0.3", "--idle-seconds", "0.2", "--memory", "4", "--json",
        ])
        #expect(status == 0, "\(output)")
        #expect(output.contains("\"guests\": 2, \"channels_per_guest\": 2"), "\(output)")
        #expect(!output.contains("\"round_trips_per_s\": 0,"), "\(output)")
    }
}
