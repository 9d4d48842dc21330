import VMBusMemory
import VMBusWire

/// The data buffers of a controller's requests: `count` slots of guest memory, each big
/// enough for the largest transfer, lent one per request in flight. A request waits while
/// every slot is lent — that is the queue depth.
///
/// Data is copied between the caller's array and a slot: the host reads and writes the slot's
/// pages in place (GPA-direct, 10 §4.3).
final class StorvscSlots: Sendable {
    struct Slot: Sendable {
        let index: Int
        /// Offset in guest memory.
        let offset: Int
        let firstPFN: UInt64
    }

    struct State {
        var free: [Int]
        var waiters: [CheckedContinuation<Int?, Never>] = []
        var closed = false
    }

    let memory: MappedMemory
    let buffer: GuestBuffer
    let slotBytes: Int
    let count: Int
    let state: Locked<State>

    init(memory: GuestMemory, count: Int, slotBytes: Int) throws(MemoryError) {
        let pagesPerSlot = (slotBytes + MappedMemory.pageSize - 1) / MappedMemory.pageSize
        self.buffer = try memory.allocate(pages: pagesPerSlot * count)
        self.memory = memory.memory
        self.slotBytes = pagesPerSlot * MappedMemory.pageSize
        self.count = count
        self.state = Locked(State(free: Array((0..<count).reversed())))
    }

    func slot(_ index: Int) -> Slot {
        let offset = self.buffer.offset + index * self.slotBytes
        return Slot(index: index, offset: offset, firstPFN: UInt64(offset / MappedMemory.pageSize))
    }

    /// The pages of `bytes` bytes at the start of a slot, as the one GPA range of a request.
    func range(_ slot: Slot, bytes: Int) throws(WireError) -> GpaRange {
        try GpaRange(gpa: slot.firstPFN * UInt64(MappedMemory.pageSize), length: UInt32(clamping: bytes))
    }

    /// Takes a slot, waiting while all are lent; `nil` once the controller shut down.
    func acquire() async -> Slot? {
        let index: Int? = await withCheckedContinuation { (continuation: CheckedContinuation<Int?, Never>) in
            let now: Int?? = self.state.withLock { state in
                if state.closed { return .some(nil) }
                if let index = state.free.popLast() { return .some(index) }
                state.waiters.append(continuation)
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
        return index.map { self.slot($0) }
    }

    /// Gives a slot back, to the longest waiter first.
    func release(_ slot: Slot) {
        let waiter: CheckedContinuation<Int?, Never>? = self.state.withLock { state in
            if state.waiters.isEmpty {
                state.free.append(slot.index)
                return nil
            }
            return state.waiters.removeFirst()
        }
        waiter?.resume(returning: slot.index)
    }

    /// Refuses further requests; the waiting ones get `nil`.
    func close() {
        let waiters = self.state.withLock { state in
            state.closed = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: nil) }
    }
}
