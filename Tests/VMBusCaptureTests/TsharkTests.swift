import Foundation
import Testing
import VMBusCapture
import VMBusDevices
import VMBusGuest
import VMBusLoopback
import VMBusWire

/// Where tshark is, if it is installed (CI installs it; .ci/run).
let tsharkPath: String? = ["/usr/bin/tshark", "/usr/local/bin/tshark"].first { FileManager.default.isExecutableFile(atPath: $0) }

/// Runs tshark to its end on a thread of its own; returns its status and standard output.
func tshark(_ arguments: [String]) async throws -> (status: Int32, output: String, errors: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try #require(tsharkPath))
    process.arguments = arguments
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    return await withCheckedContinuation { (done: CheckedContinuation<(Int32, String, String), Never>) in
        Thread {
            let out = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let err = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            done.resume(returning: (process.terminationStatus, out, err))
        }.start()
    }
}

@Suite(.enabled(if: tsharkPath != nil, "tshark is not installed")) struct TsharkTests {
    /// A loopback session's capture, written to a file the caller removes.
    static func captureSession() async throws -> (String, CaptureFile) {
        let path = temporaryCapturePath()
        let sink = try CaptureSink(path: path, snapLength: 48, startWriter: false)
        let bus = try LoopbackBus(capture: sink)
        let device = EchoDevice(instance: GUID(data1: 0x75A2_0001, data2: 0, data3: 0, data4: 1))
        device.attach(to: bus.host)
        bus.host.register(device)
        let client = EchoClient(pages: RingPages(each: 4))
        bus.guest.register(client)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        _ = try await client.echo((0..<100).map { UInt8($0) })
        try sink.close()
        return (path, try CaptureFile(path: path))
    }

    @Test func tsharkReadsACaptureWithoutComplaint() async throws {
        let (path, capture) = try await Self.captureSession()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, output, errors) = try await tshark(["-r", path, "-T", "fields", "-e", "frame.interface_id", "-e", "frame.len", "-e", "frame.cap_len"])
        #expect(status == 0, "\(errors)")
        // tshark as root warns about running as root; anything else on standard error is a complaint.
        let complaints = errors.split(separator: "\n").filter { !$0.contains("root") && !$0.contains("dangerous") }
        #expect(complaints.isEmpty, "\(errors)")
        let rows = output.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
        #expect(rows.count == capture.records.count)
        // Every frame: interface 0, original length = header + original data, captured ≤ 24 + 48.
        for (row, record) in zip(rows, capture.records) {
            #expect(row == ["0", "\(24 + Int(record.header.originalLength))", "\(24 + record.data.count)"])
        }
    }
}

extension TsharkTests {
    /// Tools/wireshark/vmbus.lua, found from this file's place in the repository.
    static let dissector = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Tools/wireshark/vmbus.lua").path

    @Test func theLuaDissectorNamesEveryHeaderFieldAndMessage() async throws {
        let (path, capture) = try await Self.captureSession()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fields = ["vmbus.kind", "vmbus.direction", "vmbus.connection", "vmbus.relid", "vmbus.msg.name", "vmbus.pkt.transaction_id"]
        let (status, output, errors) = try await tshark(
            ["-X", "lua_script:" + Self.dissector, "-r", path, "-T", "fields"] + fields.flatMap { ["-e", $0] })
        #expect(status == 0, "\(errors)")
        #expect(!errors.contains("Lua"), "\(errors)")
        let rows = output.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map {
            $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        }
        #expect(rows.count == capture.records.count)
        for (row, record) in zip(rows, capture.records) {
            let h = record.header
            var name = ""
            var transaction = ""
            var reader = WireReader(record.data)
            if h.kind == .channelMessage, let type = try? reader.readUInt32() { name = ChannelMessageType(rawValue: type).name }
            if h.kind == .ringPacket, let descriptor = try? PacketDescriptor(from: &reader) { transaction = "\(descriptor.transactionID)" }
            #expect(row == ["\(h.kind.rawValue)", "\(h.direction.rawValue)", "\(h.connection)", "\(h.relid)", name, transaction])
        }
    }
}
