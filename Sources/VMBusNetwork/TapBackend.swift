import Foundation
import VMBusMemory

/// A Linux TAP device as a synthetic NIC's backend: on the host, the wire the guest's NIC is
/// plugged into (frames the guest sends come out of the TAP interface in the host's network
/// namespace); in a guest process, the operating system's side of the NIC (the TAP interface
/// *is* the guest's network interface).
///
/// The interface is created when the backend is, brought up with the MTU (and MAC address, if
/// given) and removed when it closes. A thread of its own reads the TAP; writes never block
/// (a frame the kernel has no room for is dropped, as a wire drops it).
public final class TapBackend: NetworkBackend {
    public var macAddress: MACAddress { self.settings.withLock { $0.mac } }
    public var mtu: Int { self.settings.withLock { $0.mtu } }
    let settings: Locked<(mac: MACAddress, mtu: Int)>
    public let device: TapDevice
    let incoming = FrameSubscription(capacity: 4096)
    let running = Locked(true)
    let counters = Locked<(received: UInt64, sent: UInt64, dropped: UInt64)>((0, 0, 0))

    /// - Parameters:
    ///   - name: the interface name (empty: the kernel picks `tapN`).
    ///   - macAddress: given to the interface (a guest's TAP takes its NIC's address) and
    ///     reported to a host NIC's guest; `nil` keeps the kernel's random one.
    /// - Throws: ``TapError`` (no /dev/net/tun, no CAP_NET_ADMIN, name in use).
    public init(name: String, macAddress: MACAddress? = nil, mtu: Int = 1500) throws(TapError) {
        let device = try TapDevice(name: name)
        try device.setMTU(mtu)
        if let macAddress { try device.setMACAddress(macAddress.bytes) }
        try device.setUp(true)
        self.device = device
        let kernels = try device.macAddress()
        let address = macAddress ?? MACAddress(kernels)
        self.settings = Locked((address, mtu))
        let thread = Thread { [self] in self.readLoop() }
        thread.name = "vmbus-tap-\(device.name)"
        thread.start()
    }

    func readLoop() {
        // One buffer for every frame: MTU, header and a VLAN tag.
        // 64 KiB: whatever MTU the interface gets later (a guest's TAP adopts its NIC's).
        var buffer = [UInt8](repeating: 0, count: 65536)
        while self.running.withLock({ $0 }) {
            guard (try? self.device.waitReadable(timeout: .milliseconds(200))) == true else { continue }
            while let length = try? self.device.read(into: &buffer), length > 0 {
                let queued = self.incoming.yield(Array(buffer[0..<length]))
                self.counters.withLock { queued ? ($0.received += 1) : ($0.dropped += 1) }
            }
        }
    }

    /// A guest's TAP takes its NIC's MAC address and MTU once the host reported them.
    public func adopt(macAddress: MACAddress, mtu: Int) {
        try? self.device.setMACAddress(macAddress.bytes)
        try? self.device.setMTU(mtu)
        self.settings.withLock { $0 = (macAddress, mtu) }
    }

    public func send(_ frame: ArraySlice<UInt8>) {
        let sent = (try? self.device.write(frame)) ?? false
        self.counters.withLock { sent ? ($0.sent += 1) : ($0.dropped += 1) }
    }

    public func frames() -> AsyncStream<[UInt8]> { self.incoming.subscribe() }

    public func close() {
        self.running.withLock { $0 = false }
        self.incoming.finish()
    }

    /// Frames read from the TAP, written to it, and dropped (no room either way).
    public var counts: (received: UInt64, sent: UInt64, dropped: UInt64) { self.counters.withLock { $0 } }
}
