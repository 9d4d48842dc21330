import Glibc
import VMBusMemory

/// A disk stored in a raw image file (or a block device): byte N of the disk is byte N of the
/// file, so any tool (`qemu-img`, `cmp`, a loop mount) reads the same disk.
///
/// Images are sparse: ``create(path:byteCount:sectorSize:directIO:)`` only sets the size, and
/// ``discard(at:count:)`` punches holes, so a disk costs the blocks it holds data in. Writes
/// go through the page cache unless ``DirectIO`` says otherwise; ``flush()`` is `fdatasync`.
public final class FileDisk: DiskBackend {
    /// Whether to bypass the page cache (`O_DIRECT`): the host then caches nothing a guest
    /// already caches, and a completed write has reached the device, not just host memory.
    public enum DirectIO: Hashable, Sendable {
        /// Through the page cache.
        case off
        /// `O_DIRECT` where the file system allows it, the page cache otherwise
        /// (``FileDisk/isDirect`` says which).
        case preferred
        /// `O_DIRECT`, or ``DiskError/directIOUnsupported(path:reason:)``.
        case required
    }

    public let sectorSize: Int
    public let sectorCount: UInt64
    public let isReadOnly: Bool
    /// The image's path.
    public let path: String
    /// Whether transfers bypass the page cache.
    public let isDirect: Bool

    /// "file DEVICE:INODE", or `nil` if the file cannot be looked at.
    public var persistentIdentity: String? {
        guard let (device, inode) = try? self.file.identity() else { return nil }
        return "file \(device):\(inode)"
    }

    let file: PositionalFile
    /// With `O_DIRECT`: the alignment a memory piece's start and length need for the piece to
    /// be used in place (others go through an aligned bounce buffer). 1 without.
    let memoryAlignment: Int
    let lengthAlignment: Int
    /// Whether discard still tries to punch holes: cleared the first time the file system says
    /// it cannot, after which discards write zeros.
    let punchesHoles = Locked(true)

    /// Bytes of zeros a discard writes per call where holes cannot be punched.
    static let zeroChunk = 1 << 20

    /// Opens an existing image (or block device), whose size must be a whole number of
    /// sectors.
    /// - Throws: ``DiskError/invalidSectorSize(_:)``, ``DiskError/invalidSize(bytes:sectorSize:)``,
    ///   ``DiskError/directIOUnsupported(path:reason:)`` (with ``DirectIO/required``),
    ///   ``DiskError/io(operation:errno:)`` (`open` with `ENOENT`, `EACCES`, …).
    public static func open(
        path: String, sectorSize: Int = 512, readOnly: Bool = false, directIO: DirectIO = .off
    ) throws(DiskError) -> FileDisk {
        guard supportedSectorSizes.contains(sectorSize) else { throw DiskError.invalidSectorSize(sectorSize) }
        if directIO != .off {
            do {
                return try FileDisk(path: path, sectorSize: sectorSize, readOnly: readOnly, direct: true)
            } catch DiskError.directIOUnsupported(let path, let reason) {
                guard directIO == .preferred else { throw DiskError.directIOUnsupported(path: path, reason: reason) }
            }
        }
        return try FileDisk(path: path, sectorSize: sectorSize, readOnly: readOnly, direct: false)
    }

    /// Creates a new image of `byteCount` bytes (a whole number of sectors) that reads as
    /// zeros and occupies no blocks yet, then opens it for writing. Refuses to replace an
    /// existing file.
    /// - Throws: as ``open(path:sectorSize:readOnly:directIO:)``; `open` with `EEXIST` if the
    ///   file exists. A file that cannot be sized is removed again; one created but refused
    ///   `O_DIRECT` (with ``DirectIO/required``) stays, to be opened another way.
    public static func create(
        path: String, byteCount: UInt64, sectorSize: Int = 512, directIO: DirectIO = .off
    ) throws(DiskError) -> FileDisk {
        guard supportedSectorSizes.contains(sectorSize) else { throw DiskError.invalidSectorSize(sectorSize) }
        guard byteCount > 0, byteCount % UInt64(sectorSize) == 0, byteCount <= UInt64(Int64.max) else {
            throw DiskError.invalidSize(bytes: byteCount, sectorSize: sectorSize)
        }
        do throws(MemoryError) {
            let file = try PositionalFile(path: path, mode: .init(createNew: true))
            do {
                try file.truncate(to: Int64(byteCount))
            } catch {
                try? FileSystem.remove(path)
                throw error
            }
        } catch {
            throw DiskError(error)
        }
        return try Self.open(path: path, sectorSize: sectorSize, directIO: directIO)
    }

