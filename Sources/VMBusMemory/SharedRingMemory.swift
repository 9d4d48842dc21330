import Atomics
import CLinux
import Glibc
import VMBusRing
import VMBusWire

/// One ring inside mapped memory: its 4 KiB control page and its data area, the
/// ``RingMemory`` that `VMBusRing` runs on.
///
/// With a double mapping (``doubleMapped(fileDescriptor:offset:ringSize:)``) the data area
/// appears twice in a row, so a packet that wraps is contiguous and every copy is one memcpy;
/// otherwise copies are split at the end of the data area (uio and other single mappings).
///
/// The data path is inlined into the ring code that uses it and reaches memory through two
/// pointers formed once at init: no call, no reference counting and no class access per
/// packet (a non-inlined accessor on a struct holding the mapping cost a retain and a release
/// per call, a third of a small packet's time).
@safe
public struct SharedRingMemory: RingMemory, @unchecked Sendable {
    /// The mapping the ring lives in; holding it keeps the pointers below valid.
    public let memory: MappedMemory
    /// Offset of the control page in the mapping.
    public let controlOffset: Int
    /// Offset of the data area in the mapping.
    public let dataOffset: Int
    public let dataSize: Int
    /// Whether the data area is mapped a second time right after itself.
    public let isDoubleMapped: Bool
    /// The control page and the data area, inside `memory` (checked at init).
    @usableFromInline let control: UnsafeMutableRawPointer
    @usableFromInline let data: UnsafeMutableRawPointer
    /// How this ring's writer copies large payloads (see ``largeWriteStores``); the pointer is
    /// formed once, so a write reaches it with no reference counting.
    @usableFromInline let largeWrites: UnsafeMutablePointer<clinux_copy_choice>
    let largeWritesOwner: LargeWriteChoice

    /// The ring of `ringSize` bytes at `offset` of `memory` (single mapping).
    /// - Throws: ``MemoryError`` unless the ring is page-aligned, at least two pages, and inside
    ///   the mapping.
    public init(memory: MappedMemory, offset: Int, ringSize: Int) throws(MemoryError) {
        guard ringSize >= RingSize.minimum, ringSize % MappedMemory.pageSize == 0 else {
            throw MemoryError.invalidSize(ringSize)
        }
        guard offset % MappedMemory.pageSize == 0 else {
            throw MemoryError.outOfBounds(offset: offset, count: ringSize, size: memory.size)
        }
        try memory.check(offset, ringSize)
        self.init(memory: memory, controlOffset: offset, dataSize: ringSize - RingSize.pageSize, doubleMapped: false)
    }

    /// Maps the ring of `ringSize` bytes at `offset` of a file or memfd with its data area
    /// twice in a row: `[control][data][data again]` (Linux's vmap trick, 02 §4).
    public static func doubleMapped(fileDescriptor fd: Int32, offset: Int, ringSize: Int) throws(MemoryError)
        -> SharedRingMemory
    {
        guard ringSize >= RingSize.minimum, ringSize % MappedMemory.pageSize == 0,
            offset >= 0, offset % MappedMemory.pageSize == 0
        else { throw MemoryError.invalidSize(ringSize) }
        let dataSize = ringSize - RingSize.pageSize
        let reserved = ringSize + dataSize
        // Reserve the whole range first so the two fixed mappings land next to each other.
        let base = unsafe try MappedMemory.mapOrThrow(nil, reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        let mapping = unsafe MappedMemory(base: base, size: ringSize, reservedLength: reserved, fileDescriptor: nil)
        _ = unsafe try MappedMemory.mapOrThrow(base, ringSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, offset)
        _ = unsafe try MappedMemory.mapOrThrow(
            base + ringSize, dataSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
            offset + RingSize.pageSize)
        return SharedRingMemory(memory: mapping, controlOffset: 0, dataSize: dataSize, doubleMapped: true)
    }

    /// A double mapping of a new memfd-backed ring of `ringSize` bytes, its control page
    /// initialised: for benchmarks and tests that want the layout the local substrate uses.
    public static func doubleMappedAnonymous(ringSize: Int) throws(MemoryError) -> SharedRingMemory {
        let file = try MappedMemory.memfd(name: "vmbus-ring", size: ringSize)
        guard let fd = file.fileDescriptor else { throw MemoryError.invalidSize(ringSize) }
        // The new mapping has its own view of the memfd; `file` may go (the pages stay while
        // mapped, the descriptor is closed with `file`).
        let ring = try doubleMapped(fileDescriptor: fd, offset: 0, ringSize: ringSize)
        withExtendedLifetime(file) {}
        return ring
    }

    private init(memory: MappedMemory, controlOffset: Int, dataSize: Int, doubleMapped: Bool) {
        self.memory = memory
        self.controlOffset = controlOffset
        self.dataOffset = controlOffset + RingSize.pageSize
        self.dataSize = dataSize
        self.isDoubleMapped = doubleMapped
        // SAFETY: both offsets lie inside the mapping (checked by the callers above), which
        // `self.memory` keeps alive as long as these pointers can be used.
        unsafe self.control = memory.base + controlOffset
        unsafe self.data = memory.base + controlOffset + RingSize.pageSize
        self.largeWritesOwner = LargeWriteChoice()
        unsafe self.largeWrites = self.largeWritesOwner.state
    }

    // MARK: RingMemory

    @inlinable
    func atomic32(_ word: RingControlWord) -> UnsafeAtomic<UInt32> {
        // SAFETY: control words are fixed, aligned offsets inside the 4 KiB control page.
        unsafe UnsafeAtomic<UInt32>(at: (self.control + word.rawValue).assumingMemoryBound(to: UnsafeAtomic<UInt32>.Storage.self))
    }

    @inlinable
    func atomic64(_ offset: Int) -> UnsafeAtomic<UInt64> {
        precondition(offset >= 0 && offset < self.dataSize && offset & 7 == 0, "ring word offset \(offset)")
        // SAFETY: checked just above: an aligned word inside the data area.
        return unsafe UnsafeAtomic<UInt64>(at: (self.data + offset).assumingMemoryBound(to: UnsafeAtomic<UInt64>.Storage.self))
    }

    @inlinable
    public func load(_ word: RingControlWord, ordering: RingLoadOrdering) -> UInt32 {
        switch ordering {
        case .relaxed: return self.atomic32(word).load(ordering: .relaxed)
        case .acquiring: return self.atomic32(word).load(ordering: .acquiring)
        }
    }

    @inlinable
    public func store(_ word: RingControlWord, _ value: UInt32, ordering: RingStoreOrdering) {
        switch ordering {
        case .relaxed: self.atomic32(word).store(value, ordering: .relaxed)
        case .releasing: self.atomic32(word).store(value, ordering: .releasing)
        }
    }

    @inlinable
    public func fullFence() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
    }

