import CLinux
import Glibc
import SystemPackage

/// A file or block device read and written at explicit offsets (`pread`/`pwrite` and their
/// vector forms), so any number of threads can share one descriptor with no lock and no seek:
/// what a disk image needs when many requests are in flight at once.
///
/// Transfers loop over short counts and `EINTR`, so a call moves every byte or throws; only a
/// read that meets the end of the file stops early, and says how far it got. The descriptor is
/// closed when the object goes away.
@safe
public final class PositionalFile: Sendable {
    /// How to open the file.
    public struct Mode: Hashable, Sendable {
        /// Open for reading only (`O_RDONLY`); writes then fail with `EBADF`.
        public var readOnly = false
        /// Create the file, which must not exist yet (`O_CREAT | O_EXCL`, mode 0600): a disk
        /// image is never replaced by accident.
        public var createNew = false
        /// Bypass the page cache (`O_DIRECT`): memory, offsets and lengths must then be aligned
        /// as ``directIOAlignment()`` says.
        public var direct = false

        public init(readOnly: Bool = false, createNew: Bool = false, direct: Bool = false) {
            self.readOnly = readOnly
            self.createNew = createNew
            self.direct = direct
        }
    }

    /// The descriptor, owned by this object.
    public let fileDescriptor: Int32

    /// The most pieces one `preadv`/`pwritev` takes (Linux's `UIO_MAXIOV`).
    static let maximumPieces = 1024

    /// Opens `path`.
    /// - Throws: ``MemoryError/system(call:errno:)`` with call `open`; `EINVAL` with
    ///   ``Mode/direct`` means the file system refuses `O_DIRECT`.
    public init(path: String, mode: Mode) throws(MemoryError) {
        var options: FileDescriptor.OpenOptions = .closeOnExec
        if mode.createNew { options.formUnion([.create, .exclusiveCreate]) }
        // swift-system names no O_DIRECT; the shim supplies the number.
        if mode.direct { options.formUnion(FileDescriptor.OpenOptions(rawValue: CLINUX_O_DIRECT)) }
        let file = try SystemCall.run("open") {
            try FileDescriptor.open(
                FilePath(path), mode.readOnly ? .readOnly : .readWrite, options: options, permissions: .ownerReadWrite)
        }
        self.fileDescriptor = file.rawValue
    }

    /// The descriptor as swift-system's type.
    private var file: FileDescriptor { FileDescriptor(rawValue: self.fileDescriptor) }

    deinit { SystemCall.close(self.fileDescriptor) }

    // MARK: Size and space

    /// Bytes in the file: its size, or a block device's capacity (where `st_size` is 0).
    public func endOffset() throws(MemoryError) -> Int64 {
        try SystemCall.run("lseek") { try self.file.seek(offset: 0, from: .end) }
    }

    /// Bytes the file occupies on its file system (`st_blocks` × 512): less than its size
    /// where it has holes.
    public func allocatedBytes() throws(MemoryError) -> Int64 {
        try SystemCall.run("fstat") { try self.file.stat().sizeAllocated }
    }

    /// Sets the file's size (`ftruncate`); growing it adds a hole, which costs no blocks.
    public func truncate(to size: Int64) throws(MemoryError) {
        try SystemCall.run("ftruncate") { try self.file.resize(to: size) }
    }

    /// Writes the file's data (and the metadata needed to read it back) to stable storage
    /// (`fdatasync`).
    public func syncData() throws(MemoryError) {
        while fdatasync(self.fileDescriptor) != 0 {
            guard errno == EINTR else { throw MemoryError.system(call: "fdatasync", errno: errno) }
        }
    }

    /// Frees the blocks of `count` bytes at `offset`, which then read as zeros; the size is
    /// kept (`fallocate(PUNCH_HOLE | KEEP_SIZE)`).
    /// - Throws: ``MemoryError/system(call:errno:)``; `EOPNOTSUPP` where the file system
    ///   cannot punch holes.
    public func punchHole(at offset: Int64, count: Int64) throws(MemoryError) {
        while clinux_punch_hole(self.fileDescriptor, off_t(offset), off_t(count)) != 0 {
            guard errno == EINTR else { throw MemoryError.system(call: "fallocate", errno: errno) }
        }
    }

    /// The alignment `O_DIRECT` needs of memory addresses and of file offsets and lengths, as
    /// the kernel reports it (`statx(STATX_DIOALIGN)`), or `nil` where it does not say.
    public func directIOAlignment() -> (memory: Int, offset: Int)? {
        var memory: UInt32 = 0
        var offset: UInt32 = 0
        guard unsafe clinux_dio_alignment(self.fileDescriptor, &memory, &offset) == 0 else { return nil }
        return (Int(memory), Int(offset))
    }

    // MARK: Transfers

    /// Reads into the pieces of `buffer` from `fileOffset` on, straight into their memory.
    /// - Returns: the bytes read: `buffer.byteCount`, or fewer if the file ends first.
    public func read(into buffer: MemoryExtents, at fileOffset: Int64) throws(MemoryError) -> Int {
        try self.transfer(buffer, at: fileOffset, writing: false)
    }

    /// Writes the bytes of `buffer`'s pieces at `fileOffset`, straight from their memory.
    public func write(from buffer: MemoryExtents, at fileOffset: Int64) throws(MemoryError) {
        _ = try self.transfer(buffer, at: fileOffset, writing: true)
    }