    private init(path: String, sectorSize: Int, readOnly: Bool, direct: Bool) throws(DiskError) {
        let file: PositionalFile
        do {
            file = try PositionalFile(path: path, mode: .init(readOnly: readOnly, direct: direct))
        } catch MemoryError.system(_, EINVAL) where direct {
            throw DiskError.directIOUnsupported(path: path, reason: "the file system refuses O_DIRECT")
        } catch {
            throw DiskError(error)
        }
        var memoryAlignment = 1
        var lengthAlignment = 1
        if direct {
            // Where the kernel does not report its needs, assume the classic rule: the sector
            // size, for memory and offsets alike.
            let needs = file.directIOAlignment() ?? (memory: sectorSize, offset: sectorSize)
            guard needs.offset <= sectorSize, sectorSize % max(needs.offset, 1) == 0 else {
                throw DiskError.directIOUnsupported(
                    path: path, reason: "the device needs \(needs.offset)-byte aligned I/O, above the \(sectorSize)-byte sector")
            }
            // The kernel checks each piece's address against the memory alignment and its
            // length against the offset alignment (the device's logical block).
            memoryAlignment = max(needs.memory, 1)
            lengthAlignment = max(needs.offset, 1)
        }
        let bytes: Int64
        do {
            bytes = try file.endOffset()
        } catch {
            throw DiskError(error)
        }
        guard bytes > 0, bytes % Int64(sectorSize) == 0 else {
            throw DiskError.invalidSize(bytes: UInt64(bytes), sectorSize: sectorSize)
        }
        self.file = file
        self.path = path
        self.sectorSize = sectorSize
        self.sectorCount = UInt64(bytes) / UInt64(sectorSize)
        self.isReadOnly = readOnly
        self.isDirect = direct
        self.memoryAlignment = memoryAlignment
        self.lengthAlignment = lengthAlignment
    }

    /// Bytes the image occupies on its file system: below ``byteCount`` while it has holes.
    public func allocatedBytes() throws(DiskError) -> UInt64 {
        do {
            return UInt64(try self.file.allocatedBytes())
        } catch {
            throw DiskError(error)
        }
    }

    // MARK: Transfers

    public func read(at byteOffset: UInt64, into buffer: MemoryExtents) throws(DiskError) {
        try self.checkRange(byteOffset: byteOffset, count: UInt64(buffer.byteCount))
        guard self.inPlace(buffer) else { return try self.readBounced(at: byteOffset, into: buffer) }
        let done: Int
        do {
            done = try self.file.read(into: buffer, at: Int64(byteOffset))
        } catch {
            throw DiskError(error)
        }
        guard done == buffer.byteCount else { throw DiskError.io(operation: "preadv (file shorter than the disk)", errno: EIO) }
    }

    public func write(at byteOffset: UInt64, from buffer: MemoryExtents) throws(DiskError) {
        try self.checkWritable(byteOffset: byteOffset, count: UInt64(buffer.byteCount))
        guard self.inPlace(buffer) else { return try self.writeBounced(at: byteOffset, from: buffer) }
        do {
            try self.file.write(from: buffer, at: Int64(byteOffset))
        } catch {
            throw DiskError(error)
        }
    }

    /// With RWF_NOWAIT: served from the page cache, or `false`.
    public func readIfReady(at byteOffset: UInt64, into buffer: MemoryExtents) throws(DiskError) -> Bool {
        try self.checkRange(byteOffset: byteOffset, count: UInt64(buffer.byteCount))
        guard self.inPlace(buffer) else { return false }
        let done: Int?
        do {
            done = try self.file.readIfReady(into: buffer, at: Int64(byteOffset))
        } catch {
            throw DiskError(error)
        }
        guard let done else { return false }
        guard done == buffer.byteCount else { throw DiskError.io(operation: "preadv2 (file shorter than the disk)", errno: EIO) }
        return true
    }

    /// With RWF_NOWAIT: into the page cache without waiting, or `false`.
    public func writeIfReady(at byteOffset: UInt64, from buffer: MemoryExtents) throws(DiskError) -> Bool {
        try self.checkWritable(byteOffset: byteOffset, count: UInt64(buffer.byteCount))
        guard self.inPlace(buffer) else { return false }
        do {
            return try self.file.writeIfReady(from: buffer, at: Int64(byteOffset))
        } catch {
            throw DiskError(error)
        }
    }

