import VMBusMemory
import VMBusWire

/// Waits for incoming connections on one service.
public final class HvSocketListener: Sendable {
    /// The service GUID connections name (for a vsock port, `HvSock.vsockService(port:)`).
    public let service: GUID
    struct State {
        var ready: [HvSocketStream] = []
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Result<HvSocketStream, HvSocketError>, Never>)] = []
        var nextID: UInt64 = 0
        var closed = false
    }
    let state = Locked(State())
    let onClose: @Sendable () -> Void

    init(service: GUID, onClose: @escaping @Sendable () -> Void) {
        self.service = service
        self.onClose = onClose
    }

    /// The vsock port, for a template-shaped service.
    public var port: UInt32? { self.service.vsockPort }

    /// The next connection; waits up to `timeout` (forever when `nil`) or until the task is
    /// cancelled.
    /// - Throws: ``HvSocketError/timedOut``, ``HvSocketError/cancelled``,
    ///   ``HvSocketError/closed`` once the listener is closed.
    public func accept(timeout: Duration? = nil) async throws(HvSocketError) -> HvSocketStream {
        let id = self.state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<HvSocketStream, HvSocketError>, Never>) in
                let now: Result<HvSocketStream, HvSocketError>? = self.state.withLock { state in
                    if !state.ready.isEmpty { return .success(state.ready.removeFirst()) }
                    if state.closed { return .failure(.closed) }
                    // Cancelled before the handler could find this waiter: answer now.
                    if Task.isCancelled { return .failure(.cancelled) }
                    state.waiters.append((id, continuation))
                    if let timeout {
                        Task {
                            try? await Task.sleep(for: timeout)
                            self.fail(id, .timedOut)
                        }
                    }
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            self.fail(id, .cancelled)
        }
        return try result.get()
    }

    func fail(_ id: UInt64, _ error: HvSocketError) {
        let waiter = self.state.withLock { state -> CheckedContinuation<Result<HvSocketStream, HvSocketError>, Never>? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index).continuation
        }
        waiter?.resume(returning: .failure(error))
    }

    /// A connection arrived.
    func deliver(_ stream: HvSocketStream) {
        let waiter = self.state.withLock { state -> CheckedContinuation<Result<HvSocketStream, HvSocketError>, Never>? in
            if state.waiters.isEmpty {
                state.ready.append(stream)
                return nil
            }
            return state.waiters.removeFirst().continuation
        }
        waiter?.resume(returning: .success(stream))
    }

    /// Stops listening: waiting accepts fail with ``HvSocketError/closed``.
    public func close() {
        let waiters = self.state.withLock { state in
            state.closed = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.continuation.resume(returning: .failure(.closed)) }
        self.onClose()
    }

    var isClosed: Bool { self.state.withLock { $0.closed } }
}

/// One pending connect, resolved once (by the connection, a refusal, or the timer).
final class PendingConnect: Sendable {
    let slot = Locked<CheckedContinuation<Result<HvSocketStream, HvSocketError>, Never>?>(nil)
    let early = Locked<Result<HvSocketStream, HvSocketError>?>(nil)

    func wait(timeout: Duration) async -> Result<HvSocketStream, HvSocketError> {
        let timer = Task {
            try? await Task.sleep(for: timeout)
            if !Task.isCancelled { self.resolve(.failure(.timedOut)) }
        }
        defer { timer.cancel() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now: Result<HvSocketStream, HvSocketError>? = self.early.withLock { early in
                    if let early { return early }
                    self.slot.withLock { $0 = continuation }
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            self.resolve(.failure(.cancelled))
        }
    }

    /// `true` if this resolved the connect (it was still pending) — whether its waiter was
    /// already waiting or will find the result when it starts to.
    @discardableResult
    func resolve(_ result: Result<HvSocketStream, HvSocketError>) -> Bool {
        enum Outcome {
            case alreadyResolved
            case stored
            case wake(CheckedContinuation<Result<HvSocketStream, HvSocketError>, Never>)
        }
        let outcome: Outcome = self.early.withLock { early in
            if early != nil { return .alreadyResolved }
            early = result
            let waiter: CheckedContinuation<Result<HvSocketStream, HvSocketError>, Never>? = self.slot.withLock { slot in
                defer { slot = nil }
                return slot
            }
            return waiter.map { .wake($0) } ?? .stored
        }
        switch outcome {
        case .alreadyResolved: return false
        case .stored: return true
        case .wake(let waiter):
            waiter.resume(returning: result)
            return true
        }
    }
}
