import ArgumentParser
import Foundation
import VMBusUio
import VMBusWire

/// `vmbus ls`: the running guest's VMBus devices from sysfs, like `lsvmbus`.
struct LsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List the VMBus devices of this Hyper-V/Azure guest from sysfs, like lsvmbus.",
        discussion: """
            Reads SYSFS/bus/vmbus/devices (SYSFS is /sys unless --sysfs names a recorded tree or \
            the tree of 'vmbus host --uio-export DIR', i.e. DIR/sys). One line per device; -v \
            adds the GUIDs, the sysfs path, the primary relid, its CPU, the bound driver and \
            the uio node; -vv adds every channel (sub-channels too) with its CPU, monitor id, \
            ring fill levels, interrupt masks and the interrupt/event counters. Off Hyper-V it \
            says so and exits 0.
            """
    )

    @Flag(name: .short, help: "More detail (repeat: -vv for channels).")
    var verbose: Int

    @Flag(name: .long, help: "Print JSON (always with channels).")
    var json = false

    @Option(name: .long, help: "The sysfs root to read.")
    var sysfs: String = "/sys"

    @Option(name: .long, help: "Print the commands that hand DEVICE (instance GUID, class GUID or class name such as fcopy) to uio_hv_generic.")
    var bindSteps: String?

    func run() throws {
        if let wanted = self.bindSteps {
            let devices = VMBusSysfs.devices(root: self.sysfs)
            let classID = GUID(wanted) ?? DeviceClass.named(wanted)?.classID
            guard let device = devices.first(where: { $0.instance == GUID(wanted) }) ?? devices.first(where: { $0.classID == classID })
            else { throw CLIError("no VMBus device '\(wanted)' under \(self.sysfs)") }
            if device.driver == "uio_hv_generic" {
                print("# \(device.instance) is already bound to uio_hv_generic (\(device.uio ?? "no uio node yet"))")
            }
            for step in UioDevice.bindSteps(device, root: self.sysfs) { print(step) }
            return
        }
        guard VMBusSysfs.hasVMBus(root: self.sysfs) else {
            if self.json {
                print("[]")
            } else {
                print("no VMBus here (\(self.sysfs)/bus/vmbus does not exist): not running as a Hyper-V or Azure guest")
            }
            return
        }
        let devices = VMBusSysfs.devices(root: self.sysfs)
        if self.json {
            print(try Self.json(devices))
            return
        }
        for device in devices { print(Self.describe(device, verbosity: self.verbose)) }
    }

    static func describe(_ device: SysfsDevice, verbosity: Int) -> String {
        let id = device.relid.map { String($0) } ?? "?"
        let padded = String(repeating: " ", count: max(0, 3 - id.count)) + id
        guard verbosity > 0 else { return "VMBUS ID \(padded): \(device.className)" }
        let primary = device.channels.first { $0.relid == device.relid }
        var lines = [
            "VMBUS ID \(padded): Class_ID = {\(device.classID)} - \(device.className)",
            "\tDevice_ID = {\(device.instance)}",
            "\tSysfs path: \(device.path)",
            "\tRel_ID=\(id), target_cpu=\(primary?.cpu.map(String.init) ?? "?"), driver=\(device.driver ?? "none")"
                + (device.uio.map { ", uio=\($0)" } ?? ""),
        ]
        if verbosity > 1 {
            for channel in device.channels {
                lines.append("\tChannel relid \(channel.relid): " + Self.channelFields(channel).map { "\($0.0)=\($0.1)" }.joined(separator: ", "))
            }
        }
        return lines.joined(separator: "\n")
    }

    static func channelFields(_ channel: SysfsChannel) -> [(String, String)] {
        let fields: [(String, String?)] = [
            ("cpu", channel.cpu.map(String.init)), ("sub_channel", channel.subChannelIndex.map(String.init)),
            ("monitor_id", channel.monitorID.map(String.init) ?? "none"),
            ("in_read_avail", channel.readAvailable.map(String.init)), ("out_write_avail", channel.writeAvailable.map(String.init)),
            ("in_mask", channel.inMask.map(String.init)), ("out_mask", channel.outMask.map(String.init)),
            ("interrupts", channel.interrupts.map(String.init)), ("events", channel.events.map(String.init)),
            ("ring_bytes", channel.ringBytes.map(String.init)),
        ]
        return fields.compactMap { name, value in value.map { (name, $0) } }
    }

    static func json(_ devices: [SysfsDevice]) throws -> String {
        let objects: [[String: Any]] = devices.map { device in
            var object: [String: Any] = [
                "class_id": "\(device.classID)", "device_id": "\(device.instance)", "class_name": device.className,
                "sysfs_path": device.path, "driver": device.driver ?? NSNull(),
            ]
            object["relid"] = device.relid.map { Int($0) } ?? NSNull()
            object["uio"] = device.uio ?? NSNull()
            object["channels"] = device.channels.map { channel -> [String: Any] in
                var fields: [String: Any] = ["relid": Int(channel.relid)]
                for (name, value) in Self.channelFields(channel) { fields[name] = Int(value) ?? value }
                return fields
            }
            return object
        }
        let data = try JSONSerialization.data(withJSONObject: objects, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
