import Glibc

// uname(2) and getifaddrs(3) hand back C structures through pointers; this file turns them into
// plain values so the device code (strict memory safety) never sees a pointer.

/// The running kernel as `uname(2)` describes it.
public struct KernelIdentity: Hashable, Sendable {
    /// `sysname`, e.g. `Linux`.
    public var sysname: String
    /// `release`, e.g. `6.8.0-45-generic` (what `uname -r` prints).
    public var release: String
    /// `machine`, e.g. `x86_64` (what `uname -m` prints).
    public var machine: String
    /// `nodename`: the host name.
    public var nodename: String

    /// A given identity (tests, other machines).
    public init(sysname: String, release: String, machine: String, nodename: String = "") {
        self.sysname = sysname
        self.release = release
        self.machine = machine
        self.nodename = nodename
    }

    /// This machine's kernel. `uname` cannot fail with a valid buffer, so there is no error.
    public static func current() -> KernelIdentity {
        var names = utsname()
        // SAFETY: `names` is a whole utsname that uname fills in place.
        _ = unsafe uname(&names)
        return KernelIdentity(
            sysname: text(names.sysname), release: text(names.release), machine: text(names.machine),
            nodename: text(names.nodename))
    }

    /// A fixed-size NUL-terminated C field as UTF-8 text (invalid bytes repaired).
    static func text<Field>(_ field: Field) -> String {
        // SAFETY: the bytes of a value copy of the field, read only inside the closure.
        unsafe withUnsafeBytes(of: field) { raw in unsafe String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
    }
}

/// One IPv4 or IPv6 address of a network interface, as `getifaddrs(3)` lists it.
public struct InterfaceAddress: Hashable, Sendable {
    /// The address family.
    public enum Family: Hashable, Sendable {
        case ipv4
        case ipv6
    }

    /// The interface's name, e.g. `eth0`.
    public var interface: String
    /// IPv4 or IPv6.
    public var family: Family
    /// The address as `inet_ntop` writes it (`10.0.0.5`, `fe80::215:5dff:fe00:1`; no scope).
    public var address: String
    /// Whether the interface is a loopback (`IFF_LOOPBACK`).
    public var isLoopback: Bool

    /// A given address (tests, other machines).
    public init(interface: String, family: Family, address: String, isLoopback: Bool = false) {
        self.interface = interface
        self.family = family
        self.address = address
        self.isLoopback = isLoopback
    }

    /// Every IPv4 and IPv6 address of this machine's interfaces, in the kernel's order; other
    /// families (link-layer entries) and interfaces without an address are left out.
    /// - Throws: ``MemoryError/system(call:errno:)`` if `getifaddrs` fails.
    public static func all() throws(MemoryError) -> [InterfaceAddress] {
        var list: UnsafeMutablePointer<ifaddrs>? = nil
        // SAFETY: getifaddrs allocates the list and stores its head in `list`.
        guard unsafe getifaddrs(&list) == 0 else { throw MemoryError.system(call: "getifaddrs", errno: errno) }
        // SAFETY: freed once, after the last use of any entry below.
        defer { unsafe freeifaddrs(list) }
        var found: [InterfaceAddress] = []
        var cursor = unsafe list
        while let entry = unsafe cursor {
            // SAFETY: every entry of the list stays valid until freeifaddrs.
            unsafe cursor = entry.pointee.ifa_next
            guard let address = unsafe entry.pointee.ifa_addr, let name = unsafe entry.pointee.ifa_name else { continue }
            let family: Family
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            let converted: Bool
            // SAFETY: `sa_family` says which sockaddr the entry holds, so the rebinding reads
            // only that structure; inet_ntop writes at most `text.count` bytes.
            switch Int32(unsafe address.pointee.sa_family) {
            case AF_INET:
                family = .ipv4
                converted = unsafe address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { inet in
                    var raw = unsafe inet.pointee.sin_addr
                    return unsafe inet_ntop(AF_INET, &raw, &text, socklen_t(text.count)) != nil
                }
            case AF_INET6:
                family = .ipv6
                converted = unsafe address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { inet6 in
                    var raw = unsafe inet6.pointee.sin6_addr
                    return unsafe inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count)) != nil
                }
            default:
                continue
            }
            guard converted else { continue }
            found.append(InterfaceAddress(
                // SAFETY: ifa_name is a NUL-terminated string owned by the list.
                interface: unsafe String(cString: name),
                family: family,
                address: String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self),
                isLoopback: unsafe entry.pointee.ifa_flags & UInt32(IFF_LOOPBACK) != 0))
        }
        return found
    }
}
