import Glibc

/// Guest memory across a hibernation (docs/SERVICING.md): the pages handed out, and the whole
/// memory written to and read back from a file, a chunk at a time so that a large guest does
/// not need its size again in buffers.
extension GuestMemory {
    /// The runs of pages handed out now, lowest first.
    public var allocatedBuffers: [GuestBuffer] {
        self.free.withLock { runs in
            var buffers: [GuestBuffer] = []
            var next = 1
            for run in runs {
                if run.first > next { buffers.append(GuestBuffer(firstPFN: UInt64(next), pageCount: run.first - next)) }
                next = run.first + run.count
            }
            if next < self.pageCount { buffers.append(GuestBuffer(firstPFN: UInt64(next), pageCount: self.pageCount - next)) }
            return buffers
        }
    }

    /// Marks `buffers` handed out, on memory that handed out nothing yet (a resumed guest's,
    /// whose owners come back with their saved addresses).
    /// - Throws: ``MemoryError/invalidSize(_:)`` for a buffer outside memory, on page 0, or
    ///   overlapping another.
    public func reserve(_ buffers: [GuestBuffer]) throws(MemoryError) {
        let sorted = buffers.sorted { $0.firstPFN < $1.firstPFN }
        var next: UInt64 = 1
        for buffer in sorted {
            guard buffer.pageCount > 0, buffer.firstPFN >= next, buffer.firstPFN + UInt64(buffer.pageCount) <= UInt64(self.pageCount) else {
                throw MemoryError.invalidSize(Int(truncatingIfNeeded: buffer.firstPFN))
            }
            next = buffer.firstPFN + UInt64(buffer.pageCount)
        }
        self.free.withLock { runs in
            var free: [Run] = []
            var start = 1
            for buffer in sorted {
                let first = Int(buffer.firstPFN)
                if first > start { free.append(Run(first: start, count: first - start)) }
                start = first + buffer.pageCount
            }
            if start < self.pageCount { free.append(Run(first: start, count: self.pageCount - start)) }
            runs = free
        }
    }

    /// Writes all of memory to `fd` at its current position.
    public func writeImage(to fd: Int32) throws(MemoryError) {
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var offset = 0
        while offset < self.memory.size {
            let count = min(chunk.count, self.memory.size - offset)
            try self.memory.read(at: offset, count: count, into: &chunk)
            try DescriptorIO.writeAll(fd, chunk[0..<count])
            offset += count
        }
    }

    /// Fills all of memory from `fd` at its current position.
    /// - Throws: ``MemoryError`` if the file ends early.
    public func readImage(from fd: Int32) throws(MemoryError) {
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var offset = 0
        while offset < self.memory.size {
            let count = min(chunk.count, self.memory.size - offset)
            guard try DescriptorIO.readFully(fd, into: &chunk, count: count) else { throw MemoryError.invalidSize(offset) }
            try self.memory.write(chunk[0..<count], at: offset)
            offset += count
        }
    }
}
