import VMBusMemory

/// `body`'s value, or `nil` if it takes longer than `seconds` — a safety net so that a broken
/// peer fails a test instead of hanging it; never a way to synchronise. (`body` is left
/// running on a timeout: it may be stuck in a continuation no cancellation reaches.)
func within<T: Sendable>(seconds: Double = 10, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
    let waiter = Locked<CheckedContinuation<Result<T?, any Error>, Never>?>(nil)
    @Sendable func finish(_ result: Result<T?, any Error>) {
        let continuation = waiter.withLock { waiter in
            defer { waiter = nil }
            return waiter
        }
        continuation?.resume(returning: result)
    }
    let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T?, any Error>, Never>) in
        waiter.withLock { $0 = continuation }
        Task {
            do { finish(.success(try await body())) } catch { finish(.failure(error)) }
        }
        Task {
            try? await Task.sleep(for: .seconds(seconds))
            finish(.success(nil))
        }
    }
    return try result.get()
}

struct TimedOut: Error {}
