extension Array where Element == UInt8 {
    /// Appends the bytes `span` views: one copy, without an element-by-element loop. Lets code
    /// built with strict memory safety move bytes out of shared memory in bulk.
    public mutating func append(span: Span<UInt8>) {
        // SAFETY: the buffer pointer is only used inside the closure, while `span` is alive.
        unsafe span.withUnsafeBufferPointer { buffer in unsafe self.append(contentsOf: buffer) }
    }
}
