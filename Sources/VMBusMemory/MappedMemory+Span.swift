import VMBusWire

extension MappedMemory {
    /// Lends `count` bytes at `offset` to `body` in place, without copying: how a frame goes
    /// from a guest's buffer straight to a TAP device or a peer's buffer.
    ///
    /// The bytes are shared memory the peer may change while `body` looks at them: forward
    /// them, or read each value once.
    /// - Throws: ``MemoryError/outOfBounds(offset:count:size:)``.
    public func withBytes<R>(at offset: Int, count: Int, _ body: (Span<UInt8>) -> R) throws(MemoryError) -> R {
        try self.check(offset, count)
        // SAFETY: the range lies inside the mapping (checked above); the span does not outlive
        // `body`, during which `self` keeps the mapping alive.
        let pointer = unsafe (self.base + offset).assumingMemoryBound(to: UInt8.self)
        let buffer = unsafe UnsafeBufferPointer(start: pointer, count: count)
        return unsafe body(buffer.span)
    }

    /// Copies the bytes `span` views to `offset`.
    public func write(span: Span<UInt8>, at offset: Int) throws(MemoryError) {
        try self.check(offset, span.count)
        guard !span.isEmpty else { return }
        // SAFETY: the destination range was bounds-checked above; the source pointer is used
        // only inside the closure, while `span` is alive.
        unsafe span.withUnsafeBytes { source in
            unsafe (self.base + offset).copyMemory(from: source.baseAddress!, byteCount: source.count)
        }
    }
}

extension MappedMemory {
    /// Copies the bytes a GPA range names (03 §4) out of this mapping of a whole guest memory
    /// (page N at offset N × 4096) into `buffer[at...]`, each page checked against the mapping:
    /// how a host reads a guest's buffer without mapping its pages anew per packet.
    /// - Throws: ``MemoryError/pageOutOfRange(pfn:pages:)`` for a page outside guest memory.
    public func read(range: GpaRange, into buffer: inout [UInt8], at bufferOffset: Int) throws(MemoryError) {
        let pages = self.size / Self.pageSize
        var copied = 0
        var pageOffset = Int(range.byteOffset)
        let count = Int(range.byteCount)
        precondition(bufferOffset >= 0 && bufferOffset + count <= buffer.count, "destination too small")
        for pfn in range.pfns {
            guard copied < count else { break }
            guard pfn < UInt64(pages) else { throw MemoryError.pageOutOfRange(pfn: pfn, pages: pages) }
            let piece = min(Self.pageSize - pageOffset, count - copied)
            self.copyOut(Int(pfn) * Self.pageSize + pageOffset, piece, &buffer, bufferOffset + copied)
            copied += piece
            pageOffset = 0
        }
        guard copied == count else { throw MemoryError.outOfBounds(offset: Int(range.byteOffset), count: count, size: copied) }
    }
}
