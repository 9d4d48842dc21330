import VMBusWire

/// The writing end of a ring (02 §6–§8): the guest's outbound ring, the host's inbound one.
///
/// The writer keeps its own copy of `write_index` and never trusts the shared one; it loads
/// the peer's `read_index` once per decision and validates it. Packets written since the last
/// ``commit()`` form a batch: one index publication and one signal decision for all of them.
public struct OutgoingRing<Memory: RingMemory> {
    /// The ring's shared memory: its control page, then its data area.
    public let memory: Memory
    /// Bytes in the data area (the ring's size less its control page); indices run from 0 below it.
    public let dataSize: Int
    /// The write index last published.
    @usableFromInline var committedWrite: Int
    /// Where the next packet goes: `committedWrite` plus the uncommitted batch.
    @usableFromInline var pendingWrite: Int
    /// The reader's index as last loaded. The true one can only be further ahead, so space
    /// computed from it is a safe lower bound; it is reloaded only when that bound is too small,
    /// which keeps the reader's cache line out of the writer's fast path.
    @usableFromInline var cachedRead: Int
    /// Linux's `out_full_flag`: in a "ring was full" episode.
    @usableFromInline var outFullFlag = false
    @usableFromInline var isBroken = false
    @usableFromInline var stats = RingStatistics()

    /// Counters since attach (02 §11).
    public var statistics: RingStatistics { self.stats }

    /// Attaches to a ring whose control page was initialised; reads `write_index` once.
    /// - Throws: ``RingError/invalidIndex(word:value:dataSize:)`` for an impossible index.
    public init(memory: Memory) throws(RingError) {
        self.memory = memory
        self.dataSize = memory.dataSize
        let write = try RingIndex.validate(
            memory.load(.writeIndex, ordering: .acquiring), word: "write_index", dataSize: memory.dataSize)
        self.committedWrite = write
        self.pendingWrite = write
        self.cachedRead = try RingIndex.validate(
            memory.load(.readIndex, ordering: .acquiring), word: "read_index", dataSize: memory.dataSize)
    }

    /// The largest packet (descriptor through padding) this ring can ever take.
    public var maximumPacketLength: Int { RingSize.maximumPacketLength(dataSize: self.dataSize) }

    /// Free bytes for the next packet, counting the uncommitted batch (Linux's
    /// `write_avail`). One slot of 8 bytes can never be used: see ``maximumPacketLength``.
    public func bytesAvailableToWrite() throws(RingError) -> Int {
        RingIndex.bytesToWrite(read: try self.loadReadIndex(), write: self.pendingWrite, dataSize: self.dataSize)
    }

    /// Writes an in-band-style packet — descriptor, payload, zero padding, trailer — without
    /// publishing it. Nothing is allocated.
    /// - Returns: `false` when the ring is full (the admission rule of 02 §2: free space must
    ///   be strictly greater than the packet and its trailer).
    /// - Throws: ``RingError`` when the peer's `read_index` is impossible (the ring is then broken).
    /// - Precondition: the packet fits an empty ring (``maximumPacketLength``): its size is
    ///   chosen locally, so a larger one is a programming error, not peer input.
    @inlinable
    public mutating func write(
        type: PacketType = .dataInBand, flags: PacketFlags = [], transactionID: UInt64 = 0,
        payload: ArraySlice<UInt8>
    ) throws(RingError) -> Bool {
        let length = PacketSize.inBand(payload: payload.count)
        guard try self.admit(length) else { return false }
        let descriptor = PacketDescriptor(
            type: type, offset8: 2, len8: UInt16(truncatingIfNeeded: length / 8), flags: flags,
            transactionID: transactionID)
        let start = self.pendingWrite
        let words = descriptor.words
        self.memory.storeWord(words.0, at: start)
        self.memory.storeWord(words.1, at: RingIndex.advance(start, by: 8, dataSize: self.dataSize))
        let payloadStart = RingIndex.advance(start, by: PacketDescriptor.wireSize, dataSize: self.dataSize)
        self.memory.copyIn(to: payloadStart, from: payload)
        let padding = length - PacketDescriptor.wireSize - payload.count
        if padding > 0 {
            self.memory.zero(at: RingIndex.advance(payloadStart, by: payload.count, dataSize: self.dataSize), count: padding)
        }
        self.finish(start: start, length: length)
        return true
    }

