import Atomics
import Glibc
import VMBusRing
import VMBusWire

/// One ring inside mapped memory: its 4 KiB control page and its data area, the
/// ``RingMemory`` that `VMBusRing` runs on.
///
/// With a double mapping (``doubleMapped(fileDescriptor:offset:ringSize:)``) the data area
/// appears twice in a row, so a packet that wraps is contiguous and every copy is one memcpy;
/// otherwise copies are split at the end of the data area (uio and other single mappings).
public struct SharedRingMemory: RingMemory, @unchecked Sendable {
    /// The mapping the ring lives in.
    public let memory: MappedMemory
    /// Offset of the control page in the mapping.
    public let controlOffset: Int
    /// Offset of the data area in the mapping.
    public let dataOffset: Int
    public let dataSize: Int
    /// Whether the data area is mapped a second time right after itself.
    public let isDoubleMapped: Bool

    /// The ring of `ringSize` bytes at `offset` of `memory` (single mapping).
    /// - Throws: ``MemoryError`` unless the ring is page-aligned, at least two pages, and inside
    ///   the mapping.
    public init(memory: MappedMemory, offset: Int, ringSize: Int) throws(MemoryError) {
        guard ringSize >= RingSize.minimum, ringSize % MappedMemory.pageSize == 0 else {
            throw MemoryError.invalidSize(ringSize)
        }
        guard offset % MappedMemory.pageSize == 0 else {
            throw MemoryError.outOfBounds(offset: offset, count: ringSize, size: memory.size)
        }
        try memory.check(offset, ringSize)
        self.memory = memory
        self.controlOffset = offset
        self.dataOffset = offset + RingSize.pageSize
        self.dataSize = ringSize - RingSize.pageSize
        self.isDoubleMapped = false
    }

    /// Maps the ring of `ringSize` bytes at `offset` of a file or memfd with its data area
    /// twice in a row: `[control][data][data again]` (Linux's vmap trick, 02 §4).
    public static func doubleMapped(fileDescriptor fd: Int32, offset: Int, ringSize: Int) throws(MemoryError)
        -> SharedRingMemory
    {
        guard ringSize >= RingSize.minimum, ringSize % MappedMemory.pageSize == 0,
            offset >= 0, offset % MappedMemory.pageSize == 0
        else { throw MemoryError.invalidSize(ringSize) }
        let dataSize = ringSize - RingSize.pageSize
        let reserved = ringSize + dataSize
        // Reserve the whole range first so the two fixed mappings land next to each other.
        let base = unsafe try MappedMemory.mapOrThrow(nil, reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        let mapping = unsafe MappedMemory(base: base, size: ringSize, reservedLength: reserved, fileDescriptor: nil)
        _ = unsafe try MappedMemory.mapOrThrow(base, ringSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, offset)
        _ = unsafe try MappedMemory.mapOrThrow(
            base + ringSize, dataSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
            offset + RingSize.pageSize)
        return SharedRingMemory(mapping: mapping, dataSize: dataSize)
    }

    private init(mapping: MappedMemory, dataSize: Int) {
        self.memory = mapping
        self.controlOffset = 0
        self.dataOffset = RingSize.pageSize
        self.dataSize = dataSize
        self.isDoubleMapped = true
    }

    // MARK: RingMemory

    public func load(_ word: RingControlWord, ordering: RingLoadOrdering) -> UInt32 {
        // Control words are fixed offsets inside the control page, checked at init.
        self.memory.load32(self.controlOffset + word.rawValue, ordering)
    }

    public func store(_ word: RingControlWord, _ value: UInt32, ordering: RingStoreOrdering) {
        let atomic = self.memory.atomic32(self.controlOffset + word.rawValue)
        switch ordering {
        case .relaxed: atomic.store(value, ordering: .relaxed)
        case .releasing: atomic.store(value, ordering: .releasing)
        }
    }

    public func fullFence() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
    }

    public func loadWord(at offset: Int) -> UInt64 {
        precondition(offset >= 0 && offset < self.dataSize && offset & 7 == 0, "ring word offset \(offset)")
        // One relaxed atomic load: the peer may be writing, and the value is validated after.
        return self.memory.atomic64(self.dataOffset + offset).load(ordering: .relaxed)
    }

    public func storeWord(_ value: UInt64, at offset: Int) {
        precondition(offset >= 0 && offset < self.dataSize && offset & 7 == 0, "ring word offset \(offset)")
        self.memory.atomic64(self.dataOffset + offset).store(value, ordering: .relaxed)
    }

    public func copyOut(from offset: Int, count: Int, into buffer: inout [UInt8], at bufferOffset: Int) {
        self.checkRange(offset, count)
        precondition(bufferOffset >= 0 && bufferOffset + count <= buffer.count, "destination too small")
        let first = self.isDoubleMapped ? count : min(count, self.dataSize - offset)
        self.memory.copyOut(self.dataOffset + offset, first, &buffer, bufferOffset)
        if first < count { self.memory.copyOut(self.dataOffset, count - first, &buffer, bufferOffset + first) }
    }

    public func copyIn(to offset: Int, from source: ArraySlice<UInt8>) {
        self.checkRange(offset, source.count)
        let first = self.isDoubleMapped ? source.count : min(source.count, self.dataSize - offset)
        self.memory.copyIn(self.dataOffset + offset, source.prefix(first))
        if first < source.count { self.memory.copyIn(self.dataOffset, source.dropFirst(first)) }
    }

    public func zero(at offset: Int, count: Int) {
        self.checkRange(offset, count)
        let first = self.isDoubleMapped ? count : min(count, self.dataSize - offset)
        self.memory.zeroBytes(self.dataOffset + offset, first)
        if first < count { self.memory.zeroBytes(self.dataOffset, count - first) }
    }

    public func withContiguousBytes<R>(at offset: Int, count: Int, _ body: (Span<UInt8>) throws -> R) rethrows -> R? {
        self.checkRange(offset, count)
        guard self.isDoubleMapped || offset + count <= self.dataSize else { return nil }
        // SAFETY: the range lies inside the mapping (checked above; a double mapping holds the
        // data area twice), and the span does not outlive `body`, during which `self.memory`
        // keeps the mapping alive.
        let pointer = unsafe (self.memory.base + self.dataOffset + offset).assumingMemoryBound(to: UInt8.self)
        let buffer = unsafe UnsafeBufferPointer(start: pointer, count: count)
        return try unsafe body(buffer.span)
    }

    /// Ring offsets come from the ring logic, which validated every peer value before forming
    /// them; a bad one here is a bug in this project, not peer input.
    private func checkRange(_ offset: Int, _ count: Int) {
        precondition(offset >= 0 && offset < self.dataSize && count >= 0 && count <= self.dataSize,
                      "ring access of \(count) bytes at \(offset) in \(self.dataSize)")
    }
}
