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
