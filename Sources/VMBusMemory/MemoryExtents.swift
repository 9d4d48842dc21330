import VMBusWire

/// The pieces of one mapping that a single transfer fills or drains, in order.
///
/// A guest's data buffer is scattered over pages whose numbers need not be consecutive (a
/// GPA-direct range, 03 §4). Seen through the host's mapping of all of guest memory (page N at
/// offset N × 4096) it is a list of runs; a disk reads into them or writes from them with one
/// `preadv`/`pwritev` and no bounce copy (``PositionalFile``), or a memory disk copies straight
/// between the two mappings (``MappedMemory/copy(at:into:)``).
///
/// Every piece is checked against the mapping when it is added, so a transfer never needs to
/// check again; the mapping's size never changes. Mappings start on a page boundary, so an
/// offset's alignment is the address's alignment (what `O_DIRECT` asks of memory).
public struct MemoryExtents: Sendable {
    /// One contiguous piece: `count` bytes at `offset` of ``MemoryExtents/memory``.
    public struct Extent: Hashable, Sendable {
        public let offset: Int
        public let count: Int

        /// A piece as a value (for comparing): only ``MemoryExtents`` checks pieces.
        public init(offset: Int, count: Int) {
            self.offset = offset
            self.count = count
        }
    }

    /// The mapping every piece lies in.
    public let memory: MappedMemory
    /// The pieces in transfer order; adjacent pieces are merged, empty ones dropped.
    public private(set) var extents: [Extent] = []
    /// Bytes over all pieces.
    public private(set) var byteCount = 0

    /// No bytes yet: add pieces with ``append(offset:count:)`` or ``append(range:)``.
    public init(memory: MappedMemory) {
        self.memory = memory
    }

    /// One contiguous piece.
    /// - Throws: ``MemoryError/outOfBounds(offset:count:size:)``.
    public init(memory: MappedMemory, offset: Int, count: Int) throws(MemoryError) {
        self.memory = memory
        try self.append(offset: offset, count: count)
    }

    /// The bytes a GPA range names, in ``memory``, a mapping of a whole guest memory.
    /// - Throws: ``MemoryError/pageOutOfRange(pfn:pages:)`` for a page outside the mapping.
    public init(memory: MappedMemory, range: GpaRange) throws(MemoryError) {
        self.memory = memory
        try self.append(range: range)
    }

    /// Adds `count` bytes at `offset` after the pieces so far (merged with the last one when
    /// they touch).
    /// - Throws: ``MemoryError/outOfBounds(offset:count:size:)``; nothing is added then.
    public mutating func append(offset: Int, count: Int) throws(MemoryError) {
        try self.memory.check(offset, count)
        guard count > 0 else { return }
        if let last = self.extents.last, last.offset + last.count == offset {
            self.extents[self.extents.count - 1] = Extent(offset: last.offset, count: last.count + count)
        } else {
            self.extents.append(Extent(offset: offset, count: count))
        }
        self.byteCount += count
    }

    /// Adds the bytes a GPA range names, page by page; runs of consecutive pages become one
    /// piece.
    /// - Throws: ``MemoryError/pageOutOfRange(pfn:pages:)`` for a page outside the mapping,
    ///   checked for every page before anything is added.
    public mutating func append(range: GpaRange) throws(MemoryError) {
        let pageSize = MappedMemory.pageSize
        let pages = self.memory.size / pageSize
        for pfn in range.pfns where pfn >= UInt64(pages) { throw MemoryError.pageOutOfRange(pfn: pfn, pages: pages) }
        var remaining = Int(range.byteCount)
        var pageOffset = Int(range.byteOffset)
        for pfn in range.pfns {
            guard remaining > 0 else { break }
            let piece = min(pageSize - pageOffset, remaining)
            // In bounds: the page is below `pages` (checked above) and the piece stays in it.
            try self.append(offset: Int(pfn) * pageSize + pageOffset, count: piece)
            remaining -= piece
            pageOffset = 0
        }
    }

    /// Whether every piece starts at a multiple of `memoryAlignment` and is a multiple of
    /// `lengthAlignment` long: what `O_DIRECT` needs to use the memory in place.
    public func isAligned(memory memoryAlignment: Int, length lengthAlignment: Int) -> Bool {
        self.extents.allSatisfy { $0.offset % memoryAlignment == 0 && $0.count % lengthAlignment == 0 }
    }
}

extension MappedMemory {
    /// Copies `buffer.byteCount` bytes at `offset` of this mapping into the pieces of `buffer`
    /// (which may be this mapping or another): a memory disk's read.
    /// - Throws: ``MemoryError/outOfBounds(offset:count:size:)`` for a source range outside
    ///   this mapping.
    public func copy(at offset: Int, into buffer: MemoryExtents) throws(MemoryError) {
        try self.check(offset, buffer.byteCount)
        var position = offset
        for extent in buffer.extents {
            // SAFETY: the source range was checked above; each destination piece was checked
            // against its mapping when it was added, and `buffer` keeps that mapping alive.
            unsafe (buffer.memory.base + extent.offset).copyMemory(from: self.base + position, byteCount: extent.count)
            position += extent.count
        }
    }

    /// Copies the bytes of `buffer`'s pieces to `offset` of this mapping: a memory disk's write.
    /// - Throws: ``MemoryError/outOfBounds(offset:count:size:)`` for a destination range
    ///   outside this mapping.
    public func copy(from buffer: MemoryExtents, to offset: Int) throws(MemoryError) {
        try self.check(offset, buffer.byteCount)
        var position = offset
        for extent in buffer.extents {
            // SAFETY: as copy(at:into:), with the roles swapped.
            unsafe (self.base + position).copyMemory(from: buffer.memory.base + extent.offset, byteCount: extent.count)
            position += extent.count
        }
    }
}

extension MemoryExtents {
    /// The first `count` bytes of the pieces (all of them if `count` is larger): a transfer
    /// shorter than the buffer that carries it.
    public func prefix(_ count: Int) -> MemoryExtents {
        guard count < self.byteCount else { return self }
        var cut = MemoryExtents(memory: self.memory)
        var left = max(0, count)
        for extent in self.extents where left > 0 {
            let piece = min(extent.count, left)
            cut.extents.append(Extent(offset: extent.offset, count: piece))
            cut.byteCount += piece
            left -= piece
        }
        return cut
    }

    /// Copies `bytes` into the pieces from their start, as far as they reach: a small answer
    /// (INQUIRY data, a mode page) into a guest's buffer.
    /// - Returns: the bytes copied, `min(bytes.count, byteCount)`.
    @discardableResult
    public func copy(from bytes: ArraySlice<UInt8>) -> Int {
        var source = bytes.startIndex
        for extent in self.extents where source < bytes.endIndex {
            let piece = min(extent.count, bytes.endIndex - source)
            // In bounds: each piece was checked against the mapping when it was added.
            self.memory.copyIn(extent.offset, bytes[source..<(source + piece)])
            source += piece
        }
        return source - bytes.startIndex
    }

    /// The first `count` bytes of the pieces (fewer if they hold fewer), copied out: a small
    /// parameter list (UNMAP's) from a guest's buffer.
    public func bytes(count: Int) -> [UInt8] {
        let total = min(max(0, count), self.byteCount)
        var bytes = [UInt8](repeating: 0, count: total)
        var at = 0
        for extent in self.extents where at < total {
            let piece = min(extent.count, total - at)
            self.memory.copyOut(extent.offset, piece, &bytes, at)
            at += piece
        }
        return bytes
    }
}
