import CLinux
import Glibc
import SystemPackage

/// A doorbell: a Linux eventfd (spec 09 §2.3 uses one per direction per channel). Writing adds
/// to its counter; a read returns and clears it, blocking while it is zero.
public final class EventFD: @unchecked Sendable {
    /// The descriptor, for passing to another process.
    public let fileDescriptor: Int32

    /// A new blocking eventfd with counter 0.
    public init() throws(MemoryError) {
        let fd = eventfd(0, Int32(EFD_CLOEXEC))
        guard fd >= 0 else { throw MemoryError.system(call: "eventfd", errno: errno) }
        self.fileDescriptor = fd
    }

    /// A new non-blocking eventfd (for polled doorbells: reads never block).
    public static func nonBlocking() throws(MemoryError) -> EventFD {
        let fd = eventfd(0, Int32(EFD_CLOEXEC) | Int32(EFD_NONBLOCK))
        guard fd >= 0 else { throw MemoryError.system(call: "eventfd", errno: errno) }
        return EventFD(unchecked: fd)
    }

    init(unchecked fd: Int32) { self.fileDescriptor = fd }

    deinit { SystemCall.close(self.fileDescriptor) }

    // signal() and wait() stay on read(2)/write(2): they run once per doorbell, and a polled
    // eventfd's empty read fails with EAGAIN as a matter of course, which swift-system would
    // report by boxing an untyped error (a heap allocation) every time.

    /// Rings the doorbell.
    public func signal() {
        var one: UInt64 = 1
        // An eventfd write of 1 fails only if the counter would overflow (2^64 − 2 pending
        // signals), which cannot happen while the reader drains it.
        _ = unsafe write(self.fileDescriptor, &one, 8)
    }

    /// Blocks until the doorbell rang; returns how many times it rang (retrying on EINTR).
    @discardableResult
    public func wait() -> UInt64 {
        var count: UInt64 = 0
        while unsafe read(self.fileDescriptor, &count, 8) != 8 {
            if errno != EINTR { return 0 }
        }
        return count
    }
}

extension EventFD {
    /// SIGUSR1 from now on, counted on an eventfd by a signal handler that is in place when
    /// this returns, instead of its default action (which ends the process). The same eventfd
    /// for every call.
    public static func hibernateSignal() throws(MemoryError) -> EventFD {
        let fd = clinux_hibernate_signal()
        guard fd >= 0 else { throw MemoryError.system(call: "sigaction", errno: errno) }
        return Self.hibernate.withLock { shared in
            if let shared { return shared }
            let made = EventFD(unchecked: fd)
            shared = made
            return made
        }
    }

    /// SIGINT and SIGTERM from now on, counted on an eventfd by a signal handler that is in
    /// place when this returns — no signal sent after it is lost — instead of their default
    /// action. ``wait()`` blocks until one arrived. The same eventfd for every call.
    public static func terminationSignals() throws(MemoryError) -> EventFD {
        let fd = clinux_termination_signals()
        guard fd >= 0 else { throw MemoryError.system(call: "sigaction", errno: errno) }
        return Self.termination.withLock { shared in
            if let shared { return shared }
            let made = EventFD(unchecked: fd)
            shared = made
            return made
        }
    }

    static let termination = Locked<EventFD?>(nil)
    static let hibernate = Locked<EventFD?>(nil)
}

/// Byte and datagram I/O on file descriptors, for the pipe and socket baselines of the
/// benchmarks and, later, the transports. Safe wrappers over read(2) and write(2).
public enum DescriptorIO {
    /// A pipe: (read end, write end).
    public static func pipe() throws(MemoryError) -> (Int32, Int32) {
        let ends = try SystemCall.run("pipe") { try FileDescriptor.pipe() }
        return (ends.readEnd.rawValue, ends.writeEnd.rawValue)
    }