    public func read(at byteOffset: UInt64, count: Int) throws(DiskError) -> [UInt8] {
        precondition(count >= 0, "negative count")
        try self.checkRange(byteOffset: byteOffset, count: UInt64(count))
        var bytes = [UInt8](repeating: 0, count: count)
        if self.isDirect {
            // An array's storage is not aligned for O_DIRECT: go through aligned memory.
            let bounce = try Self.alignedBuffer(count)
            try self.read(at: byteOffset, into: bounce)
            do {
                try bounce.memory.read(at: 0, count: count, into: &bytes)
            } catch {
                throw DiskError(error)
            }
            return bytes
        }
        let done: Int
        do {
            done = try self.file.read(into: &bytes, at: Int64(byteOffset))
        } catch {
            throw DiskError(error)
        }
        guard done == count else { throw DiskError.io(operation: "pread (file shorter than the disk)", errno: EIO) }
        return bytes
    }

    public func write(at byteOffset: UInt64, from bytes: [UInt8]) throws(DiskError) {
        try self.checkWritable(byteOffset: byteOffset, count: UInt64(bytes.count))
        if self.isDirect {
            // As in read(at:count:): through aligned memory.
            let bounce = try Self.alignedBuffer(bytes.count)
            do {
                try bounce.memory.write(bytes[...], at: 0)
            } catch {
                throw DiskError(error)
            }
            return try self.write(at: byteOffset, from: bounce)
        }
        do {
            try self.file.write(bytes[...], at: Int64(byteOffset))
        } catch {
            throw DiskError(error)
        }
    }

    public func flush() throws(DiskError) {
        do {
            try self.file.syncData()
        } catch {
            throw DiskError(error)
        }
    }

    public func discard(at byteOffset: UInt64, count: UInt64) throws(DiskError) {
        try self.checkWritable(byteOffset: byteOffset, count: count)
        guard count > 0 else { return }
        if self.punchesHoles.load() {
            do {
                try self.file.punchHole(at: Int64(byteOffset), count: Int64(count))
                return
            } catch MemoryError.system(_, let errno) where errno == EOPNOTSUPP || errno == ENOSYS {
                // The file system cannot punch holes (or it is a block device): zeros instead.
                self.punchesHoles.store(false)
            } catch {
                throw DiskError(error)
            }
        }
        try self.writeZeros(at: byteOffset, count: count)
    }

    // MARK: Helpers

    /// Whether `buffer` can be handed to the kernel as it is (always, without `O_DIRECT`).
    private func inPlace(_ buffer: MemoryExtents) -> Bool {
        !self.isDirect || buffer.isAligned(memory: self.memoryAlignment, length: self.lengthAlignment)
    }

    /// Page-aligned memory of at least `count` bytes, as one piece of exactly `count`.
    private static func alignedBuffer(_ count: Int) throws(DiskError) -> MemoryExtents {
        let size = max(1, (count + MappedMemory.pageSize - 1) / MappedMemory.pageSize) * MappedMemory.pageSize
        do {
            return try MemoryExtents(memory: MappedMemory.anonymous(size: size), offset: 0, count: count)
        } catch {
            throw DiskError(error)
        }
    }

    /// A direct read into pieces `O_DIRECT` cannot use in place: into aligned memory, then
    /// copied.
    private func readBounced(at byteOffset: UInt64, into buffer: MemoryExtents) throws(DiskError) {
        let bounce = try Self.alignedBuffer(buffer.byteCount)
        try self.read(at: byteOffset, into: bounce)
        do {
            try bounce.memory.copy(at: 0, into: buffer)
        } catch {
            throw DiskError(error)
        }
    }

    private func writeBounced(at byteOffset: UInt64, from buffer: MemoryExtents) throws(DiskError) {
        let bounce = try Self.alignedBuffer(buffer.byteCount)
        do {
            try bounce.memory.copy(from: buffer, to: 0)
        } catch {
            throw DiskError(error)
        }
        try self.write(at: byteOffset, from: bounce)
    }

    /// Discard where holes cannot be punched: zeros from one page-aligned chunk (usable with
    /// `O_DIRECT` too), a chunk at a time.
    private func writeZeros(at byteOffset: UInt64, count: UInt64) throws(DiskError) {
        let chunk = try Self.alignedBuffer(Int(min(count, UInt64(Self.zeroChunk))))
        var done: UInt64 = 0
        do {
            while done < count {
                let piece = Int(min(count - done, UInt64(chunk.byteCount)))
                let source = piece == chunk.byteCount ? chunk : try MemoryExtents(memory: chunk.memory, offset: 0, count: piece)
                try self.file.write(from: source, at: Int64(byteOffset + done))
                done += UInt64(piece)
            }
        } catch {
            throw DiskError(error)
        }
    }
}
