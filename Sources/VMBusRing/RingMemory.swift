import VMBusWire

/// A word of a ring's control page (02 §1). The raw value is the byte offset.
public struct RingControlWord: RawRepresentable, Hashable, Sendable {
    public var rawValue: Int
    @inlinable public init(rawValue: Int) { self.rawValue = rawValue }
    // Computed, not stored: the data path names these per packet (see RingControlPage).
    /// `write_index`, written by the ring's writer.
    @inlinable public static var writeIndex: Self { Self(rawValue: RingControlPage.writeIndexOffset) }
    /// `read_index`, written by the ring's reader.
    @inlinable public static var readIndex: Self { Self(rawValue: RingControlPage.readIndexOffset) }
    /// `interrupt_mask`, written by the reader.
    @inlinable public static var interruptMask: Self { Self(rawValue: RingControlPage.interruptMaskOffset) }
    /// `pending_send_sz`, written by the writer.
    @inlinable public static var pendingSendSize: Self { Self(rawValue: RingControlPage.pendingSendSizeOffset) }
    /// `feature_bits`.
    @inlinable public static var featureBits: Self { Self(rawValue: RingControlPage.featureBitsOffset) }
}

/// Memory ordering of a control-word load.
public enum RingLoadOrdering: Sendable {
    /// No ordering: statistics and values re-validated anyway.
    case relaxed
    /// Later reads see everything written before the peer's matching release store.
    case acquiring
}

/// Memory ordering of a control-word store.
public enum RingStoreOrdering: Sendable {
    /// No ordering: statistics, and values nothing else depends on.
    case relaxed
    /// Earlier reads and writes complete before the store is visible.
    case releasing
}

/// The memory of one ring: its control page and its data area (02 §1–§4).
///
/// The ring logic reaches memory only through this protocol, whose methods are all safe:
/// implementations (in `VMBusMemory`, or ``FlatRingMemory`` for tests) bounds-check every
/// access. Offsets into the data area are below ``dataSize``; copies wrap past its end at most
/// once, as on a ring whose data pages are mapped twice in a row.
public protocol RingMemory {
    /// Bytes in the data area: the ring size minus the 4 KiB control page.
    var dataSize: Int { get }

    /// Atomically loads a control word.
    func load(_ word: RingControlWord, ordering: RingLoadOrdering) -> UInt32

    /// Atomically stores a control word.
    func store(_ word: RingControlWord, _ value: UInt32, ordering: RingStoreOrdering)

    /// A sequentially consistent fence: the store → load ordering that acquire and release
    /// cannot give (02 §12).
    func fullFence()

    /// Reads the u64 at `offset` of the data area once (offset 8-aligned, below ``dataSize``).
    func loadWord(at offset: Int) -> UInt64

    /// Writes the u64 at `offset` of the data area (offset 8-aligned, below ``dataSize``).
    func storeWord(_ value: UInt64, at offset: Int)

    /// Copies `count` bytes of the data area starting at `offset` into `buffer[bufferOffset...]`,
    /// wrapping at the end of the data area.
    func copyOut(from offset: Int, count: Int, into buffer: inout [UInt8], at bufferOffset: Int)

    /// Copies `source[range]` into the data area starting at `offset`, wrapping at its end.
    func copyIn(to offset: Int, from source: ArraySlice<UInt8>)

    /// Writes `count` zero bytes into the data area starting at `offset`, wrapping at its end.
    func zero(at offset: Int, count: Int)

    /// Calls `body` with the `count` bytes at `offset` of the data area in place, as one span
    /// valid only inside `body`; returns `nil` without calling it when the bytes wrap past the
    /// end of a data area that is not mapped twice.
    func withContiguousBytes<R>(at offset: Int, count: Int, _ body: (Span<UInt8>) throws -> R) rethrows -> R?
}

/// Ring sizes (02 §3).
public enum RingSize {
    /// The Hyper-V page size; a ring is a whole number of these, control page included.
    public static let pageSize = 4096
    /// The smallest ring: one control page and one data page.
    public static let minimum = 2 * pageSize

    /// Linux's `VMBUS_RING_SIZE(payload)`: a data area of `payload` bytes plus one page of
    /// header, rounded up to the (kernel) page size.
    public static func vmbusRingSize(payload: Int, pageSize: Int = RingSize.pageSize) -> Int {
        (pageSize + payload + pageSize - 1) / pageSize * pageSize
    }

    /// The largest packet (descriptor through padding) a ring with `dataSize` bytes of data can
    /// ever hold: the write admission rule needs free space strictly greater than the packet
    /// and its trailer, so `dataSize − 16` (02 §2).
    @inlinable
    public static func maximumPacketLength(dataSize: Int) -> Int {
        dataSize - 2 * RingControlPage.trailerSize
    }
}

extension RingMemory {
    /// Bytes written and not yet read, from one look at both indices — a snapshot for status
    /// displays (both ends move on); `nil` when an index is impossible.
    public func bytesPending() -> Int? {
        let size = self.dataSize
        guard let write = try? RingIndex.validate(self.load(.writeIndex, ordering: .acquiring), word: "write_index", dataSize: size),
            let read = try? RingIndex.validate(self.load(.readIndex, ordering: .acquiring), word: "read_index", dataSize: size)
        else { return nil }
        return RingIndex.bytesToRead(read: read, write: write, dataSize: size)
    }
}
