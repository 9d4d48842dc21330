import CLinux
import Glibc
import SystemPackage

/// Another process's memory, read through `/proc/PID/mem` with `pread`: how a host reaches a
/// user-space guest driver's own buffers when the addresses it names are its virtual addresses
/// (a uio program without hugepages uses them as its "physical" ones, 05 §10).
///
/// Reading needs ptrace access to the process (the same user and Yama's `ptrace_scope` ≤ 0,
/// the process's parent under scope 1, or `CAP_SYS_PTRACE`). An address the process has not
/// mapped is an error, never a fault here: the kernel checks every byte.
public final class ProcessMemory: Sendable {
    /// The process read.
    public let processID: Int32
    let fileDescriptor: Int32

    /// Opens `/proc/PID/mem` for reading.
    /// - Throws: ``MemoryError/system(call:errno:)`` when the process is gone or may not be read.
    public init(processID: Int32) throws(MemoryError) {
        let path = "/proc/\(processID)/mem"
        let file = try SystemCall.run("open(\(path))") {
            try FileDescriptor.open(FilePath(path), .readOnly, options: .closeOnExec)
        }
        self.processID = processID
        self.fileDescriptor = file.rawValue
    }

    deinit { SystemCall.close(self.fileDescriptor) }

    /// Copies `count` bytes at the process's address `address` into `buffer[bufferOffset...]`.
    /// - Throws: ``MemoryError/system(call:errno:)`` (EIO, EFAULT) when any of them is not
    ///   mapped in the process, or it exited; ``MemoryError/outOfBounds(offset:count:size:)``
    ///   for an address beyond what `pread` takes.
    public func read(at address: UInt64, count: Int, into buffer: inout [UInt8], at bufferOffset: Int = 0) throws(MemoryError) {
        precondition(count >= 0 && bufferOffset >= 0 && bufferOffset + count <= buffer.count, "destination too small")
        // pread takes a signed offset: kernel addresses (the upper half) are no user memory.
        guard address <= UInt64(Int64.max) - UInt64(count) else {
            throw MemoryError.outOfBounds(offset: Int(truncatingIfNeeded: address), count: count, size: Int(Int64.max))
        }
        var done = 0
        let file = FileDescriptor(rawValue: self.fileDescriptor)
        while done < count {
            // swift-system retries EINTR itself.
            let result = try SystemCall.run("pread(/proc/\(self.processID)/mem)") {
                try unsafe buffer.withUnsafeMutableBytes { destination in
                    // SAFETY: [bufferOffset + done, bufferOffset + count) lies inside `buffer` (the
                    // precondition above); the kernel writes at most `count - done` bytes.
                    let range = (bufferOffset + done)..<(bufferOffset + count)
                    let piece = unsafe UnsafeMutableRawBufferPointer(rebasing: destination[range])
                    return try unsafe file.read(fromAbsoluteOffset: Int64(address) + Int64(done), into: piece)
                }
            }
            // Zero bytes: the range ends in unmapped memory.
            guard result > 0 else { throw MemoryError.system(call: "pread(/proc/\(self.processID)/mem)", errno: EIO) }
            done += result
        }
    }
}

extension StreamSocket {
    /// The process at the other end of a Unix socket (`SO_PEERCRED`: the process that
    /// connected, as of its `connect`), or `nil` for a socket that has none (TCP).
    public var peerProcessID: Int32? {
        var pid: pid_t = 0
        var uid: uid_t = 0
        var gid: gid_t = 0
        guard unsafe clinux_peer_cred(self.fileDescriptor, &pid, &uid, &gid) == 0, pid > 0 else { return nil }
        return pid
    }
}

extension MappedMemory {
    /// Where this mapping starts in this process's address space, as a number: what a uio
    /// driver without hugepages names as the "physical" address of its own memory (a host
    /// reads it through ``ProcessMemory``). Never a way back to a pointer.
    public var processAddress: UInt64 { UInt64(UInt(bitPattern: unsafe self.base)) }

    /// Where a piece of a joined mapping comes from.
    public enum Piece: Sendable {
        /// `size` bytes of an open descriptor at a file offset (not taken).
        case descriptor(Int32, offset: Int, size: Int)
        /// A whole file, `size` bytes (opened for the mapping only).
        case file(String, size: Int)

        var size: Int {
            switch self {
            case .descriptor(_, _, let size), .file(_, let size): return size
            }
        }
    }

    /// Maps several pieces back to back into one contiguous shared mapping: what a program
    /// sees as one memory when a device hands it as separate maps (a uio NIC's receive and
    /// send buffers, maps 3 and 4).
    /// - Throws: ``MemoryError`` for a size or offset that is not whole pages, a file that
    ///   cannot be opened, or a failed mmap.
    public static func joining(_ pieces: [Piece]) throws(MemoryError) -> MappedMemory {
        guard !pieces.isEmpty else { throw MemoryError.invalidSize(0) }
        var length = 0
        for piece in pieces {
            try checkSize(piece.size)
            if case .descriptor(_, let offset, _) = piece, offset < 0 || offset % pageSize != 0 { throw MemoryError.invalidSize(offset) }
            length += piece.size
        }
        // Reserve the whole range first, then place each piece into it.
        let base = unsafe try mapOrThrow(nil, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        let mapping = unsafe MappedMemory(base: base, size: length, reservedLength: length, fileDescriptor: nil)
        var at = 0
        for piece in pieces {
            switch piece {
            case .descriptor(let fd, let offset, let size):
                _ = unsafe try mapOrThrow(base + at, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, offset)
            case .file(let path, let size):
                let file = try SystemCall.run("open(\(path))") {
                    try FileDescriptor.open(FilePath(path), .readWrite, options: .closeOnExec)
                }
                // The mapping keeps the file; the descriptor is not needed after mmap.
                defer { SystemCall.close(file.rawValue) }
                _ = unsafe try mapOrThrow(base + at, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, file.rawValue, 0)
            }
            at += piece.size
        }
        return mapping
    }
}

extension StreamSocket {
    /// Whether the peer has closed or shut down its end (`POLLRDHUP`/`POLLHUP`), even with
    /// bytes still unread: tells a reconnecting peer from a closed one without reading.
    public var peerHasClosed: Bool {
        // POLLRDHUP (Linux's 0x2000) is hidden behind _GNU_SOURCE in Glibc's module.
        let rdhup: Int16 = 0x2000
        var entry = pollfd(fd: self.fileDescriptor, events: rdhup | Int16(POLLIN), revents: 0)
        // SAFETY: one pollfd, passed by address for the call only.
        let ready = unsafe poll(&entry, 1, 0)
        return ready > 0 && entry.revents & (rdhup | Int16(POLLHUP) | Int16(POLLERR)) != 0
    }
}
