import VMBusMemory

/// Buffered, exact reads from a stream socket for one connection's reading thread: request
/// headers and small writes come out of one buffer filled by large reads (few system calls per
/// request); a payload larger than the buffer is read straight into its own array.
///
/// Not thread-safe: one thread reads.
final class NBDSocketReader {
    let socket: StreamSocket
    private var buffer: [UInt8]
    /// Bytes of `buffer` not yet handed out: `buffer[start..<end]`.
    private var start = 0
    private var end = 0

    init(_ socket: StreamSocket, capacity: Int = 256 * 1024) {
        self.socket = socket
        self.buffer = [UInt8](repeating: 0, count: capacity)
    }

    /// Exactly `count` bytes; `nil` if the stream ends first.
    /// - Throws: ``MemoryError`` when the socket fails.
    func read(_ count: Int) throws(MemoryError) -> [UInt8]? {
        let buffered = self.end - self.start
        if count <= buffered {
            defer { self.start += count }
            return Array(self.buffer[self.start..<self.start + count])
        }
        if count > self.buffer.count / 2 {
            // Large: what is buffered, then the rest straight from the socket.
            var bytes = [UInt8](repeating: 0, count: count)
            bytes.replaceSubrange(0..<buffered, with: self.buffer[self.start..<self.end])
            self.start = 0
            self.end = 0
            return try self.socket.readFully(into: &bytes, at: buffered, count: count - buffered) ? bytes : nil
        }
        guard try self.fill(count) else { return nil }
        defer { self.start += count }
        return Array(self.buffer[self.start..<self.start + count])
    }

    /// Reads and drops `count` bytes (a refused write's data), a buffer at a time.
    /// - Returns: `false` if the stream ends first.
    func skip(_ count: Int) throws(MemoryError) -> Bool {
        var left = count
        while left > 0 {
            if self.start == self.end {
                guard try self.fill(1) else { return false }
            }
            let n = min(left, self.end - self.start)
            self.start += n
            left -= n
        }
        return true
    }

    /// Makes at least `count` (≤ capacity) bytes buffered, reading as much as fits per call.
    private func fill(_ count: Int) throws(MemoryError) -> Bool {
        if self.start > 0 {
            // Move what is left to the front so the free space is contiguous.
            // (Copied out first: a slice of the buffer would share its storage and make the
            // replacement copy the whole buffer.)
            let rest = Array(self.buffer[self.start..<self.end])
            let left = rest.count
            if left > 0 { self.buffer.replaceSubrange(0..<left, with: rest) }
            self.start = 0
            self.end = left
        }
        while self.end < count {
            let n = try self.socket.read(into: &self.buffer, at: self.end, count: self.buffer.count - self.end)
            if n == 0 { return false }
            self.end += n
        }
        return true
    }
}
