import VMBusWire

/// One captured record waiting for the writer: its header, when it happened, and its data in a
/// buffer allocated once, at the snap length, and reused.
struct CaptureSlot: Sendable {
    var header: CaptureRecordHeader
    /// Nanoseconds since the Unix epoch.
    var timestamp: UInt64
    /// Bytes of ``bytes`` in use.
    var count: Int
    var bytes: [UInt8]

    init(snapLength: Int) {
        self.header = CaptureRecordHeader(kind: .drops, direction: .hostToGuest, observer: .host, connection: 0, originalLength: 0)
        self.timestamp = 0
        self.count = 0
        self.bytes = [UInt8](repeating: 0, count: snapLength)
    }
}

/// The producers' side of a capture: a fixed array of preallocated slots filled in order, and
/// the counts of records lost because every slot was taken.
///
/// The writer never reads slots in place: it swaps the whole array for an empty one of its own
/// (``swap(into:)``) and reads its copy outside the lock, so a producer holds the lock only
/// while it copies at most a snap length of bytes, and nothing is allocated per record.
struct CaptureQueue: ~Copyable {
    var slots: [CaptureSlot]
    /// Slots filled, from index 0.
    var count = 0
    /// Records lost since the writer last looked, by connection.
    var drops: [UInt32: UInt64] = [:]
    /// Records lost since the capture began.
    var lost: UInt64 = 0
    let snapLength: Int

    init(capacity: Int, snapLength: Int) {
        self.slots = (0..<capacity).map { _ in CaptureSlot(snapLength: snapLength) }
        self.snapLength = snapLength
    }

    /// Fills the next free slot; a full queue counts the record as lost instead.
    /// - Returns: whether the writer should be woken (the queue just became half full).
    mutating func push(
        _ header: CaptureRecordHeader, timestamp: UInt64, _ fill: (inout [UInt8], Int) -> Void
    ) -> Bool {
        guard self.count < self.slots.count else {
            // Only the lost path may allocate (a connection's first loss adds its key).
            self.drops[header.connection, default: 0] += 1
            self.lost += 1
            return false
        }
        let captured = min(Int(header.originalLength), self.snapLength)
        let index = self.count
        self.slots[index].header = header
        if captured < Int(header.originalLength) { self.slots[index].header.flags.insert(.truncated) }
        self.slots[index].timestamp = timestamp
        self.slots[index].count = captured
        fill(&self.slots[index].bytes, captured)
        self.count += 1
        return self.count == self.slots.count / 2
    }

    /// Hands every filled slot to the writer: `spare` (as many empty slots) takes the queue's
    /// place. Returns how many of the swapped-out slots are filled, and the losses.
    mutating func swap(into spare: inout [CaptureSlot]) -> (count: Int, drops: [UInt32: UInt64]) {
        Swift.swap(&self.slots, &spare)
        let taken = (self.count, self.drops)
        self.count = 0
        self.drops = [:]
        return taken
    }
}
