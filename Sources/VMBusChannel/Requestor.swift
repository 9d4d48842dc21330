/// Transaction ids for request/response traffic on one channel (Linux's `vmbus_requestor`):
/// a fixed table whose slot numbers are the ids, with a bitmap of the slots in use and a stack
/// of free ones, so allocating and completing are constant time and allocate nothing.
///
/// Ids start at 1: Hyper-V does not answer a request whose transaction id is 0 (03 §6). An id
/// coming back from the peer is only trusted after ``complete(_:)`` found it in use: a bogus or
/// stale id is rejected, never used to index memory unchecked.
public struct Requestor<Value> {
    /// Slot `i` holds the value of id `i + 1`.
    var slots: [Value?]
    /// One bit per slot, set while the id is outstanding.
    var inUse: [UInt64]
    /// Free slot numbers; the top is handed out next.
    var free: [Int32]

    /// A table of `capacity` ids, 1…capacity.
    /// - Precondition: `1 ≤ capacity ≤ Int32.max` (a local sizing choice).
    public init(capacity: Int) {
        precondition(capacity >= 1 && capacity <= Int(Int32.max), "requestor capacity out of range")
        self.slots = Array(repeating: nil, count: capacity)
        self.inUse = Array(repeating: 0, count: (capacity + 63) / 64)
        // Reversed so id 1 goes out first: easier to read in traces.
        self.free = (0..<Int32(capacity)).reversed()
    }

    /// How many ids the table holds.
    public var capacity: Int { self.slots.count }

    /// Ids currently outstanding.
    public var outstanding: Int { self.capacity - self.free.count }

    /// Takes a free id for `value`, or `nil` when every id is outstanding.
    public mutating func allocate(_ value: Value) -> UInt64? {
        guard let slot = self.free.popLast() else { return nil }
        let index = Int(slot)
        self.slots[index] = value
        self.inUse[index / 64] |= 1 << UInt64(index % 64)
        return UInt64(index) + 1
    }

    /// The slot of an outstanding id, or `nil` for one that is zero, out of range or free.
    func slot(_ id: UInt64) -> Int? {
        guard id >= 1, id <= UInt64(self.capacity) else { return nil }
        let index = Int(id - 1)
        guard self.inUse[index / 64] & (1 << UInt64(index % 64)) != 0 else { return nil }
        return index
    }

    /// Whether `id` is outstanding.
    public func contains(_ id: UInt64) -> Bool { self.slot(id) != nil }

    /// The value of an outstanding id, without releasing it.
    public func value(_ id: UInt64) -> Value? {
        guard let index = self.slot(id) else { return nil }
        return self.slots[index]
    }

    /// Replaces the value of an outstanding id; `false` if the id is not outstanding.
    @discardableResult
    public mutating func update(_ id: UInt64, _ value: Value) -> Bool {
        guard let index = self.slot(id) else { return false }
        self.slots[index] = value
        return true
    }

    /// Releases an id the peer answered and returns its value; `nil` (and nothing changes)
    /// for an id that is not outstanding — the peer's answer is then bogus.
    public mutating func complete(_ id: UInt64) -> Value? {
        guard let index = self.slot(id) else { return nil }
        let value = self.slots[index]
        self.slots[index] = nil
        self.inUse[index / 64] &= ~(1 << UInt64(index % 64))
        self.free.append(Int32(index))
        return value
    }

    /// Releases every outstanding id (the channel closed) and returns their values.
    public mutating func removeAll() -> [Value] {
        var values: [Value] = []
        for id in 1...UInt64(self.capacity) where self.contains(id) {
            if let value = self.complete(id) { values.append(value) }
        }
        return values
    }
}
