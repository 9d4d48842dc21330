import Foundation
import Testing
import VMBusCapture
import VMBusDevices
import VMBusHost
import VMBusLocal
import VMBusMemory
import VMBusReplay
import VMBusWire

/// `ReplaySession`: a guest's captured session, played again against a live host of the same
/// devices, gets every answer it got; a capture edited to carry a malformed message makes the
/// host fail that channel as it fails it for a live guest, and nothing else.
@Suite(.serialized) struct ReplayTests {
    static func socketPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-replay-\(UInt32.random(in: 0...UInt32.max)).sock").path
    }

    /// A host with two echo devices, the second driven from its interrupt handler.
    static func host(_ path: String) throws -> LocalHost {
        let host = try LocalHost(path: path) { bus in
            (0..<2).map { n in
                let device = EchoDevice(instance: GUID(data1: 0x5E_0000 + UInt32(n), data2: 1, data3: 2, data4: 3), interruptDriven: n == 1)
                device.attach(to: bus)
                return device
            }
        }
        host.start()
        return host
    }

    /// A guest session on `path`, captured from the guest's side: both echo channels opened,
    /// rounds of varying length on each, then a goodbye. Returns the capture's path.
    static func captureSession(_ path: String) async throws -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-replay-\(UUID().uuidString).pcapng").path
        let sink = try CaptureSink(path: file, snapLength: 65536)
        let guest = try LocalGuest.connect(path: path, memoryBytes: 8 << 20, capture: sink)
        let client = EchoClient()
        guest.bus.register(client)
        _ = try await guest.bus.connect()
        await guest.bus.settle()
        let relids = client.devices.map(\.relid)
        try #require(relids.count == 2)
        for round in 0..<40 {
            for relid in relids {
                let bytes = (0..<(round * 37 % 900 + 1)).map { UInt8(truncatingIfNeeded: $0 &+ round) }
                #expect(try await client.echo(bytes, device: relid) == bytes)
            }
        }
        guest.disconnect()
        _ = await guest.ended()
        _ = try sink.close()
        return file
    }

    @Test func aReplayedSessionGetsEveryAnswerItGot() async throws {
        let path = Self.socketPath()
        let host = try Self.host(path)
        defer { host.stop() }
        let file = try await Self.captureSession(path)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let capture = try CaptureFile(path: file)

        let outcomes = try ReplaySession.replayGuests(capture, path: path, timeout: .seconds(20))
        let outcome = try #require(outcomes.first)
        #expect(outcomes.count == 1)
        #expect(outcome.differences.isEmpty, "\(outcome.differences)")
        // Every echo came back: 80 requests and 80 answers, plus the control plane.
        let answers = capture.records.filter { $0.header.kind == .ringPacket && $0.header.direction == .hostToGuest }.count
        #expect(answers == 80)
        #expect(outcome.compared > answers && outcome.skipped == 0)
        #expect(outcome.sent > 80)
    }

    /// The capture's OPENCHANNEL of the first echo channel edited to split its rings one page
    /// in — a layout the host refuses (each ring needs a control page and a data page).
    @Test func aMalformedOpenFailsThatChannelAsItDoesLive() async throws {
        let path = Self.socketPath()
        let host = try Self.host(path)
        defer { host.stop() }
        let file = try await Self.captureSession(path)
        defer { try? FileManager.default.removeItem(atPath: file) }
        var bytes = [UInt8](try #require(FileManager.default.contents(atPath: file)))
        let capture = try CaptureFile(bytes: bytes)
        let opens = capture.records.enumerated().filter { _, record in
            record.header.kind == .channelMessage && record.header.direction == .guestToHost
                && record.data.prefix(4).elementsEqual([5, 0, 0, 0])
        }
        let (index, open) = try #require(opens.first)
        let relid = open.header.relid == 0 ? UInt32(open.data[open.data.startIndex + 8]) : open.header.relid
        // The record's data lies in the file at its slice's indices: patch the downstream page
        // offset (message bytes 24..<28) there.
        let at = open.data.startIndex + 24
        #expect(bytes[at] > 1)
        bytes.replaceSubrange(at..<(at + 4), with: [1, 0, 0, 0])
        let edited = try CaptureFile(bytes: bytes)
        #expect(edited.records[index].data[at] == 1)

        let outcome = try #require(try ReplaySession.replayGuests(edited, path: path, timeout: .seconds(20)).first)
        // Two differences, both that channel's: the host gives it no doorbells, and answers the
        // open with STATUS_UNSUCCESSFUL — what a live guest gets for that layout
        // (HostConnection.receiveOpen refuses rings of fewer than two pages).
        #expect(outcome.differences.count == 2, "\(outcome.differences)")
        let doorbells = try #require(outcome.differences.first)
        #expect(doorbells.stream == .control && doorbells.expected.hasPrefix("frame DOORBELLS \(Self.hex(relid))"), "\(doorbells)")
        #expect(doorbells.got == nil, "\(doorbells)")
        let result = try #require(outcome.differences.last)
        #expect(result.stream == .control)
        #expect(result.expected.hasPrefix("OPENCHANNEL_RESULT \(Self.hex(relid))"), "\(result)")
        #expect(result.got?.hasPrefix("OPENCHANNEL_RESULT \(Self.hex(relid))") == true, "\(result)")
        #expect(result.got?.contains(Self.hex(NTStatus.unsuccessful.rawValue)) == true, "\(result)")
        // That channel's 40 echoes each way were not compared; the other channel's all were.
        #expect(outcome.skipped == 80, "\(outcome.skipped)")

        // The host goes on: the unedited capture replays as captured.
        let again = try #require(try ReplaySession.replayGuests(capture, path: path, timeout: .seconds(20)).first)
        #expect(again.differences.isEmpty, "\(again.differences)")
    }

    /// A 32-bit value as its little-endian bytes in hex, as the report shows message fields.
    static func hex(_ value: UInt32) -> String {
        (0..<4).map { String(format: "%02x", (value >> (8 * $0)) & 0xFF) }.joined()
    }

    @Test func aCaptureThatStartedMidSessionOrWasCutIsRefused() throws {
        // No HELLO for connection 7: nothing to replay from.
        var records = [CaptureFile.Record]()
        records.append(CaptureFile.Record(
            header: CaptureRecordHeader(kind: .channelMessage, direction: .guestToHost, observer: .host, connection: 7, originalLength: 8),
            timestamp: 0, data: [3, 0, 0, 0, 0, 0, 0, 0][...]))
        var capture = try CaptureFile(bytes: Pcapng.sectionHeader())
        capture.records = records
        #expect(throws: ReplayScript.Unreplayable.self) { try ReplayScript(capture: capture, connection: 7, role: .guest) }
        #expect(throws: ReplayScript.Unreplayable.self) { try ReplaySession.replayGuests(capture, path: "/nonexistent") }
        // A HELLO announcing memory no replay can create (the file is input like any other).
        for bytes in [UInt64.max & ~4095, 0, 4097] {
            let hello = SubstrateFrame.hello(version: SubstrateFrame.version, pageSize: 4096, memoryBytes: bytes).encode()
            capture.records = [CaptureFile.Record(
                header: CaptureRecordHeader(
                    kind: .substrateFrame, direction: .guestToHost, observer: .guest, connection: 7, port: 1, originalLength: UInt32(hello.count)),
                timestamp: 0, data: hello[...])]
            #expect(ReplayScript.connections(in: capture) == [7])
            #expect(throws: ReplayScript.Unreplayable.self) { try ReplayScript(capture: capture, connection: 7, role: .guest) }
        }
        // A cut record the replaying side must send.
        let cut = SubstrateFrame.hello(version: SubstrateFrame.version, pageSize: 4096, memoryBytes: 1 << 20).encode()
        capture.records = [
            CaptureFile.Record(
                header: CaptureRecordHeader(
                    kind: .substrateFrame, direction: .guestToHost, observer: .guest, connection: 7, port: 1, originalLength: UInt32(cut.count)),
                timestamp: 0, data: cut[...]),
            CaptureFile.Record(
                header: CaptureRecordHeader(
                    kind: .ringPacket, direction: .guestToHost, observer: .guest, flags: .truncated, connection: 7, relid: 1, originalLength: 4096),
                timestamp: 1, data: [UInt8](repeating: 0, count: 64)[...]),
        ]
        #expect(throws: ReplayScript.Unreplayable.self) { try ReplayScript(capture: capture, connection: 7, role: .guest) }
        // For the host it is an answer: compared as far as the capture kept it.
        let steps = try ReplayScript(capture: capture, connection: 7, role: .host).steps
        #expect(steps.count == 2 && steps.last?.action == .expect && steps.last?.cut == true)
    }
}
