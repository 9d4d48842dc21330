import Foundation
import VMBusWire

/// One channel of a device as Linux shows it under `channels/<relid>/` (05 §9.2). Counters
/// and fill levels are whatever the attribute files held when read; missing files are `nil`.
public struct SysfsChannel: Hashable, Sendable {
    /// The channel's relid (the directory's name).
    public var relid: UInt32
    /// The CPU its interrupts go to (`cpu`).
    public var cpu: Int?
    /// Its monitor id (`monitor_id`), for channels offered with monitored notification.
    public var monitorID: Int?
    /// 0 for the primary, ≥ 1 for a sub-channel (`subchannel_id`).
    public var subChannelIndex: Int?
    /// Bytes readable in the inbound ring (`read_avail`).
    public var readAvailable: Int?
    /// Bytes writable in the outbound ring (`write_avail`).
    public var writeAvailable: Int?
    /// The outbound ring's interrupt mask (`out_mask`).
    public var outMask: Int?
    /// The inbound ring's interrupt mask (`in_mask`).
    public var inMask: Int?
    /// Host → guest interrupts received (`interrupts`).
    public var interrupts: UInt64?
    /// Guest → host signals sent (`events`).
    public var events: UInt64?
    /// The `ring` file (channels handed to `uio_hv_generic` only).
    public var ringPath: String?
    /// The `ring` file's size in bytes: both rings, control pages included.
    public var ringBytes: Int?
}

/// One VMBus device under `/sys/bus/vmbus/devices/<instance>/` (05 §9.1).
public struct SysfsDevice: Hashable, Sendable {
    /// The device's sysfs directory.
    public var path: String
    /// The device instance (`device_id`, the directory's name).
    public var instance: GUID
    /// The device class (`class_id`).
    public var classID: GUID
    /// The primary channel's relid (`id`).
    public var relid: UInt32?
    /// The primary channel's state as the kernel numbers it (`state`; 3 is open).
    public var state: Int?
    /// The primary channel's monitor id (`monitor_id`), for monitored devices.
    public var monitorID: Int?
    /// The bound driver's name (the `driver` link), `nil` when unbound.
    public var driver: String?
    /// `uioN` when bound to `uio_hv_generic`.
    public var uio: String?
    /// Size of the uio device's map 0 (both rings), from `uio/uioN/maps/map0/size`.
    public var ringMapBytes: Int?
    /// Its channels (`channels/<relid>/`), by relid.
    public var channels: [SysfsChannel]

    /// The device class's name (05 §3), or "Unknown".
    public var className: String { DeviceClass.lookup(self.classID)?.summary ?? "Unknown" }
}

/// Reads the VMBus devices of a sysfs tree: the running guest's (`/sys`) or a recorded or
/// exported one.
public enum VMBusSysfs {
    /// `root/bus/vmbus/devices`.
    public static func devicesDirectory(root: String) -> String { root + "/bus/vmbus/devices" }

    /// Whether the tree has a VMBus at all (off Hyper-V it has none).
    public static func hasVMBus(root: String) -> Bool {
        FileManager.default.fileExists(atPath: root + "/bus/vmbus")
    }

    /// Every device, sorted by primary relid (then instance); a device directory that cannot
    /// be read as one is skipped.
    public static func devices(root: String) -> [SysfsDevice] {
        let directory = Self.devicesDirectory(root: root)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { Self.device(at: directory + "/" + $0) }
            .sorted { ($0.relid ?? .max, $0.instance.description) < ($1.relid ?? .max, $1.instance.description) }
    }

    /// The device at `path`, if its `class_id` and `device_id` parse.
    public static func device(at path: String) -> SysfsDevice? {
        guard let classID = Self.guid(path + "/class_id"), let instance = Self.guid(path + "/device_id") else { return nil }
        let fm = FileManager.default
        let driver = (try? fm.destinationOfSymbolicLink(atPath: path + "/driver")).map { URL(fileURLWithPath: $0).lastPathComponent }
        let uio = (try? fm.contentsOfDirectory(atPath: path + "/uio"))?.filter { $0.hasPrefix("uio") }.sorted().first
        let channelNames = (try? fm.contentsOfDirectory(atPath: path + "/channels")) ?? []
        let channels = channelNames.compactMap { UInt32($0) }.sorted().map { Self.channel(at: path + "/channels/\($0)", relid: $0) }
        return SysfsDevice(
            path: path, instance: instance, classID: classID, relid: Self.int(path + "/id").map { UInt32(truncatingIfNeeded: $0) },
            state: Self.int(path + "/state"), monitorID: Self.int(path + "/monitor_id"), driver: driver, uio: uio,
            ringMapBytes: uio.flatMap { Self.int(path + "/uio/\($0)/maps/map0/size") }, channels: channels)
    }

    static func channel(at path: String, relid: UInt32) -> SysfsChannel {
        let ring = path + "/ring"
        let ringBytes = (try? FileManager.default.attributesOfItem(atPath: ring))?[.size] as? Int
        return SysfsChannel(
            relid: relid, cpu: Self.int(path + "/cpu"), monitorID: Self.int(path + "/monitor_id"),
            subChannelIndex: Self.int(path + "/subchannel_id"), readAvailable: Self.int(path + "/read_avail"),
            writeAvailable: Self.int(path + "/write_avail"), outMask: Self.int(path + "/out_mask"), inMask: Self.int(path + "/in_mask"),
            interrupts: Self.int(path + "/interrupts").map { UInt64($0) }, events: Self.int(path + "/events").map { UInt64($0) },
            ringPath: ringBytes == nil ? nil : ring, ringBytes: ringBytes)
    }

    /// An attribute's text without the trailing newline.
    public static func text(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A decimal or `0x` hexadecimal attribute.
    static func int(_ path: String) -> Int? {
        guard let text = Self.text(path) else { return nil }
        if text.hasPrefix("0x") { return Int(text.dropFirst(2), radix: 16) }
        return Int(text)
    }

    /// A GUID attribute, with or without braces.
    static func guid(_ path: String) -> GUID? {
        guard var text = Self.text(path) else { return nil }
        if text.hasPrefix("{") && text.hasSuffix("}") { text = String(text.dropFirst().dropLast()) }
        return GUID(text)
    }
}
