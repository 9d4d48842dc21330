import Foundation
import Testing

/// Writes a recorded sysfs tree: `devices` maps an instance to its attributes (relative path →
/// content); a `driver` entry becomes the `driver` symlink.
func recordSysfs(_ devices: [String: [String: String]]) throws -> String {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-sysfs-\(UInt32.random(in: 0...UInt32.max))").path
    for (instance, attributes) in devices {
        let path = root + "/bus/vmbus/devices/" + instance
        for (name, value) in attributes {
            let file = path + "/" + name
            try FileManager.default.createDirectory(
                atPath: URL(fileURLWithPath: file).deletingLastPathComponent().path, withIntermediateDirectories: true)
            if name == "driver" {
                try FileManager.default.createSymbolicLink(atPath: file, withDestinationPath: "../../../../bus/vmbus/drivers/" + value)
            } else {
                try Data((value + "\n").utf8).write(to: URL(fileURLWithPath: file))
            }
        }
    }
    return root
}

/// A device's attributes as an Azure guest shows them (values from a Linux 6.x guest).
func azureDevice(class classID: String, instance: String, relid: Int, driver: String?, channels: [(relid: Int, cpu: Int, sub: Int)])
    -> [String: String]
{
    var attributes = ["class_id": "{\(classID)}", "device_id": "{\(instance)}", "id": "\(relid)", "state": "3", "vendor": "0x1414"]
    if let driver { attributes["driver"] = driver }
    for channel in channels {
        let base = "channels/\(channel.relid)/"
        attributes[base + "cpu"] = "\(channel.cpu)"
        attributes[base + "subchannel_id"] = "\(channel.sub)"
        attributes[base + "read_avail"] = "0"
        attributes[base + "write_avail"] = "\(channel.sub == 0 ? 1044472 : 1044480)"
        attributes[base + "in_mask"] = "0"
        attributes[base + "out_mask"] = "0"
        attributes[base + "interrupts"] = "\(1000 * channel.relid)"
        attributes[base + "events"] = "\(7 * channel.relid)"
    }
    return attributes
}

@Suite(.serialized) struct UioProcessTests {
    init() throws {
        try #require(FileManager.default.isExecutableFile(atPath: vmbusBinary().path), "vmbus binary not built")
    }

    /// A recorded Azure guest: a NIC with four channels (three sub-channels), SCSI, KVP, and
    /// the fcopy device bound to uio_hv_generic.
    func azureTree() throws -> String {
        try recordSysfs([
            "000d3a6e-8c4a-000d-3a6e-8c4a000d3a6e": azureDevice(
                class: "f8615163-df3e-46c5-913f-f2d2f965ed0e", instance: "000d3a6e-8c4a-000d-3a6e-8c4a000d3a6e", relid: 18,
                driver: "hv_netvsc", channels: [(18, 0, 0), (20, 1, 1), (21, 0, 2), (22, 1, 3)]),
            "f8b3781b-1e82-4818-a1c3-63d806ec15bb": azureDevice(
                class: "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f", instance: "f8b3781b-1e82-4818-a1c3-63d806ec15bb", relid: 15,
                driver: "hv_storvsc", channels: [(15, 1, 0)]),
            "242ff919-07db-4180-9c2e-b86cb68c8c55": azureDevice(
                class: "a9a0f4e7-5a45-4d96-b827-8a841e8c03e6", instance: "242ff919-07db-4180-9c2e-b86cb68c8c55", relid: 4,
                driver: "hv_utils", channels: [(4, 0, 0)]),
            "eb765408-105f-49b6-b4aa-c123b64d17d4": azureDevice(
                class: "34d14be3-dee4-41c8-9ae7-6b174977c192", instance: "eb765408-105f-49b6-b4aa-c123b64d17d4", relid: 7,
                driver: "uio_hv_generic", channels: [(7, 0, 0)]).merging(["uio/uio0/name": "uio_hv_generic", "uio/uio0/maps/map0/size": "0x8000"]) { a, _ in a },
        ])
    }

