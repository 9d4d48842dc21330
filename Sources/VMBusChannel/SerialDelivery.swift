import VMBusMemory

/// Runs submitted items one at a time, in submission order, on whichever thread is already
/// running them — or on the submitting thread if none is (a trampoline).
///
/// Buses use it for what they send: items are queued while the bus lock is held, which fixes
/// their order, and run after it is released, so a substrate that answers synchronously
/// (the in-process bus) re-enters the bus without deadlock and without recursion.
public final class SerialDelivery<Item: Sendable>: Sendable {
    struct Queue: ~Copyable {
        var items: [Item] = []
        var head = 0
        var running = false
    }

    let queue = Locked(Queue())
    let handler: @Sendable (Item) -> Void

    /// - Parameter handler: runs each item, never two at once.
    public init(_ handler: @escaping @Sendable (Item) -> Void) {
        self.handler = handler
    }

    /// Queues an item without running anything (safe under a caller's lock).
    public func enqueue(_ item: Item) {
        self.queue.withLock { $0.items.append(item) }
    }

    /// Queues an item and runs the queue unless another caller is running it.
    public func submit(_ item: Item) {
        self.enqueue(item)
        self.drain()
    }

    /// Items queued and not yet run.
    public var pending: Int { self.queue.withLock { $0.items.count - $0.head } }

    /// Runs queued items until none is left, unless another caller is already doing so (that
    /// caller will run them).
    public func drain() {
        let claimed = self.queue.withLock { queue in
            if queue.running { return false }
            queue.running = true
            return true
        }
        guard claimed else { return }
        while let item = self.next(release: true) { self.handler(item) }
    }

    /// Runs exactly one queued item, if any and if nobody is running the queue.
    /// - Returns: whether an item ran.
    @discardableResult
    public func step() -> Bool {
        let item: Item? = self.queue.withLock { queue in
            guard !queue.running, queue.head < queue.items.count else { return nil }
            queue.running = true
            return Self.pop(&queue)
        }
        guard let item else { return false }
        self.handler(item)
        self.queue.withLock { $0.running = false }
        return true
    }

    /// The next item, or `nil` (and the queue released) when empty.
    func next(release: Bool) -> Item? {
        self.queue.withLock { queue in
            guard queue.head < queue.items.count else {
                queue.running = false
                return nil
            }
            return Self.pop(&queue)
        }
    }

    static func pop(_ queue: inout Queue) -> Item {
        let item = queue.items[queue.head]
        queue.head += 1
        // Reset once consumed so the array does not grow forever; keeps its capacity.
        if queue.head == queue.items.count {
            queue.items.removeAll(keepingCapacity: true)
            queue.head = 0
        }
        return item
    }
}
