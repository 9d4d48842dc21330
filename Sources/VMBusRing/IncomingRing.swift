import VMBusWire

/// A packet found by ``IncomingRing/next()``: its validated descriptor and where it lies in
/// the data area. Valid until the ring is committed.
public struct IncomingPacket: Hashable, Sendable {
    /// The descriptor as read once from shared memory and validated.
    public var descriptor: PacketDescriptor
    /// Offset of the descriptor in the data area.
    public var offset: Int

    /// `len8 × 8`: descriptor through padding.
    public var length: Int { self.descriptor.totalLength }

    /// A packet whose validated descriptor was read at `offset` of the data area.
    @inlinable
    public init(descriptor: PacketDescriptor, offset: Int) {
        self.descriptor = descriptor
        self.offset = offset
    }
}

/// The reading end of a ring (02 §7.2, §7.3, §9): the guest's inbound ring, the host's
/// outbound one.
///
/// Reads iterate packets privately (``next()``) and make the space they free visible once, at
/// ``commit()``, which also decides whether the blocked writer must be signalled. Every value
/// the peer wrote — its `write_index`, each descriptor — is loaded once, validated, then used;
/// any impossible value breaks the ring for good.
public struct IncomingRing<Memory: RingMemory> {
    /// The ring's shared memory: its control page, then its data area.
    public let memory: Memory
    /// Bytes in the data area (the ring's size less its control page); indices run from 0 below it.
    public let dataSize: Int
    /// The largest packet (`len8 × 8`) this reader accepts; longer is a channel error.
    public let maximumPacketLength: Int
    /// The read index last published.
    @usableFromInline var committedRead: Int
    /// Where the next packet starts: after the packets returned since the last commit.
    @usableFromInline var nextRead: Int
    /// The writer's index as last loaded (acquire): everything before it is published. The true
    /// one can only be further ahead; it is reloaded only when the packets known so far run out.
    @usableFromInline var cachedWrite: Int
    @usableFromInline var isBroken = false
    @usableFromInline var stats = RingStatistics()

    /// Counters since attach (02 §11).
    public var statistics: RingStatistics { self.stats }

    /// Attaches to a ring; reads `read_index` once.
    /// - Parameter memory: the ring: its control page, then its data area.
    /// - Parameter maximumPacketLength: the largest packet to accept; by default the largest
    ///   the ring can hold. Size it from the device protocol (Linux's `max_pkt_size`).
    public init(memory: Memory, maximumPacketLength: Int? = nil) throws(RingError) {
        self.memory = memory
        self.dataSize = memory.dataSize
        let ringMaximum = RingSize.maximumPacketLength(dataSize: memory.dataSize)
        self.maximumPacketLength = min(maximumPacketLength ?? ringMaximum, ringMaximum)
        let read = try RingIndex.validate(
            memory.load(.readIndex, ordering: .acquiring), word: "read_index", dataSize: memory.dataSize)
        self.committedRead = read
        self.nextRead = read
        self.cachedWrite = read
    }

    /// Bytes the writer has published beyond the packets already returned (Linux's `read_avail`
    /// counts from the committed index; this counts from the private one).
    public func bytesAvailableToRead() throws(RingError) -> Int {
        RingIndex.bytesToRead(read: self.nextRead, write: try self.loadWriteIndex(), dataSize: self.dataSize)
    }

    /// The next packet, validated, or `nil` when the ring is empty. The packet stays in the ring
    /// (read it with ``copyPayload(of:into:)`` or ``copyPacket(_:into:)``) until ``commit()``.
    /// - Throws: ``RingError`` for anything impossible: the ring is broken afterwards.
    @inlinable
    public mutating func next() throws(RingError) -> IncomingPacket? {
        guard !self.isBroken else { throw RingError.broken }
        // The fast path — the packet lies wholly before the write index already known — is
        // inlined into the caller; reloading the index and every failure are calls.
        let start = self.nextRead
        let available = RingIndex.bytesToRead(read: start, write: self.cachedWrite, dataSize: self.dataSize)
        guard available >= PacketDescriptor.wireSize + RingControlPage.trailerSize else {
            return try self.nextAfterReload()
        }
        let words = (self.memory.loadWord(at: start), self.memory.loadWord(at: RingIndex.advance(start, by: 8, dataSize: self.dataSize)))
        // The words are read once and validated (02 §9.3); anything unusual goes the slow way.
        guard let descriptor = try? PacketDescriptor(words: words),
            descriptor.totalLength + RingControlPage.trailerSize <= available,
            descriptor.totalLength <= self.maximumPacketLength
        else { return try self.nextAfterReload() }
        return self.accept(IncomingPacket(descriptor: descriptor, offset: start))
    }

