import VMBusMemory

/// A lock that tasks wait for without blocking a thread, held across suspension points:
/// waiters queue in arrival order and ownership passes straight to the next one on unlock.
///
/// Not reentrant; every ``lock()`` must be paired with one ``unlock()``.
final class AsyncLock: Sendable {
    private struct State {
        var held = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Locked(State())

    /// Waits until the lock is free, then holds it.
    func lock() async {
        if self.state.withLock({ state in
            guard !state.held else { return false }
            state.held = true
            return true
        }) {
            return
        }
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let acquired = self.state.withLock { state in
                if !state.held {
                    state.held = true
                    return true
                }
                state.waiters.append(waiter)
                return false
            }
            if acquired { waiter.resume() }
        }
    }

    /// Releases the lock, handing it to the first waiter if there is one.
    func unlock() {
        let next = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            precondition(state.held, "unlock of an AsyncLock that is not held")  // local misuse only
            guard !state.waiters.isEmpty else {
                state.held = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }

    /// Runs `body` holding the lock.
    func withLock<T: Sendable, E: Error>(_ body: () async throws(E) -> T) async throws(E) -> T {
        await self.lock()
        defer { self.unlock() }
        return try await body()
    }
}