    /// A connected pair of Unix `SOCK_SEQPACKET` sockets (spec 09's transport type).
    public static func seqPacketPair() throws(MemoryError) -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        let type = Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        guard unsafe socketpair(AF_UNIX, type, 0, &fds) == 0 else {
            throw MemoryError.system(call: "socketpair", errno: errno)
        }
        return (fds[0], fds[1])
    }

    /// A connected pair of Unix `SOCK_STREAM` sockets (a benchmark baseline).
    public static func streamPair() throws(MemoryError) -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        guard unsafe socketpair(AF_UNIX, type, 0, &fds) == 0 else {
            throw MemoryError.system(call: "socketpair", errno: errno)
        }
        return (fds[0], fds[1])
    }

    /// Writes all of `bytes` (a datagram socket takes it as one message).
    public static func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) throws(MemoryError) {
        let file = FileDescriptor(rawValue: fd)
        var done = 0
        while done < bytes.count {
            // swift-system retries EINTR itself.
            done += try SystemCall.run("write") {
                try unsafe bytes.withUnsafeBytes { try unsafe file.write(UnsafeRawBufferPointer(rebasing: $0[done...])) }
            }
        }
    }

    /// Reads once into `buffer[0..<count]`; returns the bytes read (0 at end of file).
    public static func readSome(_ fd: Int32, into buffer: inout [UInt8], count: Int) throws(MemoryError) -> Int {
        precondition(count <= buffer.count, "buffer too small")
        let file = FileDescriptor(rawValue: fd)
        return try SystemCall.run("read") {
            try unsafe buffer.withUnsafeMutableBytes { bytes in
                try unsafe file.read(into: UnsafeMutableRawBufferPointer(rebasing: bytes[..<count]))
            }
        }
    }

    /// Reads exactly `count` bytes (a stream); returns `false` at end of file first.
    public static func readFully(_ fd: Int32, into buffer: inout [UInt8], count: Int) throws(MemoryError) -> Bool {
        precondition(count <= buffer.count, "buffer too small")
        let file = FileDescriptor(rawValue: fd)
        var done = 0
        while done < count {
            // swift-system retries EINTR itself.
            let n = try SystemCall.run("read") {
                try unsafe buffer.withUnsafeMutableBytes { bytes in
                    try unsafe file.read(into: UnsafeMutableRawBufferPointer(rebasing: bytes[done..<count]))
                }
            }
            if n == 0 { return false }
            done += n
        }
        return true
    }

    /// Flushes every C output stream (standard output included), so a line printed for another
    /// process to wait for leaves now, not when the buffer fills.
    public static func flushOutput() {
        _ = fflush(nil)
    }

    /// A second descriptor for the same open file (close-on-exec), as a process that receives
    /// `fd` over SCM_RIGHTS would get.
    public static func duplicate(_ fd: Int32) throws(MemoryError) -> Int32 {
        // Not FileDescriptor.duplicate(): that is dup(2), whose copy survives exec.
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { throw MemoryError.system(call: "fcntl(F_DUPFD_CLOEXEC)", errno: errno) }
        return copy
    }

    /// Closes a descriptor.
    public static func close(_ fd: Int32) {
        SystemCall.close(fd)
    }
}

/// The clocks the integration services need (spec 09 §3).
public enum SystemClock {
    /// The local stand-in for Hyper-V's partition reference counter: `CLOCK_MONOTONIC` in
    /// 100 ns units (host and guest processes on one machine read the same counter).
    public static func referenceTime() -> UInt64 {
        var now = timespec()
        _ = unsafe clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 10_000_000 + UInt64(now.tv_nsec) / 100
    }

    /// Wall-clock time in nanoseconds since the Unix epoch (`CLOCK_REALTIME`): capture
    /// timestamps, which tools show as dates.
    public static func unixNanoseconds() -> UInt64 {
        var now = timespec()
        _ = unsafe clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }

    /// Wall-clock time as a Windows FILETIME (100 ns since 1601, 06 §5).
    public static func fileTimeNow() -> UInt64 {
        var now = timespec()
        _ = unsafe clock_gettime(CLOCK_REALTIME, &now)
        return 116_444_736_000_000_000 + UInt64(now.tv_sec) * 10_000_000 + UInt64(now.tv_nsec) / 100
    }
}

/// File-system calls Foundation does not offer in the needed form (nor swift-system, which has
/// no rename or unlink).
public enum FileSystem {
    /// `rename(2)`: moves `source` over `destination` atomically, replacing it if it exists.
    public static func rename(_ source: String, over destination: String) throws(MemoryError) {
        guard unsafe Glibc.rename(source, destination) == 0 else { throw MemoryError.system(call: "rename", errno: errno) }
    }

    /// `unlink(2)`: removes a file's name (its data goes when the last descriptor closes).
    public static func remove(_ path: String) throws(MemoryError) {
        guard unsafe Glibc.unlink(path) == 0 else { throw MemoryError.system(call: "unlink", errno: errno) }
    }
}

extension SystemClock {
    /// Sets the system's wall clock to a FILETIME (needs CAP_SYS_TIME).
    public static func setWallClock(fileTime: UInt64) throws(MemoryError) {
        let unix100ns = fileTime &- 116_444_736_000_000_000
        var time = timespec(tv_sec: Int(unix100ns / 10_000_000), tv_nsec: Int(unix100ns % 10_000_000) * 100)
        guard unsafe clock_settime(CLOCK_REALTIME, &time) == 0 else { throw MemoryError.system(call: "clock_settime", errno: errno) }
    }
}
