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
/// Frames are pushed both ways, on the thread that has them, with no task in between: the NIC
/// calls ``send(_:)`` from its interrupt handler for each frame it takes off its channel; the
/// backend hands incoming frames, a batch at a time, to the ``FrameSink`` the NIC attached
/// with ``attach(_:)``. A backend outlives the NICs that use it (a guest that reconnects gets
/// a new NIC on the same TAP device): each ``attach(_:)`` replaces the previous sink.
public protocol NetworkBackend: AnyObject, Sendable {
    /// The MAC address a host reports for the NIC (a guest backend may adopt the NIC's).
    var macAddress: MACAddress { get }
    /// The L3 MTU (1500 for Ethernet).
    var mtu: Int { get }
    /// One Ethernet frame (no FCS) out of the NIC into the backend, lent in place (it may
    /// still be in the peer's buffer): copy or write it before returning. Must not block; a
    /// backend that cannot take it drops it.
    func send(_ frame: Span<UInt8>)
    /// Starts handing incoming frames to `sink` (`nil`: stop; frames are then dropped).
    func attach(_ sink: (any FrameSink)?)
    /// Stops the backend and releases it.
    func close()

    /// What frames handed to ``send(_:offload:)`` may leave undone (a NIC advertises these to
    /// its peer). None by default: every frame complete.
    var offloads: NetworkOffloads { get }
    /// A frame with offload state (a partial checksum, a large TCP segment).
    func send(_ frame: Span<UInt8>, offload: FrameOffload)
    /// What the NIC can take in frames this backend pushes to it (the backend may then hand
    /// over partial checksums and large segments instead of doing the work).
    func acceptOffloads(_ offloads: NetworkOffloads)
}

extension NetworkBackend {
    public var offloads: NetworkOffloads { [] }
    /// Backends without offloads get complete frames only (a NIC advertises none to them).
    public func send(_ frame: Span<UInt8>, offload: FrameOffload) { self.send(frame) }
    public func acceptOffloads(_ offloads: NetworkOffloads) {}
}

/// A NIC's way in: where a backend pushes the frames the NIC must take.
public protocol FrameSink: AnyObject, Sendable {
    /// Takes frames `first...` of `frames` (each copied before this returns) and returns the
    /// index of the first one it could not take for want of room now — `frames.count` when it
    /// took them all. A frame it must refuse for good (too large, NIC not ready) counts as
    /// taken and is dropped (and counted) by the NIC. One call is one batch: its frames reach
    /// the peer with at most one signal per queue.
    func deliver(_ frames: FrameBatch, from first: Int) -> Int
    /// Blocks the calling thread (a backend's own) until the NIC may have room again, or
    /// `timeout` passes.
    func waitForRoom(timeout: Duration)
}

/// Ethernet frames back to back in one buffer, reused batch after batch: frames move in
/// batches with no allocation per frame. Each frame may carry offload state.
public struct FrameBatch: Sendable {
    /// The frames' bytes (and spare room after them).
    public private(set) var bytes: [UInt8]
    /// Bytes in use.
    public private(set) var used = 0
    var starts: [Int] = []
    var ends: [Int] = []
    var offloads: [FrameOffload] = []

    /// - Parameter capacity: bytes before the buffer has to grow.
    public init(capacity: Int = 256 << 10) {
        self.bytes = [UInt8](repeating: 0, count: capacity)
        self.starts.reserveCapacity(256)
        self.ends.reserveCapacity(256)
        self.offloads.reserveCapacity(256)
    }

    /// A batch of one frame.
    public init(_ frame: some Collection<UInt8>, offload: FrameOffload = .none) {
        self.init(capacity: frame.count)
        self.append(frame, offload: offload)
    }

    /// A batch of one frame that takes the array as its buffer.
    public init(frame: [UInt8], offload: FrameOffload = .none) {
        self.bytes = frame
        self.used = frame.count
        self.starts = [0]
        self.ends = [frame.count]
        self.offloads = [offload]
    }

    public var count: Int { self.ends.count }
    public var isEmpty: Bool { self.ends.isEmpty }
    /// Room after the last frame before the buffer grows.
    public var freeBytes: Int { self.bytes.count - self.used }

    /// Where frame `index` lies in ``bytes``.
    public func range(_ index: Int) -> Range<Int> { self.starts[index]..<self.ends[index] }

    /// Frame `index`'s length.
    public func length(_ index: Int) -> Int { self.ends[index] - self.starts[index] }

    /// Frame `index`'s offload state.
    public func offload(_ index: Int) -> FrameOffload { self.offloads[index] }

