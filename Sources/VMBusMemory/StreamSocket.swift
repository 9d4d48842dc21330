import CLinux
import Glibc

/// Where a byte-stream socket lives: a Unix socket path or a TCP host and port. Text forms:
/// `unix:/path` (or any string with a `/`), `tcp:HOST:PORT` (HOST may be `[v6]`).
public enum StreamAddress: Hashable, Sendable, CustomStringConvertible {
    case unix(String)
    case tcp(host: String, port: Int)

    /// Parses the text form; `nil` if it is neither.
    public init?(_ text: String) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard !path.isEmpty else { return nil }
            self = .unix(path)
        } else if text.hasPrefix("tcp:") {
            let rest = text.dropFirst(4)
            guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]),
                (0...65535).contains(port)
            else { return nil }
            var host = String(rest[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            self = .tcp(host: host.isEmpty ? "127.0.0.1" : host, port: port)
        } else if text.contains("/") {
            self = .unix(text)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .unix(let path): return "unix:\(path)"
        case .tcp(let host, let port): return host.contains(":") ? "tcp:[\(host)]:\(port)" : "tcp:\(host):\(port)"
        }
    }
}

/// A connected or listening `SOCK_STREAM` socket (Unix or TCP) with blocking I/O, for relays
/// and tools that run one thread per direction. Owns its descriptor. Writes never raise
/// SIGPIPE (a gone peer is an error instead).
public final class StreamSocket: @unchecked Sendable {
    /// The descriptor.
    public let fileDescriptor: Int32

    /// Wraps a descriptor this object now owns.
    public init(taking fd: Int32) { self.fileDescriptor = fd }

    deinit { SystemCall.close(self.fileDescriptor) }

    /// A socket listening at `address` (an existing Unix socket file is replaced; TCP port 0
    /// picks a free port, see ``localPort``).
    public static func listen(_ address: StreamAddress, backlog: Int32 = 64) throws(MemoryError) -> StreamSocket {
        let fd: Int32
        switch address {
        case .unix(let path):
            try SocketPath.claim(path, type: Int32(SOCK_STREAM.rawValue))
            fd = unsafe clinux_unix_listen(path, Int32(SOCK_STREAM.rawValue), backlog)
        case .tcp(let host, let port):
            fd = unsafe clinux_tcp_listen(host, Int32(port), backlog)
        }
        guard fd >= 0 else { throw MemoryError.system(call: "listen \(address)", errno: errno) }
        return StreamSocket(taking: fd)
    }

    /// A socket connected to `address` (TCP with `TCP_NODELAY`).
    public static func connect(_ address: StreamAddress) throws(MemoryError) -> StreamSocket {
        let fd: Int32
        switch address {
        case .unix(let path): fd = unsafe clinux_unix_connect(path, Int32(SOCK_STREAM.rawValue))
        case .tcp(let host, let port): fd = unsafe clinux_tcp_connect(host, Int32(port))
        }
        guard fd >= 0 else { throw MemoryError.system(call: "connect \(address)", errno: errno) }
        return StreamSocket(taking: fd)
    }

    /// Accepts one connection (blocking; retries on EINTR). Fails once ``shutdown()`` was called.
    public func accept() throws(MemoryError) -> StreamSocket {
        let fd = clinux_accept(self.fileDescriptor)
        guard fd >= 0 else { throw MemoryError.system(call: "accept", errno: errno) }
        _ = clinux_tcp_nodelay(fd)  // fails harmlessly on Unix sockets
        return StreamSocket(taking: fd)
    }

    /// The local TCP port (after listening on port 0).
    public var localPort: Int? {
        let port = clinux_local_port(self.fileDescriptor)
        return port >= 0 ? Int(port) : nil
    }

    /// Reads what is there, up to `buffer.count` bytes, into the front of `buffer`; 0 at end of
    /// stream. Blocks until something arrives.
    public func read(into buffer: inout [UInt8]) throws(MemoryError) -> Int {
        try DescriptorIO.readSome(self.fileDescriptor, into: &buffer, count: buffer.count)
    }

    /// Reads what is there, up to `count` bytes, into `buffer[offset..<offset + count]`; 0 at
    /// end of stream. Blocks until something arrives; retries on EINTR.
    ///
    /// The range must lie inside `buffer` (a caller's mistake, not the peer's, so it traps).
    public func read(into buffer: inout [UInt8], at offset: Int, count: Int) throws(MemoryError) -> Int {
        precondition(offset >= 0 && count >= 0 && count <= buffer.count - offset, "range outside the buffer")
        guard count > 0 else { return 0 }
        while true {
            // SAFETY: the range was checked against the buffer above; the pointer does not
            // escape the closure.
            let n = unsafe buffer.withUnsafeMutableBytes {
                unsafe Glibc.recv(self.fileDescriptor, $0.baseAddress! + offset, count, 0)
            }
            if n >= 0 { return n }
            if errno != EINTR { throw MemoryError.system(call: "recv", errno: errno) }
        }
    }

