import Foundation
import VMBusChannel
import VMBusMemory
import VMBusWire

/// What the live peer sent, by stream, filled by a receiving thread and taken by the replay
/// in order. One waiter at a time (the replay's own thread).
final class ReplayInbox: Sendable {
    struct Queues {
        var items: [ReplayStream: [ReplayItem]] = [:]
        /// Why the connection ended, once it has.
        var ended: String?
    }

    let queues = Locked(Queues())
    let signal = WakeSignal()

    func push(_ item: ReplayItem) {
        self.queues.withLock { $0.items[item.stream, default: []].append(item) }
        self.signal.notify()
    }

    func end(_ why: String) {
        self.queues.withLock { if $0.ended == nil { $0.ended = why } }
        self.signal.notify()
    }

    var ended: String? { self.queues.withLock { $0.ended } }

    /// The first item of `stream` that `matches` accepts, waiting for more until `deadline`.
    /// Items the peer sent independently of each other may come in either order (a NIC's
    /// completion and its control answer, a timer's message), so the first acceptable one is
    /// taken, not only the first. - Returns: the item taken; or, when none was acceptable in
    /// time, `nil` and the first waiting item that `answers` says is the peer's different
    /// answer to the same thing (taken too), if any — otherwise nothing is taken.
    func take(
        _ stream: ReplayStream, until deadline: ContinuousClock.Instant, where matches: (ReplayItem) -> Bool,
        answers: (ReplayItem) -> Bool
    ) -> (taken: ReplayItem?, instead: ReplayItem?) {
        var looked = 0
        var deadline = deadline
        while true {
            let pending: [ReplayItem] = self.queues.withLock { $0.items[stream] ?? [] }
            // Only the items not looked at yet: `matches` may learn from an item it accepts.
            for index in looked..<pending.count where matches(pending[index]) {
                self.queues.withLock { queues in
                    guard var items = queues.items[stream], index < items.count else { return }
                    items.remove(at: index)
                    queues.items[stream] = items
                }
                return (pending[index], nil)
            }
            if looked == 0, !pending.isEmpty {
                // Something else came instead: reordering is a matter of microseconds, so the
                // expected item gets a short grace, not the whole timeout.
                deadline = min(deadline, .now + Self.grace)
            }
            looked = pending.count
            let ended = self.ended != nil
            let now = ContinuousClock.now
            if ended || now >= deadline {
                let instead = self.queues.withLock { queues -> ReplayItem? in
                    guard var items = queues.items[stream], let index = items.firstIndex(where: answers) else { return nil }
                    let answer = items.remove(at: index)
                    queues.items[stream] = items
                    return answer
                }
                return (nil, instead)
            }
            _ = self.signal.wait(timeout: now.duration(to: deadline))
        }
    }

    /// How long an expected item may still come once something else came in its stead.
    static let grace = Duration.milliseconds(500)

    /// Whatever is left, by stream.
    func leftovers() -> [ReplayStream: [ReplayItem]] {
        self.queues.withLock { $0.items.filter { !$0.value.isEmpty } }
    }

    /// Waits until something new arrives or `timeout` passes.
    func waitForNews(_ timeout: Duration) { _ = self.signal.wait(timeout: timeout) }
}
