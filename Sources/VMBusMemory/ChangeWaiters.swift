/// Tasks waiting for a condition on some state to hold; the owner calls ``wake()`` after
/// every change that may satisfy one (the NIC's returned buffers, a storage controller's disks
/// and queues).
public final class ChangeWaiters: Sendable {
    let waiting = Locked<[CheckedContinuation<Void, Never>]>([])

    /// Waits until `condition` holds or `timeout` passes. - Returns: whether it holds.
    public init() {}

    public func wait(timeout: Duration, until condition: @escaping @Sendable () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        let timer = Task { [weak self] in
            try? await Task.sleep(until: deadline)
            self?.wake()
        }
        defer { timer.cancel() }
        while !condition() {
            if ContinuousClock.now >= deadline { return false }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                self.waiting.withLock { $0.append(continuation) }
                // Changed between the check and the registration: look again at once.
                if condition() || ContinuousClock.now >= deadline { self.wake() }
            }
        }
        return true
    }

    public func wake() {
        let waiters = self.waiting.withLock { waiting in
            defer { waiting = [] }
            return waiting
        }
        for waiter in waiters { waiter.resume() }
    }
}
