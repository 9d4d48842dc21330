import Foundation
import Testing
import VMBusCapture
import VMBusWire

/// `vmbus host --capture` and `vmbus guest --capture` around one echo session, read back with
/// the library and with `vmbus capture summary` / `decode`.
@Suite(.serialized) struct CaptureProcessTests {
    static func messages(_ file: CaptureFile) -> [(ChannelMessageType, CaptureDirection)] {
        file.records.compactMap { record in
            guard record.header.kind == .channelMessage, record.data.count >= 4 else { return nil }
            var reader = WireReader(record.data)
            return (try? reader.readUInt32()).map { (ChannelMessageType(rawValue: $0), record.header.direction) }
        }
    }

    @Test func bothSidesCaptureTheSameSessionAndTheToolsReadIt() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-capture-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let path = work + "/bus.sock"
        let hostFile = work + "/host.pcapng"
        let guestFile = work + "/guest.pcapng"
        let host = try Spawned([
            "host", "--listen", path, "--device", "echo", "--log-level", "warning", "--capture", hostFile, "--snaplen", "64",
        ])
        #expect(await host.line() == "vmbus host: admin socket \(path).admin")
        #expect(await host.line() == "vmbus host: listening on \(path)")
        let guest = try Spawned(["guest", "--connect", path, "--echo-rounds", "5", "--memory", "32M", "--capture", guestFile])
        let (status, _, errors) = await guest.finish()
        #expect(status == 0, "\(errors)")
        #expect(errors.contains("capture: ") && errors.contains(", 0 dropped, 1 connection(s) in \(guestFile)"), "\(errors)")
        host.kill(SIGTERM)
        let hostEnd = await host.finish()
        #expect(hostEnd.status == 0)
        #expect(hostEnd.errors.contains(", 0 dropped, 1 connection(s) in \(hostFile)"), "\(hostEnd.errors)")

