import CLinux
import Glibc
import SystemPackage

/// The interrupt side of a `uio_hv_generic` device (05 §10.3): a blocking 4-byte read waits
/// for the host's next interrupt and returns the running count; a 4-byte write is irqcontrol
/// (non-zero: unmask and signal the host; zero: mask). Works on a real `/dev/uioN` and on the
/// Unix stream socket `vmbus host --uio-export` puts in its place (same 4-byte protocol).
public final class UioNotifier: @unchecked Sendable {
    public let path: String
    public let fileDescriptor: Int32
    /// A socket (the export's stand-in) rather than a device: written with MSG_NOSIGNAL.
    public let isSocket: Bool

    /// Why the interrupt source ended.
    public enum Failure: Error, Hashable, Sendable, CustomStringConvertible {
        /// The device went away: the channel was rescinded (read fails with EIO on a real
        /// device; the export closes its socket).
        case gone
        /// Another error.
        case system(String)

        public var description: String {
            switch self {
            case .gone: return "the device is gone (rescinded)"
            case .system(let why): return why
            }
        }
    }

    /// Opens `/dev/uioN` read-write, or connects to the socket standing in for it.
    public init(path: String) throws(MemoryError) {
        self.path = path
        let status = try SystemCall.run("stat(\(path))") { try FilePath(path).stat() }
        let fd: Int32
        self.isSocket = status.type == .socket
        if self.isSocket {
            fd = unsafe clinux_unix_connect(path, Int32(SOCK_STREAM.rawValue))
            guard fd >= 0 else { throw MemoryError.system(call: "connect(\(path))", errno: errno) }
            // The export's first word says the channel is open (a kernel's open() returns
            // only then): rings written before it could be reset under us.
            var word = [UInt8](repeating: 0, count: 4)
            guard (try? DescriptorIO.readFully(fd, into: &word, count: 4)) == true else {
                SystemCall.close(fd)
                throw MemoryError.system(call: "open(\(path)): the export closed the node", errno: ENODEV)
            }
        } else {
            fd = try SystemCall.run("open(\(path))") {
                try FileDescriptor.open(FilePath(path), .readWrite, options: .closeOnExec).rawValue
            }
        }
        self.fileDescriptor = fd
    }

    deinit { SystemCall.close(self.fileDescriptor) }

    /// Blocks until the next interrupt; returns the running interrupt count.
    /// - Throws: ``Failure/gone`` once the device is rescinded (or the notifier shut down).
    public func wait() throws(Failure) -> UInt32 {
        var bytes = [UInt8](repeating: 0, count: 4)
        let complete: Bool
        do {
            complete = try DescriptorIO.readFully(self.fileDescriptor, into: &bytes, count: 4)
        } catch {
            if case .system(_, let code) = error, code == EIO || code == ENODEV || code == EBADF { throw Failure.gone }
            throw Failure.system("\(error)")
        }
        guard complete else { throw Failure.gone }
        return UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
    }

    /// Blocks until the next interrupt or until `wake` is signalled, whichever comes first:
    /// for a notifier thread that also runs tasks (a ``LoopExecutor`` rings `wake` when a job
    /// arrives while the thread sleeps here).
    /// - Returns: the running interrupt count, or `nil` when only `wake` fired (it is drained).
    /// - Throws: ``Failure/gone`` once the device is rescinded (or the notifier shut down).
    public func wait(orWake wake: EventFD) throws(Failure) -> UInt32? {
        var entries = [
            pollfd(fd: self.fileDescriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wake.fileDescriptor, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            // SAFETY: two pollfds, passed by address for the call only.
            let ready = unsafe entries.withUnsafeMutableBufferPointer { unsafe poll($0.baseAddress!, 2, -1) }
            if ready < 0 {
                if errno == EINTR { continue }
                throw Failure.system("poll failed: errno \(errno)")
            }
            break
        }
        // An interrupt (or the end: a hang-up or error reads as gone) first; the wake-up is
        // only a hint that jobs are queued, which the caller runs either way.
        if entries[0].revents != 0 { return try self.wait() }
        if entries[1].revents != 0 { wake.drain() }
        return nil
    }

    /// irqcontrol: `true` unmasks the inbound ring and signals the host (the host-kick after
    /// writing packets), `false` masks.
    public func control(enable: Bool) throws(Failure) {
        var bytes: [UInt8] = enable ? [1, 0, 0, 0] : [0, 0, 0, 0]
        while true {
            let n = unsafe bytes.withUnsafeMutableBytes { buffer in
                self.isSocket
                    ? unsafe Glibc.send(self.fileDescriptor, buffer.baseAddress!, 4, Int32(MSG_NOSIGNAL))
                    : unsafe Glibc.write(self.fileDescriptor, buffer.baseAddress!, 4)
            }
            if n == 4 { return }
            if n < 0 && errno == EINTR { continue }
            let code = n < 0 ? errno : EIO
            if code == EIO || code == ENODEV || code == EPIPE || code == ECONNRESET { throw Failure.gone }
            throw Failure.system("irqcontrol write failed: errno \(code)")
        }
    }

    /// Wakes a blocked ``wait()`` for good (sockets; a real device ends with the process).
    public func shutdown() { _ = Glibc.shutdown(self.fileDescriptor, Int32(SHUT_RDWR)) }
}
