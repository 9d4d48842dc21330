import CLinux
import Glibc

/// An `AF_PACKET` raw socket bound to one interface (packet(7)): sends whole Ethernet frames
/// out of it and receives the frames of one EtherType that arrive on it. The kernel side of a
/// TAP in tests: what a TAP's reader writes, this receives, and what this sends, the TAP's
/// reader reads. Needs CAP_NET_RAW. Non-blocking and close-on-exec.
// Unchecked: the descriptor is set once in `init`.
public final class PacketSocket: @unchecked Sendable {
    /// The descriptor, for an epoll set; owned by this object.
    public let fileDescriptor: Int32

    /// Every EtherType, incoming and outgoing frames alike (`ETH_P_ALL`).
    public static let allEtherTypes: UInt16 = 0x0003

    /// A socket on interface `interface` that receives frames of `etherType`. A specific
    /// EtherType receives only frames arriving on the interface; ``allEtherTypes`` also sees
    /// the ones the kernel sends out of it.
    public init(interface: String, etherType: UInt16) throws(TapError) {
        let index = unsafe clinux_if_index(interface)
        guard index > 0 else { throw .noSuchInterface(interface) }
        let fd = clinux_packet_socket(index, Int32(etherType))
        guard fd >= 0 else { throw TapError.from(call: "packet socket", name: interface, errno: errno) }
        self.fileDescriptor = fd
    }

    deinit { SystemCall.close(self.fileDescriptor) }

    /// Sends one whole Ethernet frame out of the interface.
    public func send(_ frame: [UInt8]) throws(TapError) {
        while true {
            // SAFETY: send(2) reads `count` bytes from the array's storage, valid in the closure.
            let n = unsafe frame.withUnsafeBytes { unsafe Glibc.send(self.fileDescriptor, $0.baseAddress, $0.count, 0) }
            if n >= 0 { return }
            if errno != EINTR { throw .system(call: "send (packet socket)", errno: errno) }
        }
    }

    /// Receives one frame into the front of `buffer` (a longer one is cut to fit). Never blocks.
    /// - Returns: its length, or `nil` if none is waiting.
    public func receive(into buffer: inout [UInt8]) throws(TapError) -> Int? {
        while true {
            // SAFETY: recv(2) writes at most `count` bytes at the buffer's base address.
            let n = unsafe buffer.withUnsafeMutableBytes { unsafe recv(self.fileDescriptor, $0.baseAddress, $0.count, 0) }
            if n >= 0 { return n }
            switch errno {
            case EINTR: continue
            case EAGAIN: return nil
            case let code: throw .system(call: "recv (packet socket)", errno: code)
            }
        }
    }

    /// Blocks until a frame is waiting or `timeout` passes (`nil`: no limit).
    public func waitReadable(timeout: Duration?) throws(TapError) -> Bool {
        try Self.waitReadable(self.fileDescriptor, timeout: timeout, what: "packet socket")
    }

    /// poll(2) for one descriptor; shared with ``TapDevice``.
    static func waitReadable(_ fd: Int32, timeout: Duration?, what: String) throws(TapError) -> Bool {
        let milliseconds = timeout.map { ChildProcess.milliseconds($0) } ?? -1
        let ready = clinux_wait_readable(fd, milliseconds)
        guard ready >= 0 else { throw .system(call: "poll \(what)", errno: errno) }
        return ready == 1
    }
}
