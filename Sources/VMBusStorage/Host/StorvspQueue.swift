import Dispatch
import VMBusChannel
import VMBusMemory

/// One storage channel as the storvsp serves it: the completions it owes the guest (from disk
/// workers, or that did not fit the ring), and how many commands are still running.
final class StorvspQueue: Sendable {
    typealias Owed = [(id: UInt64, bytes: [UInt8])]
    struct Pending {
        var owed: Owed = []
        var inFlight = 0
        var counts = StorageQueueStatistics()
    }

    let channel: Channel
    let index: UInt16
    /// Commands in flight at most.
    let depth: Int
    let runner = SerialRunner()
    let pending = Locked(Pending())

    init(channel: Channel, index: UInt16, depth: Int) {
        self.channel = channel
        self.index = index
        self.depth = max(1, depth)
    }

    /// What is owed now, the commands running, and the counters gathered since the last take.
    func take() -> (owed: Owed, inFlight: Int, counts: StorageQueueStatistics) {
        self.pending.withLock { pending in
            defer {
                pending.owed.removeAll(keepingCapacity: true)
                pending.counts = StorageQueueStatistics()
            }
            return (pending.owed, pending.inFlight, pending.counts)
        }
    }

    /// A worker finished a command: its completion joins what is owed.
    func finished(id: UInt64, bytes: [UInt8], counts: (inout StorageQueueStatistics) -> Void) {
        self.pending.withLock { pending in
            pending.owed.append((id, bytes))
            pending.inFlight -= 1
            counts(&pending.counts)
        }
    }

    /// Completions that did not fit, back at the front of what is owed.
    func putBack(_ owed: Owed) {
        guard !owed.isEmpty else { return }
        self.pending.withLock { $0.owed.insert(contentsOf: owed, at: 0) }
    }

    func started() { self.pending.withLock { $0.inFlight += 1 } }
}

/// Threads for disk I/O that may block (a file's `preadv`/`pwritev`/`fdatasync`): the
/// interrupt handler hands a command over and goes on reading the ring, so many commands run
/// at once and complete in any order.
final class DiskWorkers: Sendable {
    let queue = DispatchQueue(label: "storvsp-io", attributes: .concurrent)

    func run(_ body: @escaping @Sendable () -> Void) { self.queue.async(execute: body) }
}