    /// Reads exactly `count` bytes into `buffer[offset..<offset + count]` (blocking).
    /// - Returns: `false` if the stream ended first (what arrived before is in the buffer).
    public func readFully(into buffer: inout [UInt8], at offset: Int, count: Int) throws(MemoryError) -> Bool {
        var done = 0
        while done < count {
            let n = try self.read(into: &buffer, at: offset + done, count: count - done)
            if n == 0 { return false }
            done += n
        }
        return true
    }

    /// Writes all of `bytes` (blocking while the peer does not read).
    public func write(_ bytes: ArraySlice<UInt8>) throws(MemoryError) {
        var done = 0
        while done < bytes.count {
            let n = unsafe bytes.withUnsafeBytes {
                unsafe Glibc.send(self.fileDescriptor, $0.baseAddress! + done, $0.count - done, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw MemoryError.system(call: "send", errno: errno)
            }
            done += n
        }
    }

    /// Sends `bytes` only if the socket has room for them now: for notifications a peer that
    /// does not read may miss without losing anything, because the one already waiting says
    /// the same. Never blocks on a full socket.
    /// - Returns: whether the bytes were sent (`false`: the socket is full, or the peer gone).
    @discardableResult
    public func sendIfRoom(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard !bytes.isEmpty else { return true }
        // SAFETY: the pointer is used only inside the closure, for `count` bytes (non-empty).
        let n = unsafe bytes.withUnsafeBytes {
            unsafe Glibc.send(self.fileDescriptor, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
        }
        if n <= 0 { return false }
        // A stream may take part of a send; the rest must follow or the framing is lost. Such
        // a remainder is a few bytes, which the socket found room for a moment ago.
        if n < bytes.count { try? self.write(bytes.dropFirst(n)) }
        return true
    }

    /// Bounds every later blocking read and write on this socket: one that waits longer than
    /// `timeout` fails with `EAGAIN` instead of blocking on, so a peer that stops sending or
    /// reading cannot hold the thread serving it (`SO_RCVTIMEO`, `SO_SNDTIMEO`).
    public func setTimeouts(_ timeout: Duration) throws(MemoryError) {
        let (seconds, attoseconds) = timeout.components
        var value = timeval(tv_sec: Int(max(0, seconds)), tv_usec: Int(max(0, attoseconds) / 1_000_000_000_000))
        // A zero timeval means "no timeout" to the kernel: the smallest real one instead.
        if value.tv_sec == 0 && value.tv_usec == 0 { value.tv_usec = 1 }
        for option in [SO_RCVTIMEO, SO_SNDTIMEO] {
            // SAFETY: the pointer is to a local timeval, read by the kernel during the call only.
            let result = unsafe setsockopt(self.fileDescriptor, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<timeval>.size))
            guard result == 0 else { throw MemoryError.system(call: "setsockopt", errno: errno) }
        }
    }

    /// Ends this side's writing: the peer reads end of stream; reading goes on.
    public func shutdownWrite() { _ = Glibc.shutdown(self.fileDescriptor, Int32(SHUT_WR)) }

    /// Ends this side's reading: a blocked read returns end of stream (once what already
    /// arrived is read); writing goes on.
    public func shutdownRead() { _ = Glibc.shutdown(self.fileDescriptor, Int32(SHUT_RD)) }

    /// Ends both directions: blocked reads, writes and accepts on this socket return.
    public func shutdown() { _ = Glibc.shutdown(self.fileDescriptor, Int32(SHUT_RDWR)) }
}

extension DescriptorIO {
    /// A connected TCP pair over loopback, both ends `TCP_NODELAY` (benchmark baselines).
    public static func tcpPair() throws(MemoryError) -> (Int32, Int32) {
        let server = try StreamSocket.listen(.tcp(host: "127.0.0.1", port: 0), backlog: 1)
        guard let port = server.localPort else { throw MemoryError.system(call: "getsockname", errno: errno) }
        let client = unsafe clinux_tcp_connect("127.0.0.1", Int32(port))
        guard client >= 0 else { throw MemoryError.system(call: "connect", errno: errno) }
        let accepted = clinux_accept(server.fileDescriptor)
        guard accepted >= 0 else {
            SystemCall.close(client)
            throw MemoryError.system(call: "accept", errno: errno)
        }
        _ = clinux_tcp_nodelay(accepted)
        return (client, accepted)
    }
}
