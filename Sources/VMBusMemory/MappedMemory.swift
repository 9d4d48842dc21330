// UNSAFETY: this target exists to hold the project's pointer code. Shared memory is mapped with
// mmap and reached through raw pointers and atomics; every access is bounds-checked against the
// mapping before the pointer is formed, so no caller input can reach outside it. Other targets
// see only safe methods.

import Atomics
import CLinux
import Glibc
import SystemPackage
import VMBusRing

/// Why memory could not be mapped or accessed.
public enum MemoryError: Error, Hashable, Sendable {
    /// A system call failed: its name and errno.
    case system(call: String, errno: Int32)
    /// A size that is zero, not a whole number of pages, or too large.
    case invalidSize(Int)
    /// An access outside the mapping.
    case outOfBounds(offset: Int, count: Int, size: Int)
    /// A page number (PFN) outside the memory it refers to.
    case pageOutOfRange(pfn: UInt64, pages: Int)
    /// A socket path that cannot be listened on: a live process owns it, or it is not a socket.
    case pathInUse(path: String, why: String)
}

extension MemoryError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .system(let call, let errno): return "\(call) failed: \(MemoryError.text(errno))"
        case .invalidSize(let size): return "invalid size \(size): must be a non-zero multiple of 4096"
        case .outOfBounds(let offset, let count, let size):
            return "access of \(count) bytes at \(offset) is outside \(size) bytes of memory"
        case .pageOutOfRange(let pfn, let pages): return "page \(pfn) is outside \(pages) pages of memory"
        case .pathInUse(_, let why): return why
        }
    }
}

/// A region of memory mapped into this process: anonymous shared memory, a sealed memfd, a
/// file (a ring file, a uio device), or pages of another mapping arranged anew.
///
/// The mapping lives as long as this object. All accessors check bounds first; atomic accessors
/// also require natural alignment.
@safe
public final class MappedMemory: @unchecked Sendable {
    /// Bytes mapped.
    public let size: Int
    /// The descriptor the mapping came from, if this object owns one (memfd, file).
    public let fileDescriptor: Int32?
    @usableFromInline let base: UnsafeMutableRawPointer
    /// The length actually reserved (may exceed `size` for double mappings).
    let reservedLength: Int

    /// The page size of every mapping: Hyper-V's 4 KiB.
    public static let pageSize = 4096

    init(base: UnsafeMutableRawPointer, size: Int, reservedLength: Int, fileDescriptor: Int32?) {
        unsafe self.base = base
        self.size = size
        self.reservedLength = reservedLength
        self.fileDescriptor = fileDescriptor
    }

    deinit {
        // SAFETY: base/reservedLength are exactly what mmap returned for this object.
        unsafe _ = munmap(self.base, self.reservedLength)
        if let fd = self.fileDescriptor { SystemCall.close(fd) }
    }

