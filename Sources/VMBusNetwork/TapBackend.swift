import Foundation
import VMBusMemory

/// A Linux TAP device as a synthetic NIC's backend: on the host, the wire the guest's NIC is
/// plugged into (frames the guest sends come out of the TAP interface in the host's network
/// namespace); in a guest process, the operating system's side of the NIC (the TAP interface
/// *is* the guest's network interface).
///
/// The interface is created when the backend is, brought up with the MTU (and MAC address, if
/// given) and removed when it closes. A thread of its own reads the TAP a batch at a time
/// straight into one reused buffer and pushes each batch into the NIC; while the NIC has no
/// room it stops reading (the kernel queues, then drops, as for any slow NIC). Writes happen
/// on the NIC's thread and never block (a frame the kernel has no room for is dropped, as a
/// wire drops it).
public final class TapBackend: NetworkBackend {
    public var macAddress: MACAddress { self.settings.withLock { $0.mac } }
    public var mtu: Int { self.settings.withLock { $0.mtu } }
    let settings: Locked<(mac: MACAddress, mtu: Int)>
    public let device: TapDevice
    let slot = SinkSlot()
    let running = Locked(true)
    let counters = Locked<(received: UInt64, sent: UInt64, dropped: UInt64)>((0, 0, 0))
    /// The virtio-net header of the frame being written (writes are serialised by its lock).
    let header = Locked([UInt8](repeating: 0, count: VirtioNetHeader.size))

    /// - Parameters:
    ///   - name: the interface name (empty: the kernel picks `tapN`).
    ///   - macAddress: given to the interface (a guest's TAP takes its NIC's address) and
    ///     reported to a host NIC's guest; `nil` keeps the kernel's random one.
    /// - Throws: ``TapError`` (no /dev/net/tun, no CAP_NET_ADMIN, name in use).
    ///   - offloads: open the TAP with a virtio-net header, so frames cross it with partial
    ///     checksums and as TCP segments of up to 64 KiB (the NIC advertises these to its peer);
    ///     off: every frame complete and at most MTU-sized.
    public convenience init(name: String, macAddress: MACAddress? = nil, mtu: Int = 1500, offloads: Bool = true) throws(TapError) {
        let device = try TapDevice(name: name, vnetHeader: offloads)
        try device.setMTU(mtu)
        if let macAddress { try device.setMACAddress(macAddress.bytes) }
        try device.setUp(true)
        let kernels = try device.macAddress()
        self.init(device: device, macAddress: macAddress ?? MACAddress(kernels), mtu: mtu)
    }

    /// A backend on a TAP device another process set up and passed on (a host takeover):
    /// its address and MTU are the interface's.
    public convenience init(adopting device: TapDevice) throws(TapError) {
        self.init(device: device, macAddress: MACAddress(try device.macAddress()), mtu: try device.mtu())
    }

    init(device: TapDevice, macAddress: MACAddress, mtu: Int) {
        self.device = device
        self.settings = Locked((macAddress, mtu))
        ThreadName.start("vmbus-tap-\(device.name)") { [self] in self.readLoop() }
    }

    /// Whether a takeover asked the reader to stop, and whether it has (between two batches).
    let pause = Locked<(requested: Bool, parked: Bool)>((false, false))

    public func pauseReceiving(timeout: Duration) async -> Bool {
        self.pause.withLock { $0.requested = true }
        // Once per takeover, for at most one read wait and one batch; a closed backend never parks.
        let parked = await pollUntil(timeout: timeout) { self.pause.withLock { $0.parked } || !self.running.withLock { $0 } }
        guard parked, self.running.withLock({ $0 }) else {
            self.resumeReceiving()
            return false
        }
        return true
    }

    public func resumeReceiving() { self.pause.withLock { $0 = (false, false) } }

    /// The reader's side of a pause: parked between batches (the batch it held went to the
    /// NIC) until resumed or closed.
    func parkWhilePaused() {
        guard self.pause.withLock({ $0.requested }) else { return }
        self.pause.withLock { $0.parked = true }
        while self.pause.withLock({ $0.requested }) && self.running.withLock({ $0 }) { Thread.sleep(forTimeInterval: 0.001) }
        self.pause.withLock { $0.parked = false }
    }

