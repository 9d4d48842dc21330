import Glibc

/// A thread's wait for "something may have changed": a backend's own thread sleeps on it
/// while the NIC has no room for its frames, and the NIC's interrupt handler notifies it
/// when the peer gave room back.
///
/// A notification is remembered until the next wait returns (it is a flag, not a count), so
/// one that comes between a thread's last look and its wait is not lost.
@safe public final class WakeSignal: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    // Only touched with `mutex` held.
    private var notified = false
    private var waiting = 0

    public init() {
        unsafe self.mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        unsafe self.mutex.initialize(to: pthread_mutex_t())
        _ = unsafe pthread_mutex_init(self.mutex, nil)
        unsafe self.condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        unsafe self.condition.initialize(to: pthread_cond_t())
        // CLOCK_MONOTONIC deadlines: a wall-clock step must not stretch a wait.
        var attributes = pthread_condattr_t()
        _ = unsafe pthread_condattr_init(&attributes)
        _ = unsafe pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        _ = unsafe pthread_cond_init(self.condition, &attributes)
        _ = unsafe pthread_condattr_destroy(&attributes)
    }

    deinit {
        _ = unsafe pthread_cond_destroy(self.condition)
        _ = unsafe pthread_mutex_destroy(self.mutex)
        unsafe self.condition.deallocate()
        unsafe self.mutex.deallocate()
    }

    /// Wakes the waiting thread, or the next wait. (One waiter at a time: a backend's thread.)
    public func notify() {
        _ = unsafe pthread_mutex_lock(self.mutex)
        self.notified = true
        let wake = self.waiting > 0
        _ = unsafe pthread_mutex_unlock(self.mutex)
        if wake { _ = unsafe pthread_cond_broadcast(self.condition) }
    }

    /// Blocks until notified (at once if a notification is pending) or `timeout` passes.
    /// - Returns: whether it was notified.
    @discardableResult
    public func wait(timeout: Duration) -> Bool {
        var deadline = timespec()
        _ = unsafe clock_gettime(CLOCK_MONOTONIC, &deadline)
        let (seconds, attoseconds) = timeout.components
        let nanoseconds = Int(deadline.tv_nsec) + Int(attoseconds / 1_000_000_000)
        deadline.tv_sec += Int(seconds) + nanoseconds / 1_000_000_000
        deadline.tv_nsec = nanoseconds % 1_000_000_000
        _ = unsafe pthread_mutex_lock(self.mutex)
        defer { _ = unsafe pthread_mutex_unlock(self.mutex) }
        self.waiting += 1
        defer { self.waiting -= 1 }
        while !self.notified {
            if unsafe pthread_cond_timedwait(self.condition, self.mutex, &deadline) == ETIMEDOUT { break }
        }
        defer { self.notified = false }
        return self.notified
    }
}