    /// ``read(into:at:)`` only if it need not wait for the device (`preadv2` with RWF_NOWAIT:
    /// the data is in the page cache): a caller on an event loop serves cached data at once and
    /// hands the rest to a thread that may block.
    /// - Returns: the bytes read, or `nil` when the read would block (or the file system cannot
    ///   tell); nothing useful is in `buffer` then.
    public func readIfReady(into buffer: MemoryExtents, at fileOffset: Int64) throws(MemoryError) -> Int? {
        do {
            return try self.transfer(buffer, at: fileOffset, writing: false, nowait: true)
        } catch MemoryError.system(_, let code) where [EAGAIN, EOPNOTSUPP, EINVAL].contains(code) {
            return nil
        }
    }

    /// ``write(from:at:)`` only if it need not block (`pwritev2` with RWF_NOWAIT).
    /// - Returns: `false` when it would block (or the file system cannot tell): the write must
    ///   be done again with ``write(from:at:)`` (part of it may have been written: the same bytes).
    public func writeIfReady(from buffer: MemoryExtents, at fileOffset: Int64) throws(MemoryError) -> Bool {
        do {
            _ = try self.transfer(buffer, at: fileOffset, writing: true, nowait: true)
            return true
        } catch MemoryError.system(_, let code) where [EAGAIN, EOPNOTSUPP, EINVAL].contains(code) {
            return false
        }
    }

    /// Reads `buffer.count` bytes at `fileOffset` into `buffer`.
    /// - Returns: the bytes read: `buffer.count`, or fewer if the file ends first.
    public func read(into buffer: inout [UInt8], at fileOffset: Int64) throws(MemoryError) -> Int {
        var done = 0
        let file = self.file
        while done < buffer.count {
            // swift-system retries EINTR itself.
            let n = try SystemCall.run("pread") {
                try unsafe buffer.withUnsafeMutableBytes { bytes in
                    // SAFETY: the slice stays inside the array's storage (done < count).
                    let rest = unsafe UnsafeMutableRawBufferPointer(rebasing: bytes[done...])
                    return try unsafe file.read(fromAbsoluteOffset: fileOffset + Int64(done), into: rest)
                }
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Writes all of `bytes` at `fileOffset`.
    public func write(_ bytes: ArraySlice<UInt8>, at fileOffset: Int64) throws(MemoryError) {
        var done = 0
        let file = self.file
        while done < bytes.count {
            // swift-system retries EINTR itself.
            let n = try SystemCall.run("pwrite") {
                try unsafe bytes.withUnsafeBytes { source in
                    // SAFETY: the rest stays inside the slice's storage (done < count).
                    let rest = unsafe UnsafeRawBufferPointer(rebasing: source[done...])
                    return try unsafe file.write(toAbsoluteOffset: fileOffset + Int64(done), rest)
                }
            }
            // pwrite returns 0 only for an empty request; anything else would loop forever.
            guard n > 0 else { throw MemoryError.system(call: "pwrite", errno: EIO) }
            done += n
        }
    }

    /// The loop behind both vector transfers: from piece `index`, `skip` bytes in, up to
    /// ``maximumPieces`` pieces per call, resuming where a short transfer stopped.
    private func transfer(_ buffer: MemoryExtents, at fileOffset: Int64, writing: Bool, nowait: Bool = false) throws(MemoryError) -> Int {
        let extents = buffer.extents
        var index = 0
        var skip = 0
        var done = 0
        // SAFETY: zeroed iovecs (null base, length 0) are only placeholders, filled before use.
        var vector = unsafe [iovec](repeating: iovec(), count: min(extents.count, Self.maximumPieces))
        while index < extents.count {
            let pieces = min(extents.count - index, Self.maximumPieces)
            for i in 0..<pieces {
                let extent = extents[index + i]
                let start = i == 0 ? skip : 0
                // SAFETY: each piece was checked against `buffer.memory` when it was added;
                // `buffer` keeps that mapping alive for this call.
                unsafe vector[i] = iovec(iov_base: buffer.memory.base + extent.offset + start, iov_len: extent.count - start)
            }
            let n = unsafe vector.withUnsafeBufferPointer { iov in
                let position = off_t(fileOffset) + off_t(done)
                if nowait {
                    return unsafe writing
                        ? clinux_pwritev_nowait(self.fileDescriptor, iov.baseAddress!, Int32(pieces), Int64(position))
                        : clinux_preadv_nowait(self.fileDescriptor, iov.baseAddress!, Int32(pieces), Int64(position))
                }
                return unsafe writing
                    ? pwritev(self.fileDescriptor, iov.baseAddress!, Int32(pieces), position)
                    : preadv(self.fileDescriptor, iov.baseAddress!, Int32(pieces), position)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw MemoryError.system(call: writing ? "pwritev" : "preadv", errno: errno)
            }
            if n == 0 {
                // End of file for a read; a write of a non-empty vector never returns 0.
                guard !writing else { throw MemoryError.system(call: "pwritev", errno: EIO) }
                break
            }
            done += n
            // Step over the pieces this call finished.
            var left = n
            while left > 0 {
                let rest = extents[index].count - skip
                if left >= rest {
                    left -= rest
                    index += 1
                    skip = 0
                } else {
                    skip += left
                    left = 0
                }
            }
        }
        return done
    }
}

extension PositionalFile {
    /// The file's device and inode: what names its contents across processes, so that a
    /// process that opened "the same path" can check it holds the same file.
    public func identity() throws(MemoryError) -> (device: UInt64, inode: UInt64) {
        let status = try SystemCall.run("fstat") { try self.file.stat() }
        return (UInt64(status.deviceID.rawValue), UInt64(status.inode.rawValue))
    }
}
