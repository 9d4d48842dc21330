import Foundation
import Testing
import VMBusCapture
import VMBusDevices
import VMBusGuest
import VMBusLoopback
import VMBusStorage
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

extension TsharkTests {
    /// A session with a SCSI controller and the heartbeat service: the dissector learns each
    /// channel's device from its offer and decodes the payloads by it — the integration
    /// service header, and the vstor packet with its SCSI command.
    @Test func theLuaDissectorDecodesPayloadsByTheChannelsDevice() async throws {
        let path = temporaryCapturePath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let sink = try CaptureSink(path: path, snapLength: 256, startWriter: false)
        let bus = try LoopbackBus(capture: sink)
        let storage = StorvspDevice(instance: GUID(data1: 0x5C51, data2: 9, data3: 9, data4: 9), disks: [0: try MemoryDisk(sectorCount: 2048)])
        storage.attach(to: bus.host)
        bus.host.register(storage)
        let heartbeat = HeartbeatHost()
        bus.host.register(heartbeat.device)
        let driver = StorvscDriver()
        bus.guest.register(driver)
        bus.guest.register(ICGuestDriver(HeartbeatGuest()))
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        let disk = await driver.firstDisk()
        try await disk.write(lba: 8, [UInt8](repeating: 7, count: 4096))
        _ = try await heartbeat.beat()
        try sink.close()

        let fields = ["vmbus.offer.class_name", "vmbus.pkt.device", "vmbus.ic.type", "vmbus.vstor.operation", "vmbus.scsi.opcode", "vmbus.scsi.lba",
                      "vmbus.scsi.blocks"]
        let (status, output, errors) = try await tshark(
            ["-X", "lua_script:" + Self.dissector, "-r", path, "-T", "fields", "-E", "separator=|"] + fields.flatMap { ["-e", $0] })
        #expect(status == 0, "\(errors)")
        #expect(!errors.contains("Lua") && !output.contains("Malformed"), "\(errors)")
        let rows = output.split(separator: "\n").map { $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init) }
        #expect(rows.contains { $0[0] == "synthetic SCSI controller" })
        #expect(rows.contains { $0[0] == "IC: heartbeat" })
        // The heartbeat channel: negotiation (type 0) and a heartbeat (type 1) each way.
        #expect(rows.filter { $0[1] == "IC: heartbeat" && $0[2] == "0" }.count == 2, "\(output)")
        #expect(rows.filter { $0[1] == "IC: heartbeat" && $0[2] == "1" }.count == 2, "\(output)")
        // The write: EXECUTE_SRB (3) with WRITE(10) at LBA 8 for 8 blocks.
        #expect(rows.contains { $0[1] == "synthetic SCSI controller" && $0[3] == "3" && $0[4] == "0x2a" && $0[5] == "8" && $0[6] == "8" }, "\(output)")
        #expect(rows.contains { $0[1] == "synthetic SCSI controller" && $0[3] == "7" }, "BEGIN_INITIALIZATION: \(output)")
    }
}
