import CLinux
import Glibc

/// A Linux TAP interface: Ethernet frames the kernel sends on it are read from its
/// descriptors, and frames written to them arrive at the kernel as if received from a wire
/// (Documentation/networking/tuntap.rst). The backend of a synthetic NIC's host side.
///
/// Opened with `IFF_TAP | IFF_NO_PI`: every read returns exactly one whole frame (destination
/// MAC first, no packet-information header, no checksum), and every write sends one. With
/// several queues (`IFF_MULTI_QUEUE`) the kernel spreads outgoing flows over the descriptors,
/// and any of them takes writes.
///
/// The interface is not persistent: it goes away when this object (its last descriptor) does.
/// Descriptors are non-blocking and close-on-exec, ready for epoll or ``waitReadable(queue:timeout:)``.
/// Creating an interface needs CAP_NET_ADMIN.
// Unchecked: the descriptors and name are set once in `init`; reads and writes on one queue
// are the caller's to serialise (the kernel keeps each call atomic).
public final class TapDevice: @unchecked Sendable {
    /// The interface name the kernel assigned (the requested one, or `tapN` when none was).
    public let name: String
    /// One descriptor per queue.
    private let descriptors: [Int32]
    /// Whether every read and write starts with a 10-byte virtio-net header
    /// (`IFF_VNET_HDR`): the frame's checksum and segmentation offload state.
    public let hasVnetHeader: Bool
    /// The virtio-net header's size (`struct virtio_net_hdr`).
    public static let vnetHeaderSize = 10

    /// The TUN/TAP clone device.
    public static let defaultDevicePath = "/dev/net/tun"

    /// Creates the TAP interface `name`, or attaches to it if it exists (a non-persistent
    /// single-queue TAP that already has its descriptor cannot be attached to again).
    /// - Parameters:
    ///   - name: 1 to 15 bytes; empty lets the kernel pick (`tap0`, `tap1`, …): see ``name``.
    ///     A `%d` in it is numbered by the kernel too.
    ///   - queues: descriptors to open; more than 1 opens the interface multi-queue.
    ///   - vnetHeader: open with `IFF_VNET_HDR` (see ``hasVnetHeader``); the kernel hands over
    ///     partial checksums and large segments only once ``setOffloads(checksum:tcp4:tcp6:)``
    ///     allows them.
    ///   - devicePath: the clone device (tests point it elsewhere to see the error).
    /// - Throws: ``TapError/noTunDevice(path:errno:)``, ``TapError/needsNetAdmin(operation:)``,
    ///   ``TapError/nameInUse(_:)``, ``TapError/invalidName(_:)``.
    public init(name: String = "", queues: Int = 1, vnetHeader: Bool = false, devicePath: String = TapDevice.defaultDevicePath) throws(TapError) {
        precondition(queues >= 1, "a TAP device has at least one queue")
        guard name.isEmpty || Self.isValidName(name) else { throw .invalidName(name) }
        var opened: [Int32] = []
        var actual = name
        for _ in 0..<queues {
            var buffer = [CChar](repeating: 0, count: Int(CLINUX_IFNAMSIZ))
            var step: Int32 = 0
            let fd = unsafe clinux_tap_open(devicePath, actual, queues > 1 ? 1 : 0, vnetHeader ? 1 : 0, &buffer, &step)
            guard fd >= 0 else {
                let code = errno
                opened.forEach { SystemCall.close($0) }
                throw Self.openError(step: step, errno: code, path: devicePath, name: actual)
            }
            opened.append(fd)
            // Later queues attach to the interface the first one created (it may have been
            // named by the kernel).
            actual = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        self.name = actual
        self.descriptors = opened
        self.hasVnetHeader = vnetHeader
    }

    /// The TAP interface `name` through a descriptor another process opened and passed on
    /// (a host takeover, with SCM_RIGHTS): already set up; the descriptor is this object's
    /// from here. The file status flags (non-blocking) came with it.
    public init(adopting descriptor: Int32, name: String, vnetHeader: Bool) {
        self.name = name
        self.descriptors = [descriptor]
        self.hasVnetHeader = vnetHeader
    }

    deinit { self.descriptors.forEach { SystemCall.close($0) } }

    /// How many queues (descriptors) this device has.
    public var queueCount: Int { self.descriptors.count }

    /// The descriptor of `queue`, for an epoll set. It stays owned by this object.
    public func fileDescriptor(queue: Int = 0) -> Int32 { self.descriptors[queue] }

    /// Whether `name` is one the kernel accepts (`dev_valid_name`): 1–15 bytes, not `.` or
    /// `..`, no `/`, `:` or white space.
    public static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count < Int(CLINUX_IFNAMSIZ), name != ".", name != ".." else { return false }
        return !bytes.contains { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: ":") || $0 <= 0x20 || $0 == 0x7F }
    }

    private static func openError(step: Int32, errno code: Int32, path: String, name: String) -> TapError {
        if step == 1 { return .noTunDevice(path: path, errno: code) }
        switch code {
        case EPERM, EACCES: return .needsNetAdmin(operation: "creating or attaching TAP \(name.isEmpty ? "(any)" : name)")
        // EBUSY: the single queue is taken; EINVAL: the name is a TUN, a TAP of the other
        // queue mode, or no TUN/TAP at all (tuntap.rst, TUNSETIFF).
        case EBUSY: return .nameInUse(name)
        case EINVAL where !name.isEmpty: return .nameInUse(name)
        default: return .system(call: "TUNSETIFF \(name)", errno: code)
        }
    }
}

