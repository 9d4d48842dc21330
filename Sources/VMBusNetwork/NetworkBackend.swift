import VMBusMemory

/// A 48-bit Ethernet address.
public struct MACAddress: Hashable, Sendable, CustomStringConvertible {
    public var bytes: [UInt8]

    /// - Precondition: six bytes.
    public init(_ bytes: [UInt8]) {
        precondition(bytes.count == 6, "a MAC address has 6 bytes")
        self.bytes = bytes
    }

    /// Parses `aa:bb:cc:dd:ee:ff`.
    public init?(_ text: String) {
        let parts = text.split(separator: ":")
        guard parts.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard part.count == 2, let byte = UInt8(part, radix: 16) else { return nil }
            bytes.append(byte)
        }
        self.bytes = bytes
    }

    /// Hyper-V's prefix 00:15:5D with three bytes from `seed`: a locally unique default.
    public static func hyperV(seed: UInt32) -> MACAddress {
        MACAddress([0x00, 0x15, 0x5D, UInt8(truncatingIfNeeded: seed >> 16), UInt8(truncatingIfNeeded: seed >> 8), UInt8(truncatingIfNeeded: seed)])
    }

    public var description: String { self.bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":") }
}

/// Where a synthetic NIC's frames go and come from: the host's side of the wire (a TAP
/// device, another guest, a test), or — in a guest — the operating system's side (a TAP device
/// that makes the guest process a real NIC of its network namespace).
///
/// `send` takes the frames the NIC passes out; ``frames()`` yields the frames the NIC must
/// take in, until ``close()``. A backend outlives the NICs that use it (a guest that
/// reconnects gets a new NIC on the same TAP device): each call of ``frames()`` starts a new
/// subscription that replaces the previous one.
public protocol NetworkBackend: AnyObject, Sendable {
    /// The MAC address a host reports for the NIC (a guest backend may adopt the NIC's).
    var macAddress: MACAddress { get }
    /// The L3 MTU (1500 for Ethernet).
    var mtu: Int { get }
    /// One Ethernet frame (no FCS) out of the NIC into the backend. Must not block for long;
    /// a backend that cannot take it drops it.
    func send(_ frame: ArraySlice<UInt8>)
    /// Frames from the backend into the NIC, in order, until the backend closes or the next
    /// subscription replaces this one.
    func frames() -> AsyncStream<[UInt8]>
    /// Ends ``frames()`` and releases the backend.
    func close()
}

/// Where a backend's incoming frames go: one subscriber at a time. The first subscription
/// gets what arrived before it (buffered); a new one replaces the old (a NIC that re-opens
/// after its guest reconnected takes over), ending the old one's stream.
final class FrameSubscription: Sendable {
    struct State {
        var stream: AsyncStream<[UInt8]>?
        var sink: AsyncStream<[UInt8]>.Continuation
        var closed = false
    }
    let state: Locked<State>
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        let (stream, sink) = AsyncStream.makeStream(of: [UInt8].self, bufferingPolicy: .bufferingOldest(capacity))
        self.state = Locked(State(stream: stream, sink: sink))
    }

    /// - Returns: whether the frame was queued (`false`: the subscriber's queue is full, or
    ///   the backend closed).
    func yield(_ frame: [UInt8]) -> Bool {
        let sink = self.state.withLock { $0.sink }
        if case .enqueued = sink.yield(frame) { return true }
        return false
    }

    func subscribe() -> AsyncStream<[UInt8]> {
        let capacity = self.capacity
        let (stream, old): (AsyncStream<[UInt8]>, AsyncStream<[UInt8]>.Continuation?) = self.state.withLock { state in
            if let first = state.stream {
                state.stream = nil
                return (first, nil)
            }
            let (stream, sink) = AsyncStream.makeStream(of: [UInt8].self, bufferingPolicy: .bufferingOldest(capacity))
            let old = state.sink
            state.sink = sink
            if state.closed { sink.finish() }
            return (stream, old)
        }
        old?.finish()
        return stream
    }

    func finish() {
        let sink = self.state.withLock { state in
            state.closed = true
            return state.sink
        }
        sink.finish()
    }
}

/// Two backends joined back to back in memory: a frame one sends comes out of the other's
/// ``frames()``. For tests, and for joining a NIC to a switch port.
public final class MemoryNetworkPort: NetworkBackend {
    public let macAddress: MACAddress
    public let mtu: Int
    let incoming: FrameSubscription
    let peer = Locked<MemoryNetworkPort?>(nil)
    let counters = Locked<(sent: Int, dropped: Int)>((0, 0))

    init(macAddress: MACAddress, mtu: Int, capacity: Int) {
        self.macAddress = macAddress
        self.mtu = mtu
        self.incoming = FrameSubscription(capacity: capacity)
    }

    /// A joined pair; each end queues at most `capacity` frames (then drops, like a wire).
    public static func pair(
        macAddresses: (MACAddress, MACAddress) = (.hyperV(seed: 1), .hyperV(seed: 2)), mtu: Int = 1500, capacity: Int = 4096
    ) -> (MemoryNetworkPort, MemoryNetworkPort) {
        let a = MemoryNetworkPort(macAddress: macAddresses.0, mtu: mtu, capacity: capacity)
        let b = MemoryNetworkPort(macAddress: macAddresses.1, mtu: mtu, capacity: capacity)
        a.peer.withLock { $0 = b }
        b.peer.withLock { $0 = a }
        return (a, b)
    }

    public func send(_ frame: ArraySlice<UInt8>) {
        guard let peer = self.peer.withLock({ $0 }) else { return }
        let queued = peer.incoming.yield(Array(frame))
        self.counters.withLock { queued ? ($0.sent += 1) : ($0.dropped += 1) }
    }

    public func frames() -> AsyncStream<[UInt8]> { self.incoming.subscribe() }

    public func close() {
        self.incoming.finish()
        let peer = self.peer.withLock { peer in
            defer { peer = nil }
            return peer
        }
        peer?.incoming.finish()
    }

    /// Frames handed to the peer, and frames dropped because its queue was full.
    public var sent: Int { self.counters.withLock { $0.sent } }
    public var dropped: Int { self.counters.withLock { $0.dropped } }
}

/// Counters of one queue (channel) of a synthetic NIC, as `ethtool -S` shows them.
public struct NetworkQueueStatistics: Hashable, Sendable {
    public var txPackets: UInt64 = 0
    public var txBytes: UInt64 = 0
    public var rxPackets: UInt64 = 0
    public var rxBytes: UInt64 = 0
    /// Frames dropped: no free buffer, filter off, malformed.
    public var rxDropped: UInt64 = 0
    public var txDropped: UInt64 = 0
    /// Messages from the peer refused as malformed.
    public var malformed: UInt64 = 0
    /// Why the host last stopped this channel (a protocol breach, 11 §8), if it did.
    public var lastFault: String?

    public init() {}
}