    /// Writes an in-band packet whose payload is one 8-byte word (a pipe header, 07 §4) followed
    /// by `payload` — the two parts land back to back without being joined first.
    /// - Returns: `false` when the ring is full.
    @inlinable
    public mutating func write(leadingWord: UInt64, payload: ArraySlice<UInt8>) throws(RingError) -> Bool {
        let length = PacketSize.inBand(payload: 8 + payload.count)
        guard try self.admit(length) else { return false }
        let descriptor = PacketDescriptor(
            type: .dataInBand, offset8: 2, len8: UInt16(truncatingIfNeeded: length / 8), flags: [], transactionID: 0)
        let start = self.pendingWrite
        let words = descriptor.words
        self.memory.storeWord(words.0, at: start)
        self.memory.storeWord(words.1, at: RingIndex.advance(start, by: 8, dataSize: self.dataSize))
        self.memory.storeWord(leadingWord, at: RingIndex.advance(start, by: 16, dataSize: self.dataSize))
        let payloadStart = RingIndex.advance(start, by: 24, dataSize: self.dataSize)
        self.memory.copyIn(to: payloadStart, from: payload)
        let padding = length - 24 - payload.count
        if padding > 0 {
            self.memory.zero(at: RingIndex.advance(payloadStart, by: payload.count, dataSize: self.dataSize), count: padding)
        }
        self.finish(start: start, length: length)
        return true
    }

    /// Ring bytes written since the last ``commit()``: what the reader gets at the next one.
    @inlinable
    public var uncommittedBytes: Int {
        RingIndex.bytesToRead(read: self.committedWrite, write: self.pendingWrite, dataSize: self.dataSize)
    }

    /// Where the next packet goes: the private write position, ``uncommittedBytes`` ahead of
    /// the published one. The packet written last ends, with its trailer, just before it (a
    /// capture reads that packet back from the ring).
    public var pendingWriteOffset: Int { self.pendingWrite }

    /// Free bytes right now (the peer's read index reloaded): for writers that size their
    /// packets to the room they have, as hvsock does (07 §4.1).
    public mutating func freeBytes() throws(RingError) -> Int {
        guard !self.isBroken else { throw RingError.broken }
        self.cachedRead = try self.peerReadIndex()
        return RingIndex.bytesToWrite(read: self.cachedRead, write: self.pendingWrite, dataSize: self.dataSize)
    }

    /// Writes a packet already formatted by `PacketEncoder` (its length a multiple of 8),
    /// plus the trailer, without publishing it.
    /// - Returns: `false` when the ring is full.
    public mutating func write(packet: ArraySlice<UInt8>) throws(RingError) -> Bool {
        precondition(packet.count % 8 == 0 && packet.count >= PacketDescriptor.wireSize,
                     "a locally built packet is a whole number of 8-byte units")
        guard try self.admit(packet.count) else { return false }
        let start = self.pendingWrite
        self.memory.copyIn(to: start, from: packet)
        self.finish(start: start, length: packet.count)
        return true
    }

    /// Checks free space for a packet of `length` bytes and keeps the full-ring statistics.
    @inlinable
    mutating func admit(_ length: Int) throws(RingError) -> Bool {
        guard !self.isBroken else { throw RingError.broken }
        precondition(length <= self.maximumPacketLength, "packet of \(length) bytes can never fit this ring")
        let total = length + RingControlPage.trailerSize
        var free = RingIndex.bytesToWrite(read: self.cachedRead, write: self.pendingWrite, dataSize: self.dataSize)
        if free <= total {
            self.cachedRead = try self.peerReadIndex()
            free = RingIndex.bytesToWrite(read: self.cachedRead, write: self.pendingWrite, dataSize: self.dataSize)
        }
        if free <= total {
            self.stats.outFullTotal += 1
            if !self.outFullFlag {
                self.stats.outFullFirst += 1
                self.outFullFlag = true
            }
            return false
        }
        self.outFullFlag = false
        return true
    }

