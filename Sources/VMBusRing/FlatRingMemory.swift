import VMBusWire

/// Ring memory in ordinary arrays, for single-threaded tests and fuzzing (OpenVMM's
/// `FlatRingMem`). Both ends of a test ring share one instance. Not for use across threads:
/// shared rings live in `VMBusMemory`.
public final class FlatRingMemory: RingMemory {
    public let dataSize: Int
    /// The control page as 1024 little-endian words; tests may poke any of them.
    public var controlWords: [UInt32]
    /// The data area.
    public var data: [UInt8]

    /// A zeroed ring of `ringSize` bytes (control page included).
    /// - Precondition: `ringSize` is a whole number of 4 KiB pages, at least two.
    public init(ringSize: Int) {
        precondition(ringSize >= RingSize.minimum && ringSize % RingSize.pageSize == 0, "ring size \(ringSize)")
        self.dataSize = ringSize - RingSize.pageSize
        self.controlWords = Array(repeating: 0, count: RingSize.pageSize / 4)
        self.data = Array(repeating: 0, count: ringSize - RingSize.pageSize)
    }

    public func load(_ word: RingControlWord, ordering: RingLoadOrdering) -> UInt32 {
        self.controlWords[word.rawValue / 4]
    }

    public func store(_ word: RingControlWord, _ value: UInt32, ordering: RingStoreOrdering) {
        self.controlWords[word.rawValue / 4] = value
    }

    public func fullFence() {}

    public func loadWord(at offset: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 | UInt64(self.data[offset + $1]) << (8 * $1) }
    }

    public func storeWord(_ value: UInt64, at offset: Int) {
        for i in 0..<8 { self.data[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }

    public func copyOut(from offset: Int, count: Int, into buffer: inout [UInt8], at bufferOffset: Int) {
        let first = min(count, self.dataSize - offset)
        buffer.replaceSubrange(bufferOffset..<bufferOffset + first, with: self.data[offset..<offset + first])
        buffer.replaceSubrange(bufferOffset + first..<bufferOffset + count, with: self.data[0..<count - first])
    }

    public func copyIn(to offset: Int, from source: ArraySlice<UInt8>) {
        let first = min(source.count, self.dataSize - offset)
        self.data.replaceSubrange(offset..<offset + first, with: source.prefix(first))
        self.data.replaceSubrange(0..<source.count - first, with: source.dropFirst(first))
    }

    public func withContiguousBytes<R>(at offset: Int, count: Int, _ body: (Span<UInt8>) throws -> R) rethrows -> R? {
        guard offset + count <= self.dataSize else { return nil }
        // A local copy of the array (it shares storage) gives the span a scope to live in.
        let data = self.data
        let span = data.span
        return try body(span.extracting(offset..<offset + count))
    }

    public func zero(at offset: Int, count: Int) {
        self.copyIn(to: offset, from: ArraySlice(repeating: 0, count: count))
    }
}

extension RingMemory {
    /// Prepares a fresh ring as Linux does before OpenChannel (02 §1.1): indices, mask and
    /// pending size zero, feature bit 0 (`pending_send_sz` supported) set.
    public func initializeControlPage(featureBits: UInt32 = RingControlPage.featurePendingSendSize) {
        for word in [RingControlWord.writeIndex, .readIndex, .interruptMask, .pendingSendSize] {
            self.store(word, 0, ordering: .relaxed)
        }
        self.store(.featureBits, featureBits, ordering: .releasing)
    }
}