// MARK: Frames

extension TapDevice {
    /// Reads one frame into the front of `buffer` without allocating (a uniquely referenced
    /// buffer is written in place). Never blocks.
    ///
    /// Size `buffer` for the largest frame: MTU + 14 header bytes (+ 4 for a VLAN tag). A
    /// longer frame is cut to the buffer's size and the rest of it is lost.
    /// - Returns: the frame's length, or `nil` if no frame is waiting.
    public func read(into buffer: inout [UInt8], queue: Int = 0) throws(TapError) -> Int? {
        let fd = self.descriptors[queue]
        while true {
            // SAFETY: read(2) writes at most `count` bytes at the buffer's base address, which
            // is valid for the closure's duration.
            let n = unsafe buffer.withUnsafeMutableBytes { unsafe Glibc.read(fd, $0.baseAddress, $0.count) }
            if n >= 0 { return n }
            switch errno {
            case EINTR: continue
            case EAGAIN: return nil
            case let code: throw .system(call: "read \(self.name)", errno: code)
            }
        }
    }

    /// Reads one frame into `buffer[offset..<offset + maximum]` without allocating: how a
    /// backend fills one buffer with a batch of frames. Never blocks.
    /// - Returns: the frame's length (a longer frame is cut to `maximum`), or `nil` if no frame
    ///   is waiting.
    public func read(into buffer: inout [UInt8], at offset: Int, maximum: Int, queue: Int = 0) throws(TapError) -> Int? {
        precondition(offset >= 0 && maximum >= 0 && offset + maximum <= buffer.count, "read outside the buffer")
        let fd = self.descriptors[queue]
        while true {
            // SAFETY: read(2) writes at most `maximum` bytes from `offset`, inside the buffer
            // (checked above), which is valid for the closure's duration.
            let n = unsafe buffer.withUnsafeMutableBytes { unsafe Glibc.read(fd, $0.baseAddress! + offset, maximum) }
            if n >= 0 { return n }
            switch errno {
            case EINTR: continue
            case EAGAIN: return nil
            case let code: throw .system(call: "read \(self.name)", errno: code)
            }
        }
    }

    /// Which offloads the kernel may use on frames it hands this TAP's reader (`TUNSETOFFLOAD`):
    /// frames with partial checksums (`checksum`) and TCP segments up to 64 KiB (`tcp4`,
    /// `tcp6`, which need `checksum`). Needs ``hasVnetHeader``, where the reader learns them.
    public func setOffloads(checksum: Bool, tcp4: Bool, tcp6: Bool) throws(TapError) {
        var flags: UInt32 = 0
        if checksum { flags |= CLINUX_TUN_F_CSUM }
        if checksum && tcp4 { flags |= CLINUX_TUN_F_TSO4 }
        if checksum && tcp6 { flags |= CLINUX_TUN_F_TSO6 }
        for fd in self.descriptors where clinux_tap_set_offload(fd, flags) != 0 {
            throw .system(call: "TUNSETOFFLOAD \(self.name)", errno: errno)
        }
    }

    /// Writes a frame behind its virtio-net header in one call (``hasVnetHeader``). Never
    /// blocks. - Returns: `false` if the kernel had no room for it now.
    @discardableResult
    public func write(vnetHeader header: [UInt8], span frame: Span<UInt8>, queue: Int = 0) throws(TapError) -> Bool {
        let fd = self.descriptors[queue]
        return try self.writing {
            // SAFETY: writev(2) reads both buffers, each valid for its closure's duration.
            unsafe header.withUnsafeBytes { head in
                unsafe frame.withUnsafeBytes { body in
                    unsafe clinux_writev2(fd, head.baseAddress, head.count, body.baseAddress, body.count)
                }
            }
        }
    }

    /// Runs a write until it is not interrupted: `true` once written, `false` on EAGAIN.
    private func writing(_ write: () -> Int) throws(TapError) -> Bool {
        while true {
            if write() >= 0 { return true }
            switch errno {
            case EINTR: continue
            case EAGAIN: return false
            case let code: throw .system(call: "write \(self.name)", errno: code)
            }
        }
    }

