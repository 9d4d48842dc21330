import Foundation

/// The parts of an exported device's tree that programs written for a real kernel reach by
/// other paths than the device directory: `/sys/class/uio/uioN` (how DPDK and most uio code
/// find a node's maps), the node's `device` link back to its VMBus device, and one file per
/// map for the preload library (`libvmbus-uio-preload.so`), which turns `mmap(/dev/uioN,
/// offset K × page size)` into a mapping of `dev/uioN.mapK`.
extension ExportedDevice {
    /// The map links, relative to `DIR/dev`: map 0, the primary's rings (05 §10.2). Maps 1–4
    /// are files of their own (``ExportMaps``).
    static func mapLinks(index: Int, instance: String, relid: UInt32) -> [(name: String, target: String)] {
        [("uio\(index).map0", "../sys/bus/vmbus/devices/\(instance)/channels/\(relid)/ring")]
    }

    /// Writes the class link, the `device` link and the map links (replacing stale ones from
    /// an earlier run in the same directory).
    static func linkUioClass(root: String, devicePath: String, instance: String, index: Int, relid: UInt32) throws {
        let fm = FileManager.default
        let uio = "uio\(index)"
        let links: [(String, String)] = [
            (root + "/sys/class/uio/" + uio, "../../bus/vmbus/devices/\(instance)/uio/\(uio)"),
            (devicePath + "/uio/\(uio)/device", "../../../\(instance)"),
        ] + Self.mapLinks(index: index, instance: instance, relid: relid).map { (root + "/dev/" + $0.name, $0.target) }
        try fm.createDirectory(atPath: root + "/sys/class/uio", withIntermediateDirectories: true)
        for (path, target) in links {
            try? fm.removeItem(atPath: path)
            try fm.createSymbolicLink(atPath: path, withDestinationPath: target)
        }
    }

    /// Rescind: the class entry and map links go with the device.
    func unlinkUioClass() {
        let fm = FileManager.default
        try? fm.removeItem(atPath: self.root + "/sys/class/uio/uio\(self.index)")
        for link in Self.mapLinks(index: self.index, instance: "\(self.device.offer.interfaceInstance)", relid: self.relid) {
            try? fm.removeItem(atPath: self.root + "/dev/" + link.name)
        }
        for map in 1...self.maps.maps.count {
            try? fm.removeItem(atPath: self.root + "/dev/" + ExportMaps.fileName(index: self.index, map: map))
        }
    }
}