    /// Lends frame `index` to `body` in place.
    public func withFrame<R>(_ index: Int, _ body: (Span<UInt8>) -> R) -> R {
        body(self.bytes.span.extracting(self.range(index)))
    }

    /// Forgets the frames, keeping the buffer.
    public mutating func removeAll() {
        self.starts.removeAll(keepingCapacity: true)
        self.ends.removeAll(keepingCapacity: true)
        self.offloads.removeAll(keepingCapacity: true)
        self.used = 0
    }

    /// Appends a copy of `frame`.
    public mutating func append(_ frame: some Collection<UInt8>, offload: FrameOffload = .none) {
        self.reserve(frame.count)
        self.bytes.replaceSubrange(self.used..<(self.used + frame.count), with: frame)
        self.starts.append(self.used)
        self.used += frame.count
        self.ends.append(self.used)
        self.offloads.append(offload)
    }

    /// Appends a frame that `fill` writes into `bytes[offset..<offset + maximum]` (a read from
    /// a device straight into the batch). - Returns: whether `fill` produced one (its length;
    /// `nil`: none).
    public mutating func appendFrame<E: Error>(maximum: Int, _ fill: (inout [UInt8], _ offset: Int) throws(E) -> Int?) throws(E) -> Bool {
        self.reserve(maximum)
        guard let length = try fill(&self.bytes, self.used) else { return false }
        self.starts.append(self.used)
        self.used += min(length, maximum)
        self.ends.append(self.used)
        self.offloads.append(.none)
        return true
    }

    /// Drops the last frame's first `count` bytes (a header read with it) and gives it
    /// `offload`; a frame no longer than `count` is removed.
    public mutating func trimLast(_ count: Int, offload: FrameOffload) {
        guard let last = self.ends.indices.last else { return }
        if self.ends[last] - self.starts[last] <= count {
            self.used = self.starts[last]
            self.starts.removeLast()
            self.ends.removeLast()
            self.offloads.removeLast()
            return
        }
        self.starts[last] += count
        self.offloads[last] = offload
    }

    mutating func reserve(_ count: Int) {
        if self.freeBytes < count { self.bytes += [UInt8](repeating: 0, count: max(count, self.bytes.count)) }
    }
}

/// The sink slot of a backend: the NIC attached to it now.
final class SinkSlot: Sendable {
    let sink = Locked<(any FrameSink)?>(nil)

    /// Pushes the whole batch into the attached sink, waiting on this thread while the NIC has
    /// no room (the backend's reader stops reading, so the kernel queues or drops — not us).
    /// Frames are dropped only when no NIC is attached or `running` turns false.
    /// - Returns: frames delivered and frames dropped.
    func push(_ batch: FrameBatch, running: () -> Bool) -> (delivered: Int, dropped: Int) {
        var next = 0
        while next < batch.count {
            guard let sink = self.sink.withLock({ $0 }), running() else { return (next, batch.count - next) }
            next = sink.deliver(batch, from: next)
            if next < batch.count { sink.waitForRoom(timeout: .milliseconds(100)) }
        }
        return (batch.count, 0)
    }
}

/// A sink that turns frames into an `AsyncStream`: a test's view of a port.
final class StreamSink: FrameSink {
    let continuation: AsyncStream<[UInt8]>.Continuation
    let counters = Locked<(taken: Int, dropped: Int)>((0, 0))

    init(_ continuation: AsyncStream<[UInt8]>.Continuation) { self.continuation = continuation }

    func deliver(_ frames: FrameBatch, from first: Int) -> Int {
        var taken = 0
        for index in first..<frames.count {
            let bytes = Array(frames.bytes[frames.range(index)])
            if case .enqueued = self.continuation.yield(bytes) { taken += 1 }
        }
        let dropped = frames.count - first - taken
        self.counters.withLock { counters in
            counters.taken += taken
            counters.dropped += dropped
        }
        return frames.count
    }

    func waitForRoom(timeout: Duration) {}
}

/// Two backends joined back to back in memory: a frame one sends comes out of the other — in
/// the sink attached to it, or in its ``frames()`` stream. For tests, benchmarks and demos.
public final class MemoryNetworkPort: NetworkBackend {
    public let macAddress: MACAddress
    public let mtu: Int
    let slot = SinkSlot()
    let capacity: Int
    /// The stream a test reads, until a NIC attaches its sink; kept for the first ``frames()``.
    let initial: Locked<(stream: AsyncStream<[UInt8]>?, sink: StreamSink?)>
    let peer = Locked<MemoryNetworkPort?>(nil)
    /// What this port lets the NIC leave undone (a test of the offload paths sets it).
    public let offloads: NetworkOffloads
    let accepted = Locked<NetworkOffloads>([])