    /// Anonymous shared memory (`MAP_SHARED | MAP_ANONYMOUS`): shared with children after fork.
    public static func anonymous(size: Int) throws(MemoryError) -> MappedMemory {
        try checkSize(size)
        let base = unsafe try mapOrThrow(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
        return unsafe MappedMemory(base: base, size: size, reservedLength: size, fileDescriptor: nil)
    }

    /// A new memfd of `size` bytes, sealed against shrinking and growing, mapped shared. Its
    /// descriptor can be passed to another process (spec 09's guest memory).
    public static func memfd(name: String, size: Int) throws(MemoryError) -> MappedMemory {
        try checkSize(size)
        let fd = unsafe clinux_memfd_create(name, CLINUX_MFD_CLOEXEC | CLINUX_MFD_ALLOW_SEALING)
        guard fd >= 0 else { throw MemoryError.system(call: "memfd_create", errno: errno) }
        do {
            try SystemCall.run("ftruncate") { try FileDescriptor(rawValue: fd).resize(to: Int64(size)) }
        } catch {
            SystemCall.close(fd)
            throw error
        }
        guard clinux_add_seals(fd, CLINUX_F_SEAL_SHRINK | CLINUX_F_SEAL_GROW) == 0 else {
            let e = errno
            SystemCall.close(fd)
            throw MemoryError.system(call: "fcntl(F_ADD_SEALS)", errno: e)
        }
        return try map(fileDescriptor: fd, size: size, taking: true)
    }

    /// Maps a file shared. With `create`, the file is created, or emptied if it exists, then
    /// sized to `size` bytes, so every byte reads zero (nothing of an old file survives);
    /// otherwise `size` may be `nil` to map the whole existing file.
    public static func file(path: String, size: Int? = nil, create: Bool = false) throws(MemoryError) -> MappedMemory {
        // O_TRUNC first: resizing alone would keep the old bytes below the new size.
        let options: FileDescriptor.OpenOptions = create ? [.closeOnExec, .create, .truncate] : [.closeOnExec]
        let file = try SystemCall.run("open(\(path))") {
            try FileDescriptor.open(FilePath(path), .readWrite, options: options, permissions: .ownerReadWrite)
        }
        do {
            var length = size ?? 0
            if create {
                try SystemCall.run("ftruncate") { try file.resize(to: Int64(length)) }
            } else if size == nil {
                length = Int(try SystemCall.run("fstat") { try file.stat().size })
            }
            return try map(fileDescriptor: file.rawValue, size: length, taking: true)
        } catch {
            SystemCall.close(file.rawValue)
            throw error
        }
    }

    /// Maps `size` bytes of an open descriptor (e.g. a memfd received from another process).
    /// - Parameter taking: close the descriptor when this mapping goes away.
    public static func map(fileDescriptor fd: Int32, size: Int, offset: Int = 0, taking: Bool = false)
        throws(MemoryError) -> MappedMemory
    {
        try checkSize(size)
        let base = unsafe try mapOrThrow(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset)
        return unsafe MappedMemory(base: base, size: size, reservedLength: size, fileDescriptor: taking ? fd : nil)
    }

    static func checkSize(_ size: Int) throws(MemoryError) {
        guard size > 0, size % pageSize == 0 else { throw MemoryError.invalidSize(size) }
    }

    static func mapOrThrow(
        _ address: UnsafeMutableRawPointer?, _ length: Int, _ prot: Int32, _ flags: Int32, _ fd: Int32, _ offset: Int
    ) throws(MemoryError) -> UnsafeMutableRawPointer {
        // SAFETY: mmap validates its arguments; MAP_FIXED callers pass addresses inside a
        // reservation they own.
        let result = unsafe mmap(address, length, prot, flags, fd, off_t(offset))
        guard let result = unsafe result, unsafe result != MAP_FAILED else {
            throw MemoryError.system(call: "mmap", errno: errno)
        }
        return unsafe result
    }

    // MARK: Bounds-checked access

    /// Throws unless `[offset, offset + count)` lies inside the mapping.
    @inlinable
    public func check(_ offset: Int, _ count: Int) throws(MemoryError) {
        guard offset >= 0, count >= 0, offset <= self.size, count <= self.size - offset else {
            throw MemoryError.outOfBounds(offset: offset, count: count, size: self.size)
        }
    }

    /// The 32-bit atomic at `offset` (4-aligned, in bounds: checked by callers).
    @inlinable
    func atomic32(_ offset: Int) -> UnsafeAtomic<UInt32> {
        // SAFETY: callers checked bounds and alignment; the mapping outlives the returned
        // handle's use (it is used immediately and never stored).
        unsafe UnsafeAtomic<UInt32>(at: (self.base + offset).assumingMemoryBound(to: UnsafeAtomic<UInt32>.Storage.self))
    }

    @inlinable
    func atomic64(_ offset: Int) -> UnsafeAtomic<UInt64> {
        // SAFETY: as atomic32.
        unsafe UnsafeAtomic<UInt64>(at: (self.base + offset).assumingMemoryBound(to: UnsafeAtomic<UInt64>.Storage.self))
    }

    /// Atomically loads the u32 at `offset`.
    public func loadUInt32(at offset: Int, ordering: RingLoadOrdering = .acquiring) throws(MemoryError) -> UInt32 {
        try self.checkAligned(offset, 4)
        return self.load32(offset, ordering)
    }

    /// Atomically stores the u32 at `offset`.
    public func storeUInt32(_ value: UInt32, at offset: Int) throws(MemoryError) {
        try self.checkAligned(offset, 4)
        self.atomic32(offset).store(value, ordering: .releasing)
    }

    @inlinable
    func load32(_ offset: Int, _ ordering: RingLoadOrdering) -> UInt32 {
        switch ordering {
        case .relaxed: return self.atomic32(offset).load(ordering: .relaxed)
        case .acquiring: return self.atomic32(offset).load(ordering: .acquiring)
        }
    }

    func checkAligned(_ offset: Int, _ alignment: Int) throws(MemoryError) {
        try self.check(offset, alignment)
        guard offset % alignment == 0 else { throw MemoryError.outOfBounds(offset: offset, count: alignment, size: self.size) }
    }

    /// Atomically ORs `bits` into the u32 at `offset`; returns the previous value.
    @discardableResult
    public func orUInt32(_ bits: UInt32, at offset: Int) throws(MemoryError) -> UInt32 {
        try self.checkAligned(offset, 4)
        return self.atomic32(offset).loadThenBitwiseOr(with: bits, ordering: .acquiringAndReleasing)
    }

    /// Atomically replaces the u32 at `offset`; returns the previous value (test-and-clear of
    /// a whole bitmap word).
    public func exchangeUInt32(_ value: UInt32, at offset: Int) throws(MemoryError) -> UInt32 {
        try self.checkAligned(offset, 4)
        return self.atomic32(offset).exchange(value, ordering: .acquiringAndReleasing)
    }

    /// Writes `count` zero bytes at `offset`.
    public func zero(at offset: Int, count: Int) throws(MemoryError) {
        try self.check(offset, count)
        self.zeroBytes(offset, count)
    }

    /// Copies `count` bytes at `offset` into `buffer[bufferOffset...]`.
    public func read(at offset: Int, count: Int, into buffer: inout [UInt8], at bufferOffset: Int = 0) throws(MemoryError) {
        try self.check(offset, count)
        precondition(bufferOffset >= 0 && bufferOffset + count <= buffer.count, "destination too small")
        self.copyOut(offset, count, &buffer, bufferOffset)
    }

    /// Copies `bytes` to `offset`.
    public func write(_ bytes: ArraySlice<UInt8>, at offset: Int) throws(MemoryError) {
        try self.check(offset, bytes.count)
        self.copyIn(offset, bytes)
    }

    @inlinable
    func copyOut(_ offset: Int, _ count: Int, _ buffer: inout [UInt8], _ bufferOffset: Int) {
        guard count > 0 else { return }
        unsafe buffer.withUnsafeMutableBytes { destination in
            // SAFETY: both ranges were bounds-checked by the caller.
            unsafe (destination.baseAddress! + bufferOffset).copyMemory(from: self.base + offset, byteCount: count)
        }
    }

    @inlinable
    func copyIn(_ offset: Int, _ bytes: ArraySlice<UInt8>) {
        guard !bytes.isEmpty else { return }
        unsafe bytes.withUnsafeBytes { source in
            // SAFETY: the destination range was bounds-checked by the caller.
            unsafe (self.base + offset).copyMemory(from: source.baseAddress!, byteCount: source.count)
        }
    }

    @inlinable
    func zeroBytes(_ offset: Int, _ count: Int) {
        guard count > 0 else { return }
        // SAFETY: bounds-checked by the caller.
        unsafe (self.base + offset).initializeMemory(as: UInt8.self, repeating: 0, count: count)
    }
}

extension MappedMemory {
    /// Maps the given 4 KiB pages of a memory file (a guest's memfd) in order, into one
    /// contiguous range: the view a host needs of a GPADL, whose page numbers need not be
    /// contiguous (04 §4). Runs of consecutive PFNs share one mmap.
    /// - Parameters:
    ///   - fd: the memory file; `memorySize` bytes of it are valid.
    ///   - pfns: the page numbers, as a GPADL lists them.
    /// - Throws: ``MemoryError/pageOutOfRange(pfn:pages:)`` for a page beyond `memorySize`
    ///   (checked for every page before anything is mapped), or a system error.
    public static func mapPages(of fd: Int32, memorySize: Int, pfns: [UInt64]) throws(MemoryError) -> MappedMemory {
        let pages = memorySize / pageSize
        guard !pfns.isEmpty else { throw MemoryError.invalidSize(0) }
        for pfn in pfns where pfn >= UInt64(pages) { throw MemoryError.pageOutOfRange(pfn: pfn, pages: pages) }
        let length = pfns.count * pageSize
        // Reserve the range first, then place each run of pages into it.
        let base = unsafe try mapOrThrow(nil, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        let mapping = unsafe MappedMemory(base: base, size: length, reservedLength: length, fileDescriptor: nil)
        var index = 0
        while index < pfns.count {
            var run = 1
            while index + run < pfns.count && pfns[index + run] == pfns[index] + UInt64(run) { run += 1 }
            _ = unsafe try mapOrThrow(
                base + index * pageSize, run * pageSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
                Int(pfns[index]) * pageSize)
            index += run
        }
        return mapping
    }
}