    /// ``next()`` when the packet is not wholly inside the known write index, or is invalid:
    /// reloads the index and validates in full (the descriptor read again from the ring, once).
    @usableFromInline
    mutating func nextAfterReload() throws(RingError) -> IncomingPacket? {
        let found: IncomingPacket?
        do {
            (found, self.cachedWrite) = try self.locate(at: self.nextRead, knownWrite: self.cachedWrite)
        } catch {
            self.isBroken = true
            throw error
        }
        guard let packet = found else { return nil }
        return self.accept(packet)
    }

    /// Moves past a validated packet.
    @inlinable
    mutating func accept(_ packet: IncomingPacket) -> IncomingPacket {
        self.nextRead = RingIndex.advance(
            packet.offset, by: packet.length + RingControlPage.trailerSize, dataSize: self.dataSize)
        self.stats.packets &+= 1
        self.stats.bytes &+= UInt64(truncatingIfNeeded: packet.length)
        return packet
    }

    /// Validates the packet at `start` (02 §9.3): the writer's index (reloaded only when the
    /// one known is not enough), then the descriptor read once, then its length against what
    /// was written and against this reader's limit.
    /// - Returns: the packet, or `nil` when the ring is empty, and the write index used.
    @usableFromInline
    func locate(at start: Int, knownWrite: Int) throws(RingError) -> (IncomingPacket?, Int) {
        var write = knownWrite
        var fresh = false
        var available = RingIndex.bytesToRead(read: start, write: write, dataSize: self.dataSize)
        // Every packet is at least a descriptor and its trailer.
        let minimum = PacketDescriptor.wireSize + RingControlPage.trailerSize
        if available < minimum {
            write = try self.loadWriteIndex()
            fresh = true
            available = RingIndex.bytesToRead(read: start, write: write, dataSize: self.dataSize)
            if available == 0 { return (nil, write) }
            guard available >= minimum else { throw RingError.truncatedDescriptor(available: available) }
        }
        let descriptor = try Self.descriptor((
            self.memory.loadWord(at: start),
            self.memory.loadWord(at: RingIndex.advance(start, by: 8, dataSize: self.dataSize))
        ))
        let length = descriptor.totalLength
        if length + RingControlPage.trailerSize > available && !fresh {
            write = try self.loadWriteIndex()
            available = RingIndex.bytesToRead(read: start, write: write, dataSize: self.dataSize)
        }
        guard length + RingControlPage.trailerSize <= available else {
            throw RingError.packetPastWriteIndex(length: length, available: available)
        }
        guard length <= self.maximumPacketLength else {
            throw RingError.packetTooLarge(length: length, limit: self.maximumPacketLength)
        }
        return (IncomingPacket(descriptor: descriptor, offset: start), write)
    }

    /// Copies a packet's payload (`(len8 − offset8) × 8` bytes, padding included) into
    /// `buffer`, replacing its contents. The buffer keeps its capacity: reuse it to read
    /// without allocating.
    @inlinable
    public func copyPayload(of packet: IncomingPacket, into buffer: inout [UInt8]) {
        let count = packet.descriptor.payloadLength
        if buffer.count != count { Self.resize(&buffer, to: count) }
        let from = RingIndex.advance(packet.offset, by: packet.descriptor.payloadOffset, dataSize: self.dataSize)
        self.memory.copyOut(from: from, count: count, into: &buffer, at: 0)
    }

    /// Calls `body` with the packet's payload in place — no copy — or returns `nil` when the
    /// payload wraps on a singly mapped ring (then use ``copyPayload(of:into:)``).
    ///
    /// The bytes are shared memory: a hostile writer can change them while `body` runs, so
    /// read each byte once and treat it as unvalidated. The descriptor itself was validated
    /// from a private copy.
    @inlinable
    public func withPayload<R>(of packet: IncomingPacket, _ body: (Span<UInt8>) throws -> R) rethrows -> R? {
        let from = RingIndex.advance(packet.offset, by: packet.descriptor.payloadOffset, dataSize: self.dataSize)
        return try self.memory.withContiguousBytes(at: from, count: packet.descriptor.payloadLength, body)
    }

    /// Calls `body` with the whole packet (descriptor first) in place, or returns `nil` when
    /// it wraps on a singly mapped ring (then use ``copyPacket(_:into:)``). As for
    /// ``withPayload(of:_:)``, the bytes are shared memory: take the descriptor from `packet`
    /// (validated from a private copy), not from the first 16 bytes.
    @inlinable
    public func withPacket<R>(_ packet: IncomingPacket, _ body: (Span<UInt8>) throws -> R) rethrows -> R? {
        try self.memory.withContiguousBytes(at: packet.offset, count: packet.length, body)
    }