        let hostCapture = try CaptureFile(path: hostFile)
        let guestCapture = try CaptureFile(path: guestFile)
        #expect(hostCapture.records.allSatisfy { $0.header.observer == .host && $0.header.connection == 1 })
        #expect(guestCapture.records.allSatisfy { $0.header.observer == .guest && $0.header.connection == 1 })
        // The same conversation from both ends: every channel message, each direction in the
        // same order. (How the two directions interleave is each side's view: the guest may
        // send its first GPADL before ALLOFFERS_DELIVERED, crossing it in flight.)
        for direction in [CaptureDirection.guestToHost, .hostToGuest] {
            #expect(Self.messages(hostCapture).filter { $0.1 == direction }.map(\.0)
                == Self.messages(guestCapture).filter { $0.1 == direction }.map(\.0))
        }
        #expect(Self.messages(hostCapture).count == Self.messages(guestCapture).count)
        #expect(Self.messages(hostCapture).prefix(2).map(\.0) == [.initiateContact, .versionResponse])
        // The substrate's frames: HELLO and WELCOME first, DOORBELLS before the OpenResult.
        let frames = hostCapture.records.filter { $0.header.kind == .substrateFrame }.map(\.header.port)
        #expect(frames.prefix(2) == [1, 2])
        #expect(frames.contains(5))
        // Five echoes: five requests and five completions on the echo channel, each way once.
        for capture in [hostCapture, guestCapture] {
            let packets = capture.records.filter { $0.header.kind == .ringPacket && $0.header.relid == 1 }
            #expect(packets.filter { $0.header.direction == .guestToHost }.count == 5)
            #expect(packets.filter { $0.header.direction == .hostToGuest }.count == 5)
        }
        #expect(hostCapture.statistics[1] == CaptureFile.Statistics(received: UInt64(hostCapture.records.count), dropped: 0))

        let summary = try await runVMBus(["capture", "summary", hostFile])
        #expect(summary.status == 0)
        #expect(summary.output.contains("connection 1: \(hostCapture.records.count) record(s)"), "\(summary.output)")
        #expect(summary.output.contains("guest→host INITIATE_CONTACT: 1"), "\(summary.output)")
        #expect(summary.output.contains("relid 1: packets guest→host 5, host→guest 5"), "\(summary.output)")

        let decoded = try await runVMBus(["capture", "decode", guestFile])
        #expect(decoded.status == 0)
        let lines = decoded.output.split(separator: "\n")
        #expect(lines.count == guestCapture.records.count)
        #expect(lines.first?.hasSuffix("guest→host conn 1 relid - FRAME HELLO version: 1, pageSize: 4096, memoryBytes: 33554432") == true,
                "\(lines.first ?? "")")
        #expect(lines.contains { $0.contains("INITIATE_CONTACT versionRequested: 6.0") })
        #expect(lines.contains { $0.contains("OPENCHANNEL_RESULT childRelID: 1") && $0.contains("status: 0x00000000") })
        #expect(lines.filter { $0.contains("relid 1 PACKET in-band") && $0.contains("completion-requested") }.count == 5)
        #expect(lines.filter { $0.contains("relid 1 PACKET completion") }.count == 5)
    }

    @Test func captureOptionsAreExplainedAndChecked() async throws {
        let help = try await runVMBus(["host", "--help"])
        #expect(help.output.contains("--capture <file.pcapng>") && help.output.contains("--snaplen <bytes>"), "\(help.output)")
        let guestHelp = try await runVMBus(["guest", "--help"])
        #expect(guestHelp.output.contains("--capture <file.pcapng>") && guestHelp.output.contains("--snaplen <bytes>"))
        let bad = try await runVMBus(["guest", "--connect", "/nonexistent", "--capture", "/tmp/x.pcapng", "--snaplen", "-1"], errors: true)
        #expect(bad.status != 0)
        let missing = try await runVMBus(["capture", "decode", "/nonexistent/file.pcapng"], errors: true)
        #expect(missing.status != 0 && missing.output.contains("cannot read"), "\(missing.output)")
    }

    /// `vmbus ctl capture start|stop` on a host started without --capture, while a guest runs
    /// echo traffic: the file holds packets of the running session (no negotiation: it
    /// started later), a second start while one runs is refused, and a second capture after
    /// the stop goes to its own file.
    @Test func ctlCaptureTogglesCaptureOnARunningHost() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-ctl-capture-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let path = work + "/bus.sock"
        let admin = path + ".admin"
        let host = try Spawned(["host", "--listen", path, "--device", "echo", "--log-level", "warning"])
        #expect(await host.line() == "vmbus host: admin socket \(admin)")
        #expect(await host.line() == "vmbus host: listening on \(path)")
        let guest = try Spawned(["guest", "--connect", path, "--traffic", "--traffic-rate", "500", "--memory", "32M"])
        #expect(await guest.line()?.hasPrefix("guest: connected") == true)
        #expect(try await ctl(["capture", "status"], admin: admin).output.contains("not capturing"))

        let first = work + "/first.pcapng"
        let start = try await ctl(["capture", "start", first, "--snaplen", "96"], admin: admin)
        #expect(start.status == 0 && start.output.contains("capturing into \(first) (snap length 96)"), "\(start.output)\(start.errors)")
        let again = try await ctl(["capture", "start", work + "/other.pcapng"], admin: admin)
        #expect(again.status == 1 && again.errors.contains("in progress"), "\(again.errors)")
        // A second guest's whole session runs inside the capture, beside the first guest's
        // traffic.
        let second = try Spawned(["guest", "--connect", path, "--echo-rounds", "5", "--memory", "32M"])
        #expect(await second.finish().status == 0)
        #expect(try await ctl(["capture", "status"], admin: admin).output.contains("capturing into \(first)"))
        let stop = try await ctl(["capture", "stop"], admin: admin)
        #expect(stop.status == 0 && stop.output.contains("record(s)") && stop.output.contains("into \(first)"), "\(stop.output)\(stop.errors)")
        let captured = try CaptureFile(path: first)
        let running = captured.records.filter { $0.header.connection == 1 }
        let whole = captured.records.filter { $0.header.connection == 2 }
        #expect(running.contains { $0.header.kind == .ringPacket }, "the running guest's echoes")
        #expect(!running.contains { $0.header.kind == .channelMessage && $0.data.first == UInt8(ChannelMessageType.initiateContact.rawValue) },
            "the capture began mid-session")
        #expect(whole.contains { $0.header.kind == .channelMessage && $0.data.first == UInt8(ChannelMessageType.initiateContact.rawValue) })
        #expect(whole.contains { $0.header.kind == .ringPacket })
        #expect(captured.records.allSatisfy { $0.data.count <= 96 })
        let stopAgain = try await ctl(["capture", "stop"], admin: admin)
        #expect(stopAgain.status == 1 && stopAgain.errors.contains("no capture is in progress"))

        let later = work + "/second.pcapng"
        #expect(try await ctl(["capture", "start", later], admin: admin).status == 0)
        #expect(try await Spawned(["guest", "--connect", path, "--echo-rounds", "5", "--memory", "32M"]).finish().status == 0)
        #expect(try await ctl(["capture", "stop"], admin: admin).status == 0)
        #expect(try CaptureFile(path: later).records.contains { $0.header.connection == 3 && $0.header.kind == .ringPacket })
        guest.kill(SIGTERM)
        #expect(await guest.finish().status == 0)
        host.kill(SIGTERM)
        #expect(await host.finish().status == 0)
    }
}