    /// Writes the trailer after a packet and moves the private write position.
    @inlinable
    mutating func finish(start: Int, length: Int) {
        // The trailer names where the packet began (02 §5); nobody reads it, but Linux and
        // Hyper-V write it, so a peer inspecting the ring sees the same bytes.
        self.memory.storeWord(RingControlPage.trailer(startOffset: UInt32(start)),
                              at: RingIndex.advance(start, by: length, dataSize: self.dataSize))
        self.pendingWrite = RingIndex.advance(start, by: length + RingControlPage.trailerSize, dataSize: self.dataSize)
        self.stats.packets += 1
        self.stats.bytes += UInt64(length)
    }

    /// Publishes every packet written since the last commit and decides whether the reader
    /// must be signalled (02 §7.1): only if it is not draining (`interrupt_mask` clear) and
    /// had consumed everything up to where this batch began.
    /// - Returns: whether to signal the reader.
    @inlinable
    public mutating func commit() throws(RingError) -> Bool {
        guard !self.isBroken else { throw RingError.broken }
        guard self.pendingWrite != self.committedWrite else { return false }
        let batchStart = self.committedWrite
        // The release store orders the packet bytes before the index the reader acquires.
        self.memory.store(.writeIndex, UInt32(self.pendingWrite), ordering: .releasing)
        self.committedWrite = self.pendingWrite
        // Store → load: the reader may clear its mask and re-check just before our store is
        // visible; without a full fence we could read a stale mask and both sides would sleep.
        self.memory.fullFence()
        if self.memory.load(.interruptMask, ordering: .acquiring) != 0 { return false }
        self.cachedRead = try self.peerReadIndex()
        let signal = self.cachedRead == batchStart
        if signal { self.stats.intrOutEmpty += 1 }
        return signal
    }

    /// Tells the reader this writer is blocked until `bytes` are free (02 §8), then re-checks,
    /// since the reader may have freed space before it could see the request.
    /// - Returns: `true` if enough space is already free (the request is withdrawn then).
    public mutating func setPendingSendSize(_ bytes: Int) throws(RingError) -> Bool {
        guard !self.isBroken else { throw RingError.broken }
        self.memory.store(.pendingSendSize, UInt32(clamping: bytes), ordering: .releasing)
        self.stats.outFullTotal += 1
        // Store → load, as in commit(): the reader must see the request or we must see its space.
        self.memory.fullFence()
        if try self.bytesAvailableToWrite() > bytes {
            self.clearPendingSendSize()
            return true
        }
        return false
    }

    /// Counts a signal sent to the reader (Linux's `events`).
    public mutating func recordEvent() {
        self.stats.events += 1
    }

    /// Withdraws a pending-send-size request (a stale one causes spurious signals).
    public mutating func clearPendingSendSize() {
        self.memory.store(.pendingSendSize, 0, ordering: .releasing)
        self.outFullFlag = false
    }

    /// The peer's `read_index`, loaded once and validated.
    @inlinable
    func loadReadIndex() throws(RingError) -> Int {
        try RingIndex.validate(
            self.memory.load(.readIndex, ordering: .acquiring), word: "read_index", dataSize: self.dataSize)
    }

    /// ``loadReadIndex()``, breaking the ring for good on an impossible value.
    @inlinable
    mutating func peerReadIndex() throws(RingError) -> Int {
        do {
            return try self.loadReadIndex()
        } catch {
            self.isBroken = true
            throw error
        }
    }
}

/// A writer's state is plain values plus the memory handle: it may move between tasks (one
/// owner at a time) when the memory may.
extension OutgoingRing: Sendable where Memory: Sendable {}