    @inlinable
    public func loadWord(at offset: Int) -> UInt64 {
        // One relaxed atomic load: the peer may be writing, and the value is validated after.
        self.atomic64(offset).load(ordering: .relaxed)
    }

    @inlinable
    public func storeWord(_ value: UInt64, at offset: Int) {
        self.atomic64(offset).store(value, ordering: .relaxed)
    }

    /// Bytes of a copy of `count` at `offset` that lie before the end of the data area (all of
    /// them on a double mapping).
    @inlinable
    func firstPart(_ offset: Int, _ count: Int) -> Int {
        self.checkRange(offset, count)
        return self.isDoubleMapped ? count : min(count, self.dataSize - offset)
    }

    @inlinable
    public func copyOut(from offset: Int, count: Int, into buffer: inout [UInt8], at bufferOffset: Int) {
        let first = self.firstPart(offset, count)
        precondition(bufferOffset >= 0 && bufferOffset <= buffer.count && count <= buffer.count - bufferOffset,
                     "destination too small")
        guard count > 0 else { return }
        let data = unsafe self.data  // not `self`: see copyIn
        unsafe buffer.withUnsafeMutableBytes { destination in
            // SAFETY: the source range is inside the data area (or its second mapping) and the
            // destination range inside the buffer, both checked above.
            let target = unsafe destination.baseAddress! + bufferOffset
            unsafe target.copyMemory(from: data + offset, byteCount: first)
            if first < count { unsafe (target + first).copyMemory(from: data, byteCount: count - first) }
        }
    }

    @inlinable
    public func copyIn(to offset: Int, from source: ArraySlice<UInt8>) {
        let count = source.count
        let first = self.firstPart(offset, count)
        guard count > 0 else { return }
        // The closure takes the two pointers, not `self`: capturing `self` copied the struct,
        // and with it retained and released the mapping, on every packet.
        let data = unsafe self.data
        let choice = unsafe self.largeWrites
        unsafe source.withUnsafeBytes { bytes in
            // SAFETY: the destination range is inside the data area (or its second mapping),
            // checked above; the source is the slice's own storage.
            if count >= Self.streamingThreshold {
                // Large writes take plain or streaming stores, whichever moves this ring faster
                // where its reader runs now (see `clinux_copy_choice`).
                unsafe copyLarge(choice, data + offset, data, bytes.baseAddress!, first, count)
            } else {
                unsafe (data + offset).copyMemory(from: bytes.baseAddress!, byteCount: first)
                if first < count { unsafe data.copyMemory(from: bytes.baseAddress! + first, byteCount: count - first) }
            }
        }
    }

