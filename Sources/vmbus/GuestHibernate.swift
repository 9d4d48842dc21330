import ArgumentParser
import Foundation
import VMBusGuest
import VMBusLocal
import VMBusMemory

/// `vmbus guest`'s hibernation options (docs/SERVICING.md).
struct HibernationOptions: ParsableArguments {
    @Option(name: .long, help: "Hibernate to FILE on SIGUSR1 (or after --hibernate-after): drivers close their channels, the bus unloads, state and memory go to FILE, the guest exits 0.")
    var hibernateTo: String?

    @Option(name: .long, help: "Hibernate this many seconds after start (needs --hibernate-to).")
    var hibernateAfter: Double?

    @Option(name: .long, help: "Resume from a hibernation FILE instead of starting afresh: its memory, and each device back to its driver.")
    var resume: String?

    func validate() throws {
        if self.hibernateAfter != nil && self.hibernateTo == nil { throw ValidationError("--hibernate-after needs --hibernate-to FILE") }
        if let seconds = self.hibernateAfter, !(seconds >= 0) { throw ValidationError("--hibernate-after must be 0 or more seconds") }
    }

    /// The memory a resumed guest starts with and what its bus resumes with.
    func resumed() throws -> (GuestMemory, GuestHibernation)? {
        guard let file = self.resume else { return nil }
        do {
            return try LocalGuest.readHibernation(file)
        } catch {
            throw CLIError("cannot resume from \(file): \(error)")
        }
    }

    /// Hibernates on SIGUSR1 or after --hibernate-after; the task's result says how it went
    /// (`nil` when hibernation is not configured), once `started` is set. The SIGUSR1 handler
    /// is in place when this returns, so a signal sent right after is not lost.
    func arm(_ guest: LocalGuest) -> (task: Task<String?, any Error>, started: Locked<Bool>) {
        let started = Locked(false)
        guard let file = self.hibernateTo else { return (Task { nil }, started) }
        // One lock for both: a signal between the task's look and its wait is not lost.
        struct Trigger {
            var fired = false
            var waiter: CheckedContinuation<Void, Never>?
        }
        let trigger = Locked(Trigger())
        let fire: @Sendable () -> Void = {
            let waiter: CheckedContinuation<Void, Never>? = trigger.withLock { state in
                state.fired = true
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
        if let signal = try? EventFD.hibernateSignal() {
            let thread = Thread {
                signal.wait()
                fire()
            }
            thread.name = "vmbus-hibernate-signal"
            thread.start()
        }
        let after = self.hibernateAfter
        let task = Task<String?, any Error> {
            let timer = after.map { seconds in
                Task {
                    try await Task.sleep(for: .seconds(seconds))
                    fire()
                }
            }
            defer { timer?.cancel() }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = trigger.withLock { state in
                    if state.fired { return true }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
            started.withLock { $0 = true }
            let start = ContinuousClock.now
            let saved = try await guest.hibernate(to: file)
            return "guest: hibernated to \(file): VMBus \(saved.version), \(saved.devices.count) device(s) to resume (\(milliseconds(elapsedSeconds(since: start))) ms)"
        }
        return (task, started)
    }
}

