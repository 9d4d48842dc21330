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
