import Foundation
import VMBusMemory

/// `service`: replace this host with a new process of the same program (docs/SERVICING.md).
/// The host starts its successor — the executable at the same path, so a binary replaced on
/// disk is the one that starts, with the same arguments and `--takeover ADMIN` — and answers
/// once the successor has taken over (or failed to, and this host carries on).
extension AdminServer {
    /// The outcome of one `service` request, set once by whichever comes first: the takeover
    /// ending, the successor exiting, or the timeout.
    final class ServiceOutcome: Sendable {
        struct State {
            var result: Result<String, AdminError>?
            var waiter: CheckedContinuation<Result<String, AdminError>, Never>?
        }
        let state = Locked(State())

        func wait() async -> Result<String, AdminError> {
            await withCheckedContinuation { continuation in
                let ready: Result<String, AdminError>? = self.state.withLock { state in
                    if let result = state.result { return result }
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }

        func finish(_ result: Result<String, AdminError>) {
            let waiter: CheckedContinuation<Result<String, AdminError>, Never>? = self.state.withLock { state in
                guard state.result == nil else { return nil }
                state.result = result
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: result)
        }
    }

    /// Serves `service`, and wraps `takeover` so the request that started the successor learns
    /// how it went. Register after ``registerTakeover(host:timeout:handedOver:)``.
    /// - Parameters:
    ///   - successor: the program and its arguments (`--takeover` and this socket's path are
    ///     appended).
    ///   - timeout: how long the successor has to take over before the request fails.
    public func registerService(successor: [String], timeout: Duration = .seconds(30)) {
        // The `service` request in progress, if any (one at a time).
        let current = Locked<ServiceOutcome?>(nil)
        if let takeover = self.state.withLock({ $0.handlers["takeover"] }) {
            self.register("takeover") { request, session in
                do {
                    try await takeover(request, session)
                    current.withLock { $0 }?.finish(.success("taken over by the new host (pid of the old one: \(getpid()))"))
                } catch {
                    current.withLock { $0 }?.finish(.failure(AdminError("the takeover failed, this host carries on: \(error)")))
                    throw error
                }
            }
        }
        self.register("service") { [path = self.path] _, session in
            guard let executable = successor.first else { throw AdminError("no successor program is configured") }
            let outcome = ServiceOutcome()
            guard current.withLock({ slot in
                if let running = slot, running.state.withLock({ $0.result == nil }) { return false }
                slot = outcome
                return true
            }) else { throw AdminError("a service request is already in progress") }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = Array(successor.dropFirst()) + ["--takeover", path]
            process.terminationHandler = { ended in
                outcome.finish(.failure(AdminError("the successor exited (status \(ended.terminationStatus)) before it took over")))
            }
            do { try process.run() } catch { throw AdminError("cannot start \(executable): \(error)") }
            session.output("started the successor, pid \(process.processIdentifier)")
            let timer = Task {
                try await Task.sleep(for: timeout)
                outcome.finish(.failure(AdminError("the successor did not take over within \(timeout)")))
            }
            defer { timer.cancel() }
            switch await outcome.wait() {
            case .success(let report): session.output(report)
            case .failure(let error): throw error
            }
        }
    }
}
