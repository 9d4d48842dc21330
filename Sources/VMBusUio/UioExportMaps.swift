import Foundation
import VMBusChannel
import VMBusMemory
import VMBusWire

/// Maps 1–4 of an exported device (05 §10.2), each a file `DIR/dev/uioN.mapK` a program maps
/// as it would map `/dev/uioN` at offset K × 4096 (the preload library does the redirecting):
/// the interrupt page, the guest → host monitor page — which the export watches while a
/// program is connected, since a driver such as DPDK's netvsc signals only by setting its bit
/// there — and, for a NIC, the receive and send buffers with their GPADL handles.
struct ExportMaps: Sendable {
    struct Map: Sendable {
        let name: String
        let memory: MappedMemory
    }

    /// Maps 1… in order: `int_page`, `monitor_page`, then `recv:<handle>` and `send:<handle>`.
    let maps: [Map]

    var monitorPage: MappedMemory { self.maps[1].memory }

    /// Numbers the NIC buffers' GPADL handles (a kernel numbers its own; any unique value
    /// serves, the program only passes it back in NVSP).
    static let firstGpadlHandle: UInt32 = 0xE1E10

    /// Creates the files (zeroed) for a device at `/dev/uio<index>` of `root`.
    static func create(root: String, index: Int, relid: UInt32, buffers: UioNICBuffers?) throws(MemoryError) -> ExportMaps {
        var specs: [(String, Int)] = [("int_page", MappedMemory.pageSize), ("monitor_page", MonitorPage.size)]
        if let buffers {
            // Handles unique within the export: two per device, from its relid.
            let receive = Self.firstGpadlHandle + 2 * relid
            specs += [("recv:\(receive)", buffers.receiveBytes), ("send:\(receive + 1)", buffers.sendBytes)]
        }
        var maps: [Map] = []
        for (offset, (name, size)) in specs.enumerated() {
            let path = root + "/dev/" + Self.fileName(index: index, map: offset + 1)
            maps.append(Map(name: name, memory: try MappedMemory.file(path: path, size: size, create: true)))
        }
        return ExportMaps(maps: maps)
    }

    static func fileName(index: Int, map: Int) -> String { "uio\(index).map\(map)" }

    /// The NIC's GPADLs by handle (none for other classes).
    var gpadls: [UInt32: MappedMemory] {
        var gpadls: [UInt32: MappedMemory] = [:]
        for map in self.maps.dropFirst(2) {
            if let colon = map.name.firstIndex(of: ":"), let handle = UInt32(map.name[map.name.index(after: colon)...]) {
                gpadls[handle] = map.memory
            }
        }
        return gpadls
    }

    /// The `maps/mapK/{name,size,offset}` attributes of maps 1….
    func attributes(index: Int) -> [(String, String)] {
        self.maps.enumerated().flatMap { offset, map in
            let directory = "uio/uio\(index)/maps/map\(offset + 1)/"
            return [
                (directory + "name", map.name), (directory + "size", "0x" + String(map.memory.size, radix: 16)),
                (directory + "offset", "0x0"),
            ]
        }
    }
}

/// Watches a connected program's monitor page: every pending bit that belongs to one of the
/// device's channels becomes a signal on that channel; other bits are cleared and ignored.
///
/// How often: a hypervisor batches monitor notifications with a per-offer latency (OpenVMM's
/// tests use 100 µs, 05 §4.3). The watcher looks every 100 µs while bits keep coming and
/// backs off, doubling, to every 2 ms while the page stays quiet: a busy driver sees about a
/// hypervisor's latency, an idle one costs 500 wake-ups a second — and it only runs while a
/// program holds the node. A driver polls its receive ring itself, so this latency applies
/// only to what it sends.
final class MonitorWatcher: Sendable {
    static let busyInterval: UInt32 = 100  // µs
    static let idleInterval: UInt32 = 2000  // µs
    let stopped = Locked(false)

    /// Starts watching `page` on a thread of its own until ``stop()``.
    init(page: MappedMemory, channels: [UInt8: [Channel]], name: String) {
        let stopped = self.stopped
        ThreadName.start(name) {
            var interval = Self.busyInterval
            while !stopped.load() {
                let hit = Self.scan(page, channels: channels)
                interval = hit ? Self.busyInterval : min(Self.idleInterval, interval * 2)
                usleep(interval)
            }
        }
    }

    func stop() { self.stopped.store(true) }

    /// One pass: test-and-clear each trigger group's pending word (read once), signal the
    /// channels whose bits were set. - Returns: whether any bit was set.
    static func scan(_ page: MappedMemory, channels: [UInt8: [Channel]]) -> Bool {
        var hit = false
        for group in 0..<(MonitorPage.monitorIDCount / 32) {
            let offset = MonitorPage.pendingOffset(monitorID: UInt8(group * 32))
            guard let bits = try? page.exchangeUInt32(0, at: offset), bits != 0 else { continue }
            hit = true
            for bit in 0..<32 where bits & (1 << UInt32(bit)) != 0 {
                for channel in channels[UInt8(group * 32 + bit)] ?? [] { channel.interrupt() }
            }
        }
        return hit
    }
}

extension ExportedDevice {
    /// Starts watching the monitor page for this open, if the device has monitor ids.
    func watchMonitorPage(_ channels: [Channel]) -> MonitorWatcher? {
        guard !self.monitorIDs.isEmpty else { return nil }
        var byID: [UInt8: [Channel]] = [:]
        for channel in channels {
            if let id = self.monitorIDs[channel.relid] { byID[id, default: []].append(channel) }
        }
        let watcher = MonitorWatcher(page: self.maps.monitorPage, channels: byID, name: "vmbus-uio-monitor-\(self.relid)")
        self.state.withLock { $0.watcher = watcher }
        return watcher
    }
}
