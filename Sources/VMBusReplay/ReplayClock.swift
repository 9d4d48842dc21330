import Foundation
import VMBusMemory

/// Keeps the replays of several connections in the capture's order: a step at record r starts
/// only once every other connection has finished its steps before r. The capture's order is
/// causal — a record is written when its side sends or reads — so waiting for it never waits
/// for something that comes later, and what one guest does before another's step (a NIC coming
/// up before the other guest's broadcast, a guest connecting first and getting the lower
/// number) happens in the replay before it too.
final class ReplayClock: Sendable {
    let condition = NSCondition()
    /// By connection: the record of its next step (`Int.max` once it has none).
    let next: Locked<[UInt32: Int]>

    init(first: [UInt32: Int]) {
        self.next = Locked(first)
    }

    /// Waits until every other connection is at or past `record`.
    func waitForTurn(_ connection: UInt32, record: Int) {
        self.condition.lock()
        while !self.next.withLock({ $0.allSatisfy { $0.key == connection || $0.value >= record } }) {
            self.condition.wait()
        }
        self.condition.unlock()
    }

    /// `connection`'s next step is at `record` (`Int.max`: it is done).
    func advance(_ connection: UInt32, to record: Int) {
        self.condition.lock()
        self.next.withLock { $0[connection] = record }
        self.condition.broadcast()
        self.condition.unlock()
    }
}