    @Test func lsListsARecordedGuestLikeLsvmbus() async throws {
        let root = try self.azureTree()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let plain = try await Spawned(["ls", "--sysfs", root]).finish()
        #expect(plain.status == 0, "\(plain.errors)")
        #expect(plain.output == """
            VMBUS ID   4: IC: key-value pair exchange
            VMBUS ID   7: IC: guest file copy
            VMBUS ID  15: synthetic SCSI controller (storvsc)
            VMBUS ID  18: synthetic network adapter (netvsc)

            """)
        let verbose = try await Spawned(["ls", "-vv", "--sysfs", root]).finish()
        #expect(verbose.output.contains("Class_ID = {f8615163-df3e-46c5-913f-f2d2f965ed0e}"))
        #expect(verbose.output.contains("Rel_ID=18, target_cpu=0, driver=hv_netvsc"))
        #expect(verbose.output.contains("Rel_ID=7, target_cpu=0, driver=uio_hv_generic, uio=uio0"))
        #expect(verbose.output.contains("\tChannel relid 22: cpu=1, sub_channel=3, monitor_id=none, in_read_avail=0, out_write_avail=1044480"))
        #expect(verbose.output.contains("interrupts=22000, events=154"))
        let json = try await Spawned(["ls", "--json", "--sysfs", root]).finish()
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [[String: Any]])
        #expect(parsed.count == 4)
        let nic = try #require(parsed.first { ($0["relid"] as? Int) == 18 })
        #expect((nic["channels"] as? [[String: Any]])?.count == 4)
        #expect(nic["driver"] as? String == "hv_netvsc")
    }

    @Test func lsPrintsTheStepsThatBindADeviceToUio() async throws {
        let root = try self.azureTree()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let steps = try await Spawned(["ls", "--sysfs", root, "--bind-steps", "kvp"]).finish()
        #expect(steps.status == 0)
        #expect(steps.output == """
            modprobe uio_hv_generic
            echo 242ff919-07db-4180-9c2e-b86cb68c8c55 > \(root)/bus/vmbus/drivers/hv_utils/unbind
            echo a9a0f4e7-5a45-4d96-b827-8a841e8c03e6 > \(root)/bus/vmbus/drivers/uio_hv_generic/new_id
            echo 242ff919-07db-4180-9c2e-b86cb68c8c55 > \(root)/bus/vmbus/drivers/uio_hv_generic/bind

            """)
        let unknown = try await Spawned(["ls", "--sysfs", root, "--bind-steps", "nothing"]).finish()
        #expect(unknown.status == 1 && unknown.errors.contains("no VMBus device 'nothing'"))
    }

    @Test func lsOffHyperVSaysSoAndSucceeds() async throws {
        let result = try await Spawned(["ls", "--sysfs", "/nonexistent-sysfs"]).finish()
        #expect(result.status == 0)
        #expect(result.output.contains("not running as a Hyper-V or Azure guest"))
    }

    @Test func theFcopyDaemonServesTheExportEndToEnd() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-export-\(UInt32.random(in: 0...UInt32.max))").path
        let files = directory + "-files"
        try FileManager.default.createDirectory(atPath: files, withIntermediateDirectories: true)
        defer {
            try? FileManager.default.removeItem(atPath: directory)
            try? FileManager.default.removeItem(atPath: files)
        }
        let socket = directory + ".sock"
        let host = try Spawned(["host", "--listen", socket, "--device", "echo", "--uio-export", directory, "--log-level", "warning"])
        #expect(await host.line() == "vmbus host: admin socket \(socket).admin")
        #expect(await host.line() == "vmbus host: uio export \(directory)/sys")
        #expect(await host.line() == "vmbus host: listening on \(socket)")
        let listing = try await Spawned(["ls", "-v", "--sysfs", directory + "/sys"]).finish()
        #expect(listing.output.contains("driver=uio_hv_generic, uio=uio0"), "\(listing.output)")

        let daemon = try Spawned(["fcopy-daemon", "--sysfs", directory + "/sys", "--root", files])
        #expect(await daemon.errorLine()?.contains("serving file copy on \(directory)/dev/uio0") == true)
        // A 2 MiB file through vmbus ctl, as Copy-VMFile would send it.
        let source = directory + "-source.bin"
        let data = Data((0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) })
        try data.write(to: URL(fileURLWithPath: source))
        defer { try? FileManager.default.removeItem(atPath: source) }
        let copy = try await Spawned(["ctl", "copy", "--host", socket + ".admin", "--guest", "uio", source, "in/copied.bin", "--create-path"]).finish()
        #expect(copy.status == 0, "\(copy.output) \(copy.errors)")
        #expect(FileManager.default.contents(atPath: files + "/in/copied.bin") == data)
        // An existing file without overwrite: the daemon's status comes back.
        let again = try await Spawned(["ctl", "copy", "--host", socket + ".admin", "--guest", "uio", source, "in/copied.bin"]).finish()
        #expect(again.status == 1 && again.errors.contains("exists"))
        // SIGTERM: a clean stop.
        daemon.kill(SIGTERM)
        #expect(await daemon.finish().status == 0)
        host.kill(SIGTERM)
        #expect(await host.finish().status == 0)
    }

    @Test func theDaemonExplainsAMissingOrUnboundDevice() async throws {
        let root = try recordSysfs([
            "eb765408-105f-49b6-b4aa-c123b64d17d4": azureDevice(
                class: "34d14be3-dee4-41c8-9ae7-6b174977c192", instance: "eb765408-105f-49b6-b4aa-c123b64d17d4", relid: 7,
                driver: "hv_utils", channels: [(7, 0, 0)])
        ])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let unbound = try await Spawned(["fcopy-daemon", "--sysfs", root]).finish()
        #expect(unbound.status == 1)
        #expect(unbound.errors.contains("bound to hv_utils, not uio_hv_generic"))
        #expect(unbound.errors.contains("echo 34d14be3-dee4-41c8-9ae7-6b174977c192 > \(root)/bus/vmbus/drivers/uio_hv_generic/new_id"))
        let empty = try recordSysfs(["x": ["class_id": "{ba6163d9-04a1-4d29-b605-72e2ffb1dc7f}", "device_id": "{f8b3781b-1e82-4818-a1c3-63d806ec15bb}"]])
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let missing = try await Spawned(["fcopy-daemon", "--sysfs", empty]).finish()
        #expect(missing.status == 1 && missing.errors.contains("Guest Service Interface"))
        let none = try await Spawned(["fcopy-daemon", "--sysfs", "/nonexistent-sysfs"]).finish()
        #expect(none.status == 1 && none.errors.contains("not a Hyper-V or Azure guest"))
    }
}
