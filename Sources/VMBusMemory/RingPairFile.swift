import VMBusRing
import VMBusWire

/// A channel's two rings in one file, laid out as `uio_hv_generic` maps them (05 §10.2): the
/// outbound (guest → host) ring, then the inbound (host → guest) ring, each `ringSize` bytes
/// including its 4 KiB control page.
public struct RingPairFile: Sendable {
    /// Which ring of the pair.
    public enum Ring: String, Sendable, CaseIterable {
        /// Guest → host: first in the file.
        case outbound = "out"
        /// Host → guest: second in the file.
        case inbound = "in"
    }

    public let memory: MappedMemory
    /// Size of each ring, control page included.
    public let ringSize: Int

    /// Creates `path`, or replaces what it held, with two initialised rings: every byte zero
    /// except feature bit `pending_send_sz` in each control page, as Linux prepares them before
    /// OpenChannel. An existing file ends up exactly as a new one would.
    public static func create(path: String, ringSize: Int) throws(MemoryError) -> RingPairFile {
        guard ringSize >= RingSize.minimum, ringSize % RingSize.pageSize == 0 else {
            throw MemoryError.invalidSize(ringSize)
        }
        let memory = try MappedMemory.file(path: path, size: 2 * ringSize, create: true)
        let file = try RingPairFile(memory: memory, ringSize: ringSize)
        for ring in Ring.allCases { try file.ring(ring).initializeControlPage() }
        return file
    }

    /// Opens an existing ring-pair file; each ring is half of it.
    public static func open(path: String) throws(MemoryError) -> RingPairFile {
        let memory = try MappedMemory.file(path: path)
        return try RingPairFile(memory: memory, ringSize: memory.size / 2)
    }

    init(memory: MappedMemory, ringSize: Int) throws(MemoryError) {
        guard ringSize >= RingSize.minimum, ringSize % RingSize.pageSize == 0, memory.size == 2 * ringSize else {
            throw MemoryError.invalidSize(memory.size)
        }
        self.memory = memory
        self.ringSize = ringSize
    }

    /// One ring of the pair.
    public func ring(_ ring: Ring) throws(MemoryError) -> SharedRingMemory {
        try SharedRingMemory(memory: self.memory, offset: ring == .outbound ? 0 : self.ringSize, ringSize: self.ringSize)
    }
}
