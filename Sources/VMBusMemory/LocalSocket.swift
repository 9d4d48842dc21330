import CLinux
import Glibc
import SystemPackage

/// A Unix `SOCK_SEQPACKET` socket (spec 09 §1): datagrams that keep their boundaries, with
/// file descriptors passed as `SCM_RIGHTS`. Owns its descriptor.
public final class LocalSocket: @unchecked Sendable {
    /// The descriptor (for polling).
    public let fileDescriptor: Int32

    /// Wraps a descriptor this object now owns.
    public init(taking fd: Int32) { self.fileDescriptor = fd }

    deinit { SystemCall.close(self.fileDescriptor) }

    /// A socket listening at `path`. A stale socket file there (nobody answers on it) is
    /// replaced; a live one, or a file that is not a socket, is refused with
    /// ``MemoryError/pathInUse(path:why:)``.
    public static func listen(path: String, backlog: Int32 = 16) throws(MemoryError) -> LocalSocket {
        try SocketPath.claim(path, type: Int32(SOCK_SEQPACKET.rawValue))
        let fd = unsafe clinux_seqpacket_listen(path, backlog)
        guard fd >= 0 else { throw MemoryError.system(call: "bind/listen \(path)", errno: errno) }
        return LocalSocket(taking: fd)
    }

    /// Removes a socket file (after the listener is gone).
    public static func removeFile(path: String) { _ = unsafe unlink(path) }

    /// A socket connected to `path`.
    public static func connect(path: String) throws(MemoryError) -> LocalSocket {
        let fd = unsafe clinux_seqpacket_connect(path)
        guard fd >= 0 else { throw MemoryError.system(call: "connect \(path)", errno: errno) }
        return LocalSocket(taking: fd)
    }

    /// A connected pair (tests, and processes that inherit one end).
    public static func pair() throws(MemoryError) -> (LocalSocket, LocalSocket) {
        let (a, b) = try DescriptorIO.seqPacketPair()
        return (LocalSocket(taking: a), LocalSocket(taking: b))
    }

    /// Accepts one connection (blocking, retrying on EINTR).
    public func accept() throws(MemoryError) -> LocalSocket {
        let fd = clinux_accept(self.fileDescriptor)
        guard fd >= 0 else { throw MemoryError.system(call: "accept", errno: errno) }
        return LocalSocket(taking: fd)
    }

    /// Sends one datagram with the given descriptors (at most 8; they stay open here).
    public func send(_ bytes: [UInt8], fds: [Int32] = []) throws(MemoryError) {
        precondition(fds.count <= 8, "at most 8 descriptors per datagram")
        let n = unsafe bytes.withUnsafeBytes { buffer in
            unsafe fds.withUnsafeBufferPointer { unsafe clinux_send_fds(self.fileDescriptor, buffer.baseAddress, buffer.count, $0.baseAddress, Int32(fds.count)) }
        }
        guard n == bytes.count else { throw MemoryError.system(call: "sendmsg", errno: n < 0 ? errno : EMSGSIZE) }
    }

    /// One received datagram.
    public struct Datagram: Sendable {
        /// The bytes (empty at end of stream: the peer closed).
        public var bytes: [UInt8]
        /// Descriptors that came with it, now owned by the caller.
        public var fds: [Int32]
        /// The datagram or its descriptors did not fit: a protocol error.
        public var truncated: Bool
        /// The peer closed the connection.
        public var isEndOfStream: Bool { self.bytes.isEmpty && self.fds.isEmpty && !self.truncated }
    }

    /// Receives one datagram of at most `maximumLength` bytes (blocking).
    public func receive(maximumLength: Int = 4096) throws(MemoryError) -> Datagram {
        var bytes = [UInt8](repeating: 0, count: maximumLength)
        var fds = [Int32](repeating: -1, count: 8)
        var count: Int32 = 0
        var truncated: Int32 = 0
        let n = unsafe bytes.withUnsafeMutableBytes { buffer in
            unsafe fds.withUnsafeMutableBufferPointer { fdBuffer in
                unsafe clinux_recv_fds(self.fileDescriptor, buffer.baseAddress, buffer.count, fdBuffer.baseAddress, 8, &count, &truncated)
            }
        }
        guard n >= 0 else { throw MemoryError.system(call: "recvmsg", errno: errno) }
        return Datagram(bytes: Array(bytes[0..<n]), fds: Array(fds[0..<Int(count)]), truncated: truncated != 0)
    }

    /// Stops both directions (wakes a thread blocked in ``receive(maximumLength:)``).
    public func shutdown() { _ = Glibc.shutdown(self.fileDescriptor, Int32(SHUT_RDWR)) }
}

/// An epoll set: descriptors with a token each; ``wait(timeoutMilliseconds:)`` returns the
/// tokens of the readable ones.
public final class EventPoll: @unchecked Sendable {
    let fd: Int32
    var tokens = [UInt64](repeating: 0, count: 64)

    public init() throws(MemoryError) {
        self.fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard self.fd >= 0 else { throw MemoryError.system(call: "epoll_create1", errno: errno) }
    }

    deinit { SystemCall.close(self.fd) }

    /// Watches `descriptor` for input.
    public func add(_ descriptor: Int32, token: UInt64) throws(MemoryError) {
        guard clinux_epoll_add(self.fd, descriptor, token) == 0 else { throw MemoryError.system(call: "epoll_ctl", errno: errno) }
    }

    /// Stops watching `descriptor`.
    public func remove(_ descriptor: Int32) { _ = clinux_epoll_del(self.fd, descriptor) }

    /// Waits for input (−1: forever, 0: poll) and returns the ready tokens. Not thread-safe:
    /// one thread waits on a set.
    public func wait(timeoutMilliseconds: Int32) throws(MemoryError) -> ArraySlice<UInt64> {
        let n = unsafe self.tokens.withUnsafeMutableBufferPointer { unsafe clinux_epoll_wait(self.fd, $0.baseAddress, 64, timeoutMilliseconds) }
        guard n >= 0 else { throw MemoryError.system(call: "epoll_wait", errno: errno) }
        return self.tokens[0..<Int(n)]
    }
}

extension EventFD {
    /// Wraps a received eventfd descriptor, which this object now owns.
    public convenience init(taking fd: Int32) {
        self.init(unchecked: fd)
    }

    /// Clears the counter without blocking (the descriptor must be non-blocking, or known to
    /// be readable); returns the count.
    @discardableResult
    public func drain() -> UInt64 {
        var count: UInt64 = 0
        return unsafe read(self.fileDescriptor, &count, 8) == 8 ? count : 0
    }
}

extension MappedMemory {
    /// The size and the seals of a memory file (spec 09 §2.1 checks both).
    public static func describe(fileDescriptor fd: Int32) throws(MemoryError) -> (size: Int, seals: Int32) {
        let size = try SystemCall.run("fstat") { try FileDescriptor(rawValue: fd).stat().size }
        let seals = clinux_get_seals(fd)
        return (Int(size), seals < 0 ? 0 : seals)
    }

    /// Whether `seals` forbid shrinking and growing.
    public static func sealsFixSize(_ seals: Int32) -> Bool {
        seals & CLINUX_F_SEAL_SHRINK != 0 && seals & CLINUX_F_SEAL_GROW != 0
    }
}
