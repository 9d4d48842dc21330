import Foundation
import Testing

/// `vmbus demo --capture`: one file of the guests' side of the whole demo — the host's
/// replacement included — that tshark reads through the repository's dissector with nothing
/// malformed, naming every device and decoding their payloads.
@Suite(.serialized) struct DemoCaptureTests {
    static let tshark = ["/usr/bin/tshark", "/usr/local/bin/tshark"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static let dissector = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Tools/wireshark/vmbus.lua").path

    @Test(.enabled(if: tshark != nil, "tshark is not installed")) func theDemosCaptureDecodesFullyWithTheDissector() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-demo-\(UInt32.random(in: 0...UInt32.max)).pcapng").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        // A 256 KiB transfer's PFN list comes before its SCSI command: keep whole packets.
        let (status, output) = try await runVMBus(["demo", "--seconds", "1", "--capture", file, "--snaplen", "4096"], errors: false)
        #expect(status == 0, "\(output)")
        #expect(output.contains("capture: ") && output.contains("record(s) of 4 guest connection(s) in \(file)"), "\(output)")

        let fields = ["vmbus.connection", "vmbus.msg.name", "vmbus.offer.class_name", "vmbus.pkt.device", "vmbus.ic.type", "vmbus.nvsp.type",
                      "vmbus.scsi.opcode", "vmbus.pipe.size", "_ws.expert.message", "vmbus.direction", "ip.src", "ip.dst", "udp.dstport",
                      "vmbus.rndis.type", "vmbus.drops.lost"]
        let tshark = try Spawned(
            ["-X", "lua_script:" + Self.dissector, "-r", file, "-T", "fields", "-E", "separator=|"] + fields.flatMap { ["-e", $0] },
            executable: URL(fileURLWithPath: try #require(Self.tshark)))
        let (code, rows, errors) = await tshark.finish()
        #expect(code == 0, "\(errors)")
        #expect(!errors.contains("Lua") && !rows.contains("Malformed") && !rows.contains("malformed"), "\(errors)")
        let table = rows.split(separator: "\n").map { $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init) }
        #expect(Set(table.map { $0[0] }) == ["1", "2", "3", "4"], "the demo's four guest connections")
        #expect(table.filter { $0[1] == "INITIATE_CONTACT" }.count == 4)
        let offered = Set(table.map { $0[2] })
        for name in ["swift-vmbus echo", "synthetic network adapter", "synthetic SCSI controller", "IC: heartbeat", "IC: guest file copy", "IC: VSS"] {
            #expect(offered.contains(name), "\(name) among \(offered.sorted())")
        }
        #expect(offered.contains { $0.hasPrefix("hvsock (service ") }, "the hvsock connection's offer")
        let devices = Set(table.map { $0[3] })
        for name in ["swift-vmbus echo", "synthetic network adapter", "synthetic SCSI controller", "IC: heartbeat"] {
            #expect(devices.contains(name), "packets of \(name) among \(devices.sorted())")
        }
        #expect(table.contains { $0[3] == "IC: heartbeat" && $0[4] == "1" }, "a heartbeat")
        #expect(table.contains { $0[3] == "synthetic network adapter" && $0[5] == "107" }, "an RNDIS packet")
        #expect(table.contains { $0[3] == "synthetic SCSI controller" && $0[6] == "0x2a" }, "a WRITE(10)")
        #expect(table.contains { $0[3].hasPrefix("hvsock") && !$0[7].isEmpty }, "hvsock data")
        // The NIC guests' frames, from the RNDIS messages in their buffers, go through
        // Wireshark's own Ethernet, IP and UDP dissectors: every one of the 5000 datagrams
        // once as guest 2 sent it and once as guest 3 received it.
        // A capture drops records rather than slow the data path when its writer falls behind
        // (the whole suite on two cores), and says so in drops records: all 5000 where it lost
        // nothing of that guest's, never more, and some where it did.
        let datagrams = table.filter { $0[10] == "192.0.2.2" && $0[11] == "192.0.2.3" && $0[12] == "9" }
        func lost(_ connection: String) -> UInt64 {
            table.filter { $0[0] == connection }.compactMap { UInt64($0[14]) }.reduce(0, +)
        }
        for (connection, direction, what) in [("2", "1", "guest 2's datagrams, guest → host"), ("3", "0", "guest 3's datagrams, host → guest")] {
            let count = datagrams.filter { $0[0] == connection && $0[9] == direction }.count
            let lost = lost(connection)
            if lost == 0 {
                #expect(count == 5000, "\(what)")
            } else {
                #expect(count > 0 && count <= 5000, "\(what), \(lost) record(s) lost")
            }
        }
        #expect(table.contains { $0[0] == "2" && $0[13] == "0x80000002" }, "the host's RNDIS INITIALIZE_CMPLT in guest 2's receive buffer")
    }
}
