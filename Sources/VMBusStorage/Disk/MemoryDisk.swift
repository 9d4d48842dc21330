import VMBusMemory

/// A disk held in an anonymous mapping: what the benchmarks use to measure the VMBus path
/// rather than a disk, and what tests use for a disk that needs no file.
///
/// Pages are allocated as they are first written. Contents go with the object; ``flush()``
/// has nothing to do. Discarded sectors are zeroed.
public final class MemoryDisk: DiskBackend {
    public let sectorSize: Int
    public let sectorCount: UInt64
    public let isReadOnly: Bool
    public var completesInline: Bool { true }
    let memory: MappedMemory

    /// An empty (all-zero) disk of `sectorCount` sectors.
    /// - Throws: ``DiskError/invalidSectorSize(_:)``, ``DiskError/invalidSize(bytes:sectorSize:)``
    ///   for zero sectors or more than the address space holds, ``DiskError/io(operation:errno:)``
    ///   if the memory cannot be mapped.
    public init(sectorCount: UInt64, sectorSize: Int = 512, readOnly: Bool = false) throws(DiskError) {
        guard supportedSectorSizes.contains(sectorSize) else { throw DiskError.invalidSectorSize(sectorSize) }
        let (bytes, overflow) = sectorCount.multipliedReportingOverflow(by: UInt64(sectorSize))
        guard sectorCount > 0, !overflow, bytes <= UInt64(Int.max - MappedMemory.pageSize) else {
            throw DiskError.invalidSize(bytes: overflow ? UInt64.max : bytes, sectorSize: sectorSize)
        }
        // The mapping is whole pages; a 512-byte-sector disk may end inside the last one.
        let pages = (Int(bytes) + MappedMemory.pageSize - 1) / MappedMemory.pageSize
        do {
            self.memory = try MappedMemory.anonymous(size: pages * MappedMemory.pageSize)
        } catch {
            throw DiskError(error)
        }
        self.sectorSize = sectorSize
        self.sectorCount = sectorCount
        self.isReadOnly = readOnly
    }

    /// A disk holding a copy of `contents` (a whole number of sectors): a read-only disk with
    /// something on it, or a prepared image.
    /// - Throws: as ``init(sectorCount:sectorSize:readOnly:)``.
    public convenience init(contents: [UInt8], sectorSize: Int = 512, readOnly: Bool = false) throws(DiskError) {
        guard supportedSectorSizes.contains(sectorSize) else { throw DiskError.invalidSectorSize(sectorSize) }
        guard contents.count % sectorSize == 0 else {
            throw DiskError.invalidSize(bytes: UInt64(contents.count), sectorSize: sectorSize)
        }
        try self.init(sectorCount: UInt64(contents.count / sectorSize), sectorSize: sectorSize, readOnly: readOnly)
        do {
            try self.memory.write(contents[...], at: 0)
        } catch {
            throw DiskError(error)
        }
    }

    public func read(at byteOffset: UInt64, into buffer: MemoryExtents) throws(DiskError) {
        try self.checkRange(byteOffset: byteOffset, count: UInt64(buffer.byteCount))
        do {
            try self.memory.copy(at: Int(byteOffset), into: buffer)
        } catch {
            throw DiskError(error)
        }
    }

    public func write(at byteOffset: UInt64, from buffer: MemoryExtents) throws(DiskError) {
        try self.checkWritable(byteOffset: byteOffset, count: UInt64(buffer.byteCount))
        do {
            try self.memory.copy(from: buffer, to: Int(byteOffset))
        } catch {
            throw DiskError(error)
        }
    }

    public func read(at byteOffset: UInt64, count: Int) throws(DiskError) -> [UInt8] {
        precondition(count >= 0, "negative count")
        try self.checkRange(byteOffset: byteOffset, count: UInt64(count))
        var bytes = [UInt8](repeating: 0, count: count)
        do {
            try self.memory.read(at: Int(byteOffset), count: count, into: &bytes)
        } catch {
            throw DiskError(error)
        }
        return bytes
    }

    public func write(at byteOffset: UInt64, from bytes: [UInt8]) throws(DiskError) {
        try self.checkWritable(byteOffset: byteOffset, count: UInt64(bytes.count))
        do {
            try self.memory.write(bytes[...], at: Int(byteOffset))
        } catch {
            throw DiskError(error)
        }
    }

    public func flush() throws(DiskError) {}

    public func discard(at byteOffset: UInt64, count: UInt64) throws(DiskError) {
        try self.checkWritable(byteOffset: byteOffset, count: count)
        do {
            // In range: checkWritable bounded the end by the disk's size, which fits in an Int.
            try self.memory.zero(at: Int(byteOffset), count: Int(count))
        } catch {
            throw DiskError(error)
        }
    }
}