    /// Copies the whole packet into `buffer` (replacing its contents). The first 16 bytes are
    /// the validated descriptor, not a second read of shared memory: the peer cannot change
    /// what was checked (02 §9.2).
    @inlinable
    public func copyPacket(_ packet: IncomingPacket, into buffer: inout [UInt8]) {
        let count = packet.length
        if buffer.count != count { Self.resize(&buffer, to: count) }
        let words = packet.descriptor.words
        for i in 0..<8 {
            buffer[i] = UInt8(truncatingIfNeeded: words.0 >> (8 * i))
            buffer[8 + i] = UInt8(truncatingIfNeeded: words.1 >> (8 * i))
        }
        let rest = RingIndex.advance(packet.offset, by: PacketDescriptor.wireSize, dataSize: self.dataSize)
        self.memory.copyOut(from: rest, count: count - PacketDescriptor.wireSize, into: &buffer, at: PacketDescriptor.wireSize)
    }

    /// Validates descriptor words read from the ring.
    @inlinable
    static func descriptor(_ words: (UInt64, UInt64)) throws(RingError) -> PacketDescriptor {
        do {
            return try PacketDescriptor(words: words)
        } catch {
            throw RingError.invalidDescriptor(error)
        }
    }

    @usableFromInline
    static func resize(_ buffer: inout [UInt8], to count: Int) {
        if buffer.count > count {
            buffer.removeLast(buffer.count - count)
        } else if buffer.count < count {
            buffer.append(contentsOf: repeatElement(0, count: count - buffer.count))
        }
    }

    /// Publishes the space of every packet returned since the last commit and decides whether
    /// the writer must be signalled (02 §7.3): only if it asked (`pending_send_sz`, on a ring
    /// whose writer set the feature bit) and this commit is what gave it enough room.
    /// - Returns: whether to signal the writer.
    @inlinable
    public mutating func commit() throws(RingError) -> Bool {
        guard !self.isBroken else { throw RingError.broken }
        guard self.nextRead != self.committedRead else { return false }
        let start = self.committedRead
        // The release store keeps our reads of the packets before the writer can reuse them.
        self.memory.store(.readIndex, UInt32(self.nextRead), ordering: .releasing)
        self.committedRead = self.nextRead
        guard self.memory.load(.featureBits, ordering: .relaxed) & RingControlPage.featurePendingSendSize != 0 else {
            return false
        }
        // Store → load: a writer setting pending_send_sz after our sample must see our index.
        self.memory.fullFence()
        // Writers that ask for "ring size − 1" get the low bits cleared, as OpenVMM does.
        let pending = Int(self.memory.load(.pendingSendSize, ordering: .acquiring)) & ~7
        if pending == 0 { return false }
        let write: Int
        do {
            write = try self.loadWriteIndex()
        } catch {
            self.isBroken = true
            throw error
        }
        let freeNow = RingIndex.bytesToWrite(read: self.committedRead, write: write, dataSize: self.dataSize)
        let freed = RingIndex.bytesToRead(read: start, write: self.committedRead, dataSize: self.dataSize)
        // The writer had room before this commit, or still has not: no signal (Linux's rule).
        if freeNow - freed > pending || freeNow <= pending { return false }
        self.stats.intrInFull += 1
        return true
    }

    /// Counts a signal received from the writer (Linux's `interrupts`).
    public mutating func recordInterrupt() {
        self.stats.interrupts += 1
    }

    /// Ring bytes of the packets returned since the last commit: room the writer gets back at
    /// the next ``commit()``.
    @inlinable
    public var uncommittedBytes: Int {
        RingIndex.bytesToRead(read: self.committedRead, write: self.nextRead, dataSize: self.dataSize)
    }

    /// Un-reads the packets returned since the last commit.
    public mutating func revert() {
        self.nextRead = self.committedRead
    }

    /// Starts draining: masks the writer's interrupts (02 §7.2).
    public func beginDrain() {
        self.memory.store(.interruptMask, 1, ordering: .relaxed)
        self.memory.fullFence()
    }

    /// Ends draining: unmasks, then re-checks. A writer may have added data while the mask was
    /// set and skipped its signal; if so this returns `true` and the caller must drain again.
    public func endDrain() throws(RingError) -> Bool {
        self.memory.store(.interruptMask, 0, ordering: .relaxed)
        // Store → load: the writer publishes then reads the mask; one of us must see the other.
        self.memory.fullFence()
        return try self.bytesAvailableToRead() > 0
    }

    /// The writer's `write_index`, loaded once (acquire: the packet bytes it covers are then
    /// visible) and validated.
    @inlinable
    func loadWriteIndex() throws(RingError) -> Int {
        try RingIndex.validate(
            self.memory.load(.writeIndex, ordering: .acquiring), word: "write_index", dataSize: self.dataSize)
    }
}

/// A reader's state is plain values plus the memory handle: it may move between tasks (one
/// owner at a time) when the memory may.
extension IncomingRing: Sendable where Memory: Sendable {}
