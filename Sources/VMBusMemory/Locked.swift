import Glibc

/// A value guarded by a lock: the project's one mutual-exclusion primitive.
///
/// Why not `Synchronization.Mutex`: on Linux it is a priority-inheritance futex whose
/// contended hand-off happens inside the kernel (`FUTEX_UNLOCK_PI` gives the lock straight to
/// the waiter), in library code ThreadSanitizer does not instrument. Under contention the
/// sanitizer therefore sees two critical sections with no ordering between them and reports
/// races that cannot happen, which would make the TSan run in CI fail at random. A glibc
/// `pthread_mutex_t` costs the same uncontended (one atomic exchange each way) and its
/// lock and unlock are intercepted by the sanitizer, so real races stay visible and false
/// ones go away.
///
/// The API mirrors `Mutex.withLock`. The lock is not recursive: calling `withLock` on the
/// same value from inside its own body deadlocks (as with `Mutex`).
@safe public final class Locked<Value: ~Copyable>: @unchecked Sendable {
    // Visible to inlined callers: `withLock` is inlined into other modules, so a call costs a
    // lock and an unlock, not a generic call that looks up the value's metadata every time.
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    // Only touched with `mutex` held.
    @usableFromInline var value: Value

    public init(_ value: consuming Value) {
        unsafe self.mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        unsafe self.mutex.initialize(to: pthread_mutex_t())
        // Default attributes (a normal, non-recursive mutex) cannot fail to initialise.
        _ = unsafe pthread_mutex_init(self.mutex, nil)
        self.value = value
    }

    deinit {
        _ = unsafe pthread_mutex_destroy(self.mutex)
        unsafe self.mutex.deallocate()
    }

    /// A copy of the value, read under the lock.
    ///
    /// Use this (and ``store(_:)``), not `withLock { $0 }`, for a value that is a closure: the
    /// value is kept in its generic form, and an `inout` access from code that knows the
    /// concrete function type converts it on the way in and again on the way out, wrapping the
    /// stored closure in two more thunks every time — a handler read once per packet would
    /// grow without bound and slow every call.
    @inlinable
    public func load() -> Value where Value: Copyable {
        _ = unsafe pthread_mutex_lock(self.mutex)
        defer { _ = unsafe pthread_mutex_unlock(self.mutex) }
        return self.value
    }

    /// Replaces the value under the lock (see ``load()``).
    @inlinable
    public func store(_ newValue: consuming Value) {
        _ = unsafe pthread_mutex_lock(self.mutex)
        defer { _ = unsafe pthread_mutex_unlock(self.mutex) }
        self.value = newValue
    }

    /// Runs `body` with exclusive access to the value and returns what it returns.
    @inlinable
    public func withLock<Result: ~Copyable, E: Error>(_ body: (inout Value) throws(E) -> Result) throws(E) -> Result {
        _ = unsafe pthread_mutex_lock(self.mutex)
        defer { _ = unsafe pthread_mutex_unlock(self.mutex) }
        return try body(&self.value)
    }
}
