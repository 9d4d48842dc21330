import Glibc
import VMBusHost
import VMBusMemory
import VMBusWire

/// The receive and send buffers `uio_hv_generic` gives a NIC (05 §10.1: it allocates them at
/// probe and registers each as a GPADL; maps 3 and 4 carry their handles in their names).
public struct UioNICBuffers: Hashable, Sendable {
    /// Receive buffer bytes (Linux's uio_hv_generic: 31 MiB, 05 §10.2).
    public var receiveBytes: Int
    /// Send buffer bytes (Linux's uio_hv_generic: 16 MiB).
    public var sendBytes: Int

    /// - Parameters: sizes in bytes, whole pages; by default uio_hv_generic's.
    public init(receiveBytes: Int = 31 << 20, sendBytes: Int = 16 << 20) {
        self.receiveBytes = receiveBytes
        self.sendBytes = sendBytes
    }
}

/// What an exported device has instead of a VMBus connection (`DeviceBus`): the GPADLs are
/// the NIC buffers the export owns (shared with the program through maps 3 and 4), and the
/// "guest memory" a GPA-direct packet names is the program's own address space — a uio program
/// without hugepages gives its virtual addresses as physical ones — read through
/// `/proc/PID/mem` of the process connected to the node (`SO_PEERCRED`). Sub-channels are not
/// offered on request: the export opens the ones it was given with the primary.
public final class UioDeviceBus: DeviceBus {
    /// GPADL handle → buffer: the NIC's receive and send buffers, for the export's lifetime
    /// (uio_hv_generic registers them at probe, not per open).
    let gpadls: [UInt32: MappedMemory]
    /// The connected program's memory, while one is connected.
    let program = Locked<ProcessMemory?>(nil)

    /// Pages one GPA-direct range may name at most: 128 KiB of message (netvsp's own limit)
    /// plus a partial page at each end, with room to spare. More is the program's mistake.
    public static let maximumPages = 64

    init(gpadls: [UInt32: MappedMemory]) {
        self.gpadls = gpadls
    }

    public func gpadlMapping(_ handle: UInt32) -> MappedMemory? { self.gpadls[handle] }

    /// Copies what `range` names straight out of the connected program's memory: each page
    /// number is an address of the program divided by 4096, read with `pread` on
    /// `/proc/PID/mem` (an address it has not mapped fails; nothing else is touched).
    /// - Throws: `MemoryError` when no program is connected, a page is not mapped in it, or
    ///   the range names more than ``maximumPages`` pages.
    public func readGuest(_ range: GpaRange, into buffer: inout [UInt8], at offset: Int) throws(MemoryError) {
        guard let program = self.program.load() else { throw MemoryError.system(call: "read program memory (none connected)", errno: ESRCH) }
        let page = UInt64(MappedMemory.pageSize)
        guard !range.pfns.isEmpty, range.pfns.count <= Self.maximumPages else {
            throw MemoryError.invalidSize(range.pfns.count * MappedMemory.pageSize)
        }
        // Page by page: the range's pages need not be adjacent in the program.
        var start = UInt64(range.byteOffset)
        var left = UInt64(range.byteCount)
        var at = offset
        for pfn in range.pfns where left > 0 {
            if start >= page {
                start -= page
                continue
            }
            guard pfn <= UInt64(Int64.max) / page else { throw MemoryError.pageOutOfRange(pfn: pfn, pages: Int(Int64.max) / Int(page)) }
            let count = min(page - start, left)
            try program.read(at: pfn * page + start, count: Int(count), into: &buffer, at: at)
            at += Int(count)
            left -= count
            start = 0
        }
        guard left == 0 else { throw MemoryError.outOfBounds(offset: Int(range.byteOffset), count: Int(range.byteCount), size: range.pfns.count * Int(page)) }
    }

    /// The export offers no sub-channels on request (a NIC exported with one queue refuses
    /// SUBCHANNEL before it asks).
    public func enableSubChannels(primary: UInt32, count: UInt16) -> [UInt32] { [] }

    /// A program connected (`open()`): GPA-direct reads go to its memory; `nil` when it is gone
    /// or cannot be read (then GPA-direct packets fail as malformed).
    func attach(processID: Int32?) {
        self.program.store(processID.flatMap { try? ProcessMemory(processID: $0) })
    }
}