    /// ``write(_:queue:)`` for bytes lent in place (a frame still in a guest's buffer).
    @discardableResult
    public func write(span frame: Span<UInt8>, queue: Int = 0) throws(TapError) -> Bool {
        let fd = self.descriptors[queue]
        // SAFETY: write(2) reads `count` bytes from the span's storage, valid in the closure.
        return try self.writing { unsafe frame.withUnsafeBytes { unsafe Glibc.write(fd, $0.baseAddress, $0.count) } }
    }

    /// Writes one whole Ethernet frame (destination MAC first): the kernel receives it on this
    /// interface. Never blocks.
    /// - Returns: `false` if the kernel had no room for it now (EAGAIN); the frame was not sent.
    /// - Throws: for frames the kernel rejects (shorter than a header, longer than it takes) or
    ///   an interface that is gone.
    @discardableResult
    public func write(_ frame: ArraySlice<UInt8>, queue: Int = 0) throws(TapError) -> Bool {
        let fd = self.descriptors[queue]
        // SAFETY: write(2) reads `count` bytes from the slice's storage, valid in the closure.
        return try self.writing { unsafe frame.withUnsafeBytes { unsafe Glibc.write(fd, $0.baseAddress, $0.count) } }
    }

    /// ``write(_:queue:)`` for a whole array.
    @discardableResult
    public func write(_ frame: [UInt8], queue: Int = 0) throws(TapError) -> Bool {
        try self.write(frame[...], queue: queue)
    }

    /// Blocks until `queue` has a frame to read, or `timeout` passes (`nil`: no limit).
    /// - Returns: whether a frame (or an error to report) is waiting.
    public func waitReadable(queue: Int = 0, timeout: Duration?) throws(TapError) -> Bool {
        try PacketSocket.waitReadable(self.descriptors[queue], timeout: timeout, what: self.name)
    }
}

// MARK: Interface settings

extension TapDevice {
    /// The interface's MTU: the largest frame payload, without the 14-byte Ethernet header.
    public func mtu() throws(TapError) -> Int {
        let value = unsafe clinux_if_get_mtu(self.name)
        guard value >= 0 else { throw TapError.from(call: "SIOCGIFMTU", name: self.name, errno: errno) }
        return Int(value)
    }

    /// Sets the MTU (68 up to 65535 for a TAP).
    public func setMTU(_ mtu: Int) throws(TapError) {
        guard let value = Int32(exactly: mtu), unsafe clinux_if_set_mtu(self.name, value) == 0 else {
            throw TapError.from(call: "SIOCSIFMTU", name: self.name, errno: Int32(exactly: mtu) == nil ? EINVAL : errno)
        }
    }

    /// The interface's Ethernet address (6 bytes; the kernel picks a random one at creation).
    public func macAddress() throws(TapError) -> [UInt8] {
        var mac = [UInt8](repeating: 0, count: 6)
        guard unsafe clinux_if_get_mac(self.name, &mac) == 0 else {
            throw TapError.from(call: "SIOCGIFHWADDR", name: self.name, errno: errno)
        }
        return mac
    }

    /// Sets the Ethernet address: exactly 6 bytes, a unicast one (the kernel refuses a
    /// multicast address with EADDRNOTAVAIL).
    public func setMACAddress(_ mac: [UInt8]) throws(TapError) {
        precondition(mac.count == 6, "an Ethernet address has 6 bytes")
        guard unsafe clinux_if_set_mac(self.name, mac) == 0 else {
            throw TapError.from(call: "SIOCSIFHWADDR", name: self.name, errno: errno)
        }
    }

    /// Whether the interface is administratively up (IFF_UP).
    public func isUp() throws(TapError) -> Bool {
        let value = unsafe clinux_if_is_up(self.name)
        guard value >= 0 else { throw TapError.from(call: "SIOCGIFFLAGS", name: self.name, errno: errno) }
        return value == 1
    }

    /// Brings the interface up or down (IFF_UP), as `ip link set NAME up` does. The kernel
    /// sends and accepts frames only while it is up.
    public func setUp(_ up: Bool = true) throws(TapError) {
        guard unsafe clinux_if_set_up(self.name, up ? 1 : 0) == 0 else {
            throw TapError.from(call: "SIOCSIFFLAGS", name: self.name, errno: errno)
        }
    }

    /// The interface index (for packet sockets, netlink).
    public func interfaceIndex() throws(TapError) -> Int32 {
        let index = unsafe clinux_if_index(self.name)
        guard index > 0 else { throw .noSuchInterface(self.name) }
        return index
    }
}
