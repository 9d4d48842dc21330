import VMBusMemory

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