    init(macAddress: MACAddress, mtu: Int, capacity: Int, offloads: NetworkOffloads) {
        self.macAddress = macAddress
        self.mtu = mtu
        self.capacity = capacity
        self.offloads = offloads
        let (stream, continuation) = AsyncStream.makeStream(of: [UInt8].self, bufferingPolicy: .bufferingOldest(capacity))
        let sink = StreamSink(continuation)
        self.slot.sink.withLock { $0 = sink }
        self.initial = Locked((stream, sink))
    }

    /// A joined pair; a stream end queues at most `capacity` frames (then drops, like a wire).
    /// With `offloads`, both ends take and hand over frames with that offload state.
    public static func pair(
        macAddresses: (MACAddress, MACAddress) = (.hyperV(seed: 1), .hyperV(seed: 2)), mtu: Int = 1500, capacity: Int = 4096,
        offloads: NetworkOffloads = []
    ) -> (MemoryNetworkPort, MemoryNetworkPort) {
        let a = MemoryNetworkPort(macAddress: macAddresses.0, mtu: mtu, capacity: capacity, offloads: offloads)
        let b = MemoryNetworkPort(macAddress: macAddresses.1, mtu: mtu, capacity: capacity, offloads: offloads)
        a.peer.withLock { $0 = b }
        b.peer.withLock { $0 = a }
        return (a, b)
    }

    public func send(_ frame: Span<UInt8>) { self.send(frame, offload: .none) }

    public func send(_ frame: Span<UInt8>, offload: FrameOffload) {
        var bytes: [UInt8] = []
        bytes.append(span: frame)
        self.send(batch: FrameBatch(frame: bytes, offload: offload))
    }

    /// What the NIC on this port said it can take (``acceptOffloads(_:)``).
    public var acceptedOffloads: NetworkOffloads { self.accepted.withLock { $0 } }
    public func acceptOffloads(_ offloads: NetworkOffloads) { self.accepted.withLock { $0 = offloads } }

    /// Sends one frame from an array.
    public func send(_ frame: ArraySlice<UInt8>) { self.send(batch: FrameBatch(frame)) }

    /// Sends a batch to the peer's NIC in one delivery (one signal). Frames it has no room for
    /// are dropped, as a wire drops them (the caller paces itself).
    /// - Returns: frames delivered.
    @discardableResult
    public func send(batch: FrameBatch) -> Int {
        guard let peer = self.peer.withLock({ $0 }), let sink = peer.slot.sink.withLock({ $0 }) else { return 0 }
        return sink.deliver(batch, from: 0)
    }

    public func attach(_ sink: (any FrameSink)?) { self.slot.sink.withLock { $0 = sink } }

    /// Frames arriving at this port, as a stream (replacing any sink attached: the caller is
    /// the port's consumer now). The first call also yields what arrived before it.
    public func frames() -> AsyncStream<[UInt8]> {
        let kept: AsyncStream<[UInt8]>? = self.initial.withLock { initial in
            defer { initial.stream = nil }
            return initial.stream
        }
        if let kept { return kept }
        let (stream, continuation) = AsyncStream.makeStream(of: [UInt8].self, bufferingPolicy: .bufferingOldest(self.capacity))
        let sink = StreamSink(continuation)
        self.initial.withLock { $0.sink = sink }
        self.slot.sink.withLock { $0 = sink }
        return stream
    }

    public func close() {
        self.finishStream()
        let peer = self.peer.withLock { peer in
            defer { peer = nil }
            return peer
        }
        peer?.finishStream()
    }

    func finishStream() {
        let sink = self.initial.withLock { $0.sink }
        sink?.continuation.finish()
    }

    /// Frames this port's stream took, and frames it dropped because its queue was full.
    public var received: Int { self.initial.withLock { $0.sink }?.counters.withLock { $0.taken } ?? 0 }
    public var dropped: Int { self.initial.withLock { $0.sink }?.counters.withLock { $0.dropped } ?? 0 }
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
    /// Large TCP segments sent whole (LSO guest → host, counted in tx_packets too).
    public var txLargeSegments: UInt64 = 0
    /// Segments received whole over several sub-allocations (RSC host → guest, in rx_packets too).
    public var rxCoalesced: UInt64 = 0
    /// Why the host last stopped this channel (a protocol breach, 11 §8), if it did.
    public var lastFault: String?

    public init() {}
}