    /// Frames read per batch at most: enough to amortise the signal, few enough to keep the
    /// first frame's latency low.
    static let batchLimit = 64

    func readLoop() {
        // 64 KiB of room per frame: whatever MTU the interface gets later (a guest's TAP
        // adopts its NIC's).
        let frameRoom = 65536
        var batch = FrameBatch(capacity: 4 * frameRoom)
        let running = { self.running.withLock { $0 } }
        let vnet = self.device.hasVnetHeader
        var malformed: UInt64 = 0
        while running() {
            self.parkWhilePaused()
            // Short while a pause is asked for, so the reader parks without delaying it.
            let wait: Duration = self.pause.withLock { $0.requested } ? .milliseconds(1) : .milliseconds(200)
            guard (try? self.device.waitReadable(timeout: wait)) == true else { continue }
            batch.removeAll()
            while batch.count < Self.batchLimit,
                (try? batch.appendFrame(maximum: frameRoom, { (bytes: inout [UInt8], offset: Int) throws(TapError) -> Int? in
                    try self.device.read(into: &bytes, at: offset, maximum: frameRoom)
                })) == true
            {
                guard vnet else { continue }
                let last = batch.count - 1
                let range = batch.range(last)
                // What the kernel says it left undone; a state no NIC offers is not passed on.
                if let offload = VirtioNetHeader.parse(batch.bytes[range], frameLength: range.count - VirtioNetHeader.size) {
                    batch.trimLast(VirtioNetHeader.size, offload: offload)
                } else {
                    batch.trimLast(range.count, offload: .none)
                    malformed += 1
                }
            }
            guard !batch.isEmpty else { continue }
            let (delivered, dropped) = self.slot.push(batch, running: running)
            self.counters.withLock { counters in
                counters.received += UInt64(delivered)
                counters.dropped += UInt64(dropped) + malformed
            }
            malformed = 0
        }
    }

    /// A guest's TAP takes its NIC's MAC address and MTU once the host reported them.
    public func adopt(macAddress: MACAddress, mtu: Int) {
        try? self.device.setMACAddress(macAddress.bytes)
        try? self.device.setMTU(mtu)
        self.settings.withLock { $0 = (macAddress, mtu) }
    }

    public func send(_ frame: Span<UInt8>) { self.send(frame, offload: .none) }

    public var offloads: NetworkOffloads { self.device.hasVnetHeader ? .all : [] }

    public func send(_ frame: Span<UInt8>, offload: FrameOffload) {
        let sent: Bool
        if self.device.hasVnetHeader {
            // The bytes up to the TCP payload, for a segment: its header length (data offset).
            var headerLength = 0
            if let start = offload.checksumStart, offload.segmentation != nil, start + 12 < frame.count {
                headerLength = start + Int(frame[start + 12] >> 4) * 4
            }
            sent = self.header.withLock { header in
                VirtioNetHeader.encode(offload, headerLength: headerLength, into: &header)
                return (try? self.device.write(vnetHeader: header, span: frame)) ?? false
            }
        } else {
            sent = (try? self.device.write(span: frame)) ?? false
        }
        self.counters.withLock { sent ? ($0.sent += 1) : ($0.dropped += 1) }
    }

    public func acceptOffloads(_ offloads: NetworkOffloads) {
        guard self.device.hasVnetHeader else { return }
        try? self.device.setOffloads(
            checksum: offloads.contains(.checksum), tcp4: offloads.contains(.tcp4Segmentation), tcp6: offloads.contains(.tcp6Segmentation))
    }

    public func attach(_ sink: (any FrameSink)?) { self.slot.sink.withLock { $0 = sink } }

    public func close() {
        self.running.withLock { $0 = false }
        self.slot.sink.withLock { $0 = nil }
    }

    /// Frames read from the TAP, written to it, and dropped (no room either way).
    public var counts: (received: UInt64, sent: UInt64, dropped: UInt64) { self.counters.withLock { $0 } }
}
