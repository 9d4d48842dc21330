import VMBusMemory
import VMBusWire

/// The guest's receive buffer as the host uses it (11 §7.2): equal sub-allocations, the first
/// ``reserved`` for control replies and indications, the rest for frames. A slot is lent to the
/// guest with a transfer-page packet whose transaction id is its index, and comes back with the
/// guest's completion of that id — once: a completion for a slot not lent is the guest's
/// mistake.
struct ReceiveSlots {
    /// Sub-allocations kept for control replies (OpenVMM keeps 16).
    static let reserved = 16
    /// Bytes before the frame in a data sub-allocation: the RNDIS PACKET header.
    static let headerRoom = RNDISPacketHeader.size

    let memory: MappedMemory
    /// The GPADL the guest gave the buffer as (what a takeover's new process maps again).
    let gpadl: UInt32
    let size: Int
    let count: Int
    var freeData: [Int]
    var freeControl: [Int]
    var lent: [Bool]
    /// The next slot of a chain lent with one transfer-page packet (a frame over several
    /// sub-allocations, 11 §7.2), -1 at its end; only a chain's first slot is its id.
    var next: [Int]
    var isHead: [Bool]

    /// - Returns: `nil` unless the buffer holds the reserved slots and at least one more.
    init?(memory: MappedMemory, gpadl: UInt32, subAllocationSize: Int) {
        let count = memory.size / subAllocationSize
        guard subAllocationSize >= 68, count > Self.reserved else { return nil }
        self.memory = memory
        self.gpadl = gpadl
        self.size = subAllocationSize
        self.count = count
        // Popped from the end: lowest indices first, as a reader of a dump expects.
        self.freeData = Array((Self.reserved..<count).reversed())
        self.freeControl = Array((0..<Self.reserved).reversed())
        self.lent = Array(repeating: false, count: count)
        self.next = Array(repeating: -1, count: count)
        self.isHead = Array(repeating: false, count: count)
    }

    mutating func takeData() -> Int? {
        guard let slot = self.freeData.popLast() else { return nil }
        self.lent[slot] = true
        self.isHead[slot] = true
        return slot
    }

    mutating func takeControl() -> Int? {
        guard let slot = self.freeControl.popLast() else { return nil }
        self.lent[slot] = true
        self.isHead[slot] = true
        return slot
    }

    /// Joins slots taken one by one into a chain that `slots[0]` stands for.
    mutating func chain(_ slots: [Int]) {
        for (slot, following) in zip(slots, slots.dropFirst()) {
            self.next[slot] = following
            self.isHead[following] = false
        }
    }

    /// The guest completed the chain `slot` heads. - Returns: `false` if no chain was lent
    /// under that id (a bogus id, or a slot inside a chain).
    mutating func release(_ slot: UInt64) -> Bool {
        guard slot < UInt64(self.count), self.lent[Int(slot)], self.isHead[Int(slot)] else { return false }
        var index = Int(slot)
        while index >= 0 {
            self.lent[index] = false
            self.isHead[index] = false
            if index < Self.reserved { self.freeControl.append(index) } else { self.freeData.append(index) }
            let following = self.next[index]
            self.next[index] = -1
            index = following
        }
        return true
    }

    var available: Int { self.freeData.count }
}
