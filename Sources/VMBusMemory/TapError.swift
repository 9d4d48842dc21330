import Glibc

/// Why a TAP device or a packet socket could not be opened or used.
public enum TapError: Error, Hashable, Sendable {
    /// The TUN/TAP clone device (normally `/dev/net/tun`) is missing or cannot be opened: the
    /// `tun` module is not loaded, or a container does not expose the device node.
    case noTunDevice(path: String, errno: Int32)
    /// The kernel refused with EPERM: creating an interface, or attaching to one this user does
    /// not own, needs CAP_NET_ADMIN (in the network namespace's user namespace).
    case needsNetAdmin(operation: String)
    /// The name belongs to an interface this call cannot attach to: a single-queue TAP that
    /// already has its descriptor (EBUSY), or an interface that is not a TAP of the requested
    /// queue mode (EINVAL).
    case nameInUse(String)
    /// An interface name that is not 1 to 15 bytes long, or has a `/`, space or NUL.
    case invalidName(String)
    /// No interface with this name (it went away, or lives in another network namespace).
    case noSuchInterface(String)
    /// Another system call failed: its name and errno.
    case system(call: String, errno: Int32)
}

extension TapError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .noTunDevice(let path, let errno):
            let hint = errno == EACCES || errno == EPERM ? "no permission" : "is the tun module loaded, the node present?"
            return "cannot open \(path): \(TapError.text(errno)) (\(hint))"
        case .needsNetAdmin(let operation): return "\(operation) needs CAP_NET_ADMIN (run as root)"
        case .nameInUse(let name):
            return "interface \(name) is in use: a TAP with its queue attached, or not a TAP of this queue mode"
        case .invalidName(let name): return "invalid interface name '\(name)': 1 to 15 bytes, no '/', space or NUL"
        case .noSuchInterface(let name): return "no interface \(name) in this network namespace"
        case .system(let call, let errno): return "\(call) failed: \(TapError.text(errno))"
        }
    }

    static func text(_ errno: Int32) -> String { MemoryError.text(errno) }

    /// The error for a failed call on interface `name`, naming the usual causes.
    static func from(call: String, name: String, errno: Int32) -> TapError {
        switch errno {
        case EPERM, EACCES: return .needsNetAdmin(operation: "\(call) on \(name)")
        case ENODEV, ENXIO: return .noSuchInterface(name)
        default: return .system(call: "\(call) \(name)", errno: errno)
        }
    }
}
