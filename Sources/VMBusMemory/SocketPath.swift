import CLinux
import Glibc
import SystemPackage

/// Claiming a Unix socket's path before listening on it. A socket file left by a process that
/// died is replaced; one that a live process still listens on is not taken over (two hosts on
/// one path would silently split the guests between them), and a path that is not a socket
/// at all is never deleted.
enum SocketPath {
    /// Removes a stale socket file at `path`; does nothing if nothing is there.
    /// - Throws: ``MemoryError/pathInUse(path:why:)`` when a process answers on it or it is not
    ///   a socket.
    static func claim(_ path: String, type: Int32) throws(MemoryError) {
        guard let info = try? FilePath(path).stat(followTargetSymlink: false) else { return }
        guard info.type == .socket else {
            throw MemoryError.pathInUse(path: path, why: "it exists and is not a socket")
        }
        let fd = unsafe clinux_unix_connect(path, type)
        if fd >= 0 {
            SystemCall.close(fd)
            throw MemoryError.pathInUse(path: path, why: "another process is listening on it")
        }
        // Refused: nobody listens (the process that made it is gone). Any other failure — a
        // listener of another socket type, no permission — means it is not ours to remove.
        guard errno == ECONNREFUSED else {
            throw MemoryError.pathInUse(path: path, why: "a socket is there and cannot be probed (\(MemoryError.text(errno)))")
        }
        _ = unsafe unlink(path)
    }
}
