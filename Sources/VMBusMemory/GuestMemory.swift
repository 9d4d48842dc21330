import VMBusWire

/// Pages of guest memory handed out to one user: a contiguous run, so the guest reaches it
/// at one offset of ``GuestMemory/memory``, while the host sees only its page numbers.
public struct GuestBuffer: Hashable, Sendable {
    /// The first page number (GPA / 4096).
    public let firstPFN: UInt64
    /// Pages in the run.
    public let pageCount: Int

    /// A run of `pageCount` pages starting at page `firstPFN` (also for buffers a guest did
    /// not allocate from ``GuestMemory``: the NIC buffers a uio kernel hands over).
    public init(firstPFN: UInt64, pageCount: Int) {
        self.firstPFN = firstPFN
        self.pageCount = pageCount
    }

    /// Byte offset in guest memory.
    public var offset: Int { Int(self.firstPFN) * MappedMemory.pageSize }
    /// Bytes in the run.
    public var byteCount: Int { self.pageCount * MappedMemory.pageSize }
    /// The page numbers, as a GPADL lists them.
    public var pfns: [UInt64] { (0..<UInt64(self.pageCount)).map { self.firstPFN + $0 } }

    /// The whole run as one GPADL range.
    /// - Throws: ``WireError`` for a run of 4 GiB or more, which one range cannot describe.
    public func range() throws(WireError) -> GpaRange {
        guard self.byteCount <= Int(UInt32.max) else {
            throw WireError.limitExceeded(name: "range byte_count", value: UInt64(self.byteCount), limit: UInt64(UInt32.max))
        }
        return try GpaRange(byteCount: UInt32(self.byteCount), byteOffset: 0, pfns: self.pfns)
    }
}

/// A guest's physical memory as a sealed memfd: the guest maps all of it, hosts map the pages
/// a GPADL names (``MappedMemory/mapPages(of:memorySize:pfns:)``), and other processes may
/// receive the descriptor (spec 09). Page 0 is never handed out, so no buffer has GPA 0.
public final class GuestMemory: Sendable {
    /// All of guest memory, mapped in this process.
    public let memory: MappedMemory
    /// Pages in guest memory.
    public let pageCount: Int
    let free: Locked<[Run]>

    struct Run {
        var first: Int
        var count: Int
    }

    /// Creates `size` bytes of zeroed guest memory (sparse until touched).
    /// - Throws: ``MemoryError`` for a size that is not whole pages, or if the memfd fails.
    public init(size: Int, name: String = "vmbus-guest-memory") throws(MemoryError) {
        self.memory = try MappedMemory.memfd(name: name, size: size)
        self.pageCount = size / MappedMemory.pageSize
        self.free = Locked(size > MappedMemory.pageSize ? [Run(first: 1, count: self.pageCount - 1)] : [])
    }

    /// The memory's descriptor, for hosts that map GPADLs from it.
    public var fileDescriptor: Int32 { self.memory.fileDescriptor ?? -1 }

    /// Pages not handed out.
    public var freePages: Int { self.free.withLock { $0.reduce(0) { $0 + $1.count } } }

    /// Takes `pages` contiguous zeroed pages (first fit).
    /// - Throws: ``MemoryError/invalidSize(_:)`` when no run is long enough.
    public func allocate(pages: Int) throws(MemoryError) -> GuestBuffer {
        guard pages > 0 else { throw MemoryError.invalidSize(0) }
        let first: Int? = self.free.withLock { runs in
            guard let index = runs.firstIndex(where: { $0.count >= pages }) else { return nil }
            let first = runs[index].first
            runs[index].first += pages
            runs[index].count -= pages
            if runs[index].count == 0 { runs.remove(at: index) }
            return first
        }
        guard let first else { throw MemoryError.invalidSize(pages * MappedMemory.pageSize) }
        let buffer = GuestBuffer(firstPFN: UInt64(first), pageCount: pages)
        try self.memory.zero(at: buffer.offset, count: buffer.byteCount)
        return buffer
    }

    /// Gives pages back. Freeing a run twice, or one never allocated, is a programming error.
    public func release(_ buffer: GuestBuffer) {
        self.free.withLock { runs in
            let start = Int(buffer.firstPFN)
            let index = runs.firstIndex { $0.first > start } ?? runs.count
            precondition(index == 0 || runs[index - 1].first + runs[index - 1].count <= start, "double free of guest pages")
            precondition(index == runs.count || start + buffer.pageCount <= runs[index].first, "double free of guest pages")
            runs.insert(Run(first: start, count: buffer.pageCount), at: index)
            // Merge with the neighbours so long runs come back.
            if index + 1 < runs.count, runs[index].first + runs[index].count == runs[index + 1].first {
                runs[index].count += runs[index + 1].count
                runs.remove(at: index + 1)
            }
            if index > 0, runs[index - 1].first + runs[index - 1].count == runs[index].first {
                runs[index - 1].count += runs[index].count
                runs.remove(at: index)
            }
        }
    }

    /// Maps the pages of a GPADL's ranges, in order, as a host does (each range's PFNs one
    /// after another). Every page is checked against the memory first.
    public func mapGpadl(_ ranges: [GpaRange]) throws(MemoryError) -> MappedMemory {
        try MappedMemory.mapPages(of: self.fileDescriptor, memorySize: self.memory.size, pfns: ranges.flatMap(\.pfns))
    }
}