    /// Writes of at least this many bytes may use streaming stores (``largeWriteStores``).
    /// Measured with two threads on a 256 KiB ring whose reader's cache is far: 1.4–2× the
    /// plain copy from 4 KiB up, 0.75× at 1 KiB (BENCHMARKS.md).
    @inlinable public static var streamingThreshold: Int { 4096 }

    /// Which stores this ring's writer uses for payloads of ``streamingThreshold`` bytes and
    /// more. ``LargeWriteStores/adaptive`` (the default) times both, waiting for room included,
    /// and uses the faster;
    /// the others fix the choice, for benchmarks and tests. Setting it starts the measurements
    /// afresh; set it before writing, from the writer's side.
    public var largeWriteStores: LargeWriteStores {
        get {
            switch unsafe self.largeWrites.pointee.forced {
            case 1: .plain
            case 2: .streaming
            default: .adaptive
            }
        }
        nonmutating set {
            let forced: UInt8 =
                switch newValue {
                case .adaptive: 0
                case .plain: 1
                case .streaming: 2
                }
            var fresh = clinux_copy_choice()
            fresh.forced = forced
            unsafe self.largeWrites.pointee = fresh
        }
    }

    /// What the adaptive choice has seen: whether large writes stream now (outside the epochs
    /// that try the other kind), and the moving averages of each kind's time per byte, waiting
    /// for room included (time-stamp ticks per 256 bytes; 0 until measured).
    /// Read it on the writer's thread, or once the writer has stopped.
    public var largeWriteCosts: (streaming: Bool, plain: UInt32, streamingCost: UInt32) {
        let state = unsafe self.largeWrites.pointee
        return (state.streaming != 0, state.plain_cost, state.streaming_cost)
    }

    @inlinable
    public func zero(at offset: Int, count: Int) {
        let first = self.firstPart(offset, count)
        // SAFETY: inside the data area (or its second mapping), checked above.
        unsafe (self.data + offset).initializeMemory(as: UInt8.self, repeating: 0, count: first)
        if first < count { unsafe self.data.initializeMemory(as: UInt8.self, repeating: 0, count: count - first) }
    }

    @inlinable
    public func withContiguousBytes<R>(at offset: Int, count: Int, _ body: (Span<UInt8>) throws -> R) rethrows -> R? {
        self.checkRange(offset, count)
        guard self.isDoubleMapped || offset + count <= self.dataSize else { return nil }
        // SAFETY: the range lies inside the mapping (checked above; a double mapping holds the
        // data area twice), and the span does not outlive `body`, during which `self` (and so
        // `self.memory`) stays alive.
        let pointer = unsafe (self.data + offset).assumingMemoryBound(to: UInt8.self)
        let buffer = unsafe UnsafeBufferPointer(start: pointer, count: count)
        return try unsafe body(buffer.span)
    }

    /// Ring offsets come from the ring logic, which validated every peer value before forming
    /// them; a bad one here is a bug in this project, not peer input.
    @inlinable
    func checkRange(_ offset: Int, _ count: Int) {
        precondition(offset >= 0 && offset < self.dataSize && count >= 0 && count <= self.dataSize,
                      "ring access of \(count) bytes at \(offset) in \(self.dataSize)")
    }
}

/// `clinux_copy_large`, declared to release nothing: a call into C may, for all the optimizer
/// knows, release anything, so it copied (retained and released) the writer's ring around
/// every call, a third of a small packet's cost.
@usableFromInline @_effects(releasenone)
func copyLarge(
    _ choice: UnsafeMutablePointer<clinux_copy_choice>, _ destination: UnsafeMutableRawPointer,
    _ wrapped: UnsafeMutableRawPointer, _ source: UnsafeRawPointer, _ first: Int, _ count: Int
) {
    unsafe clinux_copy_large(choice, destination, wrapped, source, first, count)
}

/// Which stores a ring's writer uses for large payloads (``SharedRingMemory/largeWriteStores``).
public enum LargeWriteStores: String, Sendable, CaseIterable {
    /// Whichever of the two moves the ring faster, re-measured as the writer writes.
    case adaptive
    /// Plain stores (memcpy): best when the reader shares the writer's cache.
    case plain
    /// Streaming (non-temporal) stores: best when the reader's cache is far.
    case streaming
}

/// Owns one ring's `clinux_copy_choice`: plain memory that the ring's writer updates in place.
@safe
final class LargeWriteChoice: @unchecked Sendable {
    let state: UnsafeMutablePointer<clinux_copy_choice>

    init() {
        unsafe self.state = UnsafeMutablePointer<clinux_copy_choice>.allocate(capacity: 1)
        unsafe self.state.initialize(to: clinux_copy_choice())
    }

    deinit {
        unsafe self.state.deallocate()
    }
}
