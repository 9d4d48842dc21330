import Dispatch
import Foundation
import Logging
import VMBusMemory

/// How `vmbus host`, `vmbus guest` and `vmbus fcopy-daemon` stop (docs/OPERATIONS.md has the
/// order each one follows). One handler for SIGINT and SIGTERM, in place from `init` on — make
/// it before printing the ready line, so a signal sent right after that line is not lost. A
/// signal, or the command's own ``request(_:)`` (a takeover), runs the first step given to
/// `init` once, on a thread of its own: it ends whatever the command waits for. The command
/// then runs its other stop steps in order with ``run(_:)``, each step logged (level info, on
/// standard error), and exits 0.
///
/// Not swift-service-lifecycle: docs/ARCHITECTURE.md says why.
final class Shutdown: Sendable {
    /// Why the command stops.
    enum Cause: String, Sendable {
        /// SIGINT or SIGTERM (the handler cannot tell which: both mean the same here).
        case signal = "SIGINT or SIGTERM"
        /// The host handed its guests to a successor (docs/SERVICING.md).
        case handedOver = "handed over"
    }

    /// A named stop step.
    struct Step {
        let name: String
        let action: () -> Void

        init(_ name: String, _ action: @escaping () -> Void) {
            self.name = name
            self.action = action
        }
    }

    /// A named stop step that waits for something.
    struct AsyncStep {
        let name: String
        let action: () async -> Void

        init(_ name: String, _ action: @escaping () async -> Void) {
            self.name = name
            self.action = action
        }
    }

    private let signals: EventFD?
    private let requested = Locked<Cause?>(nil)
    private let done = DispatchSemaphore(value: 0)
    private let logger: Logger

    /// Installs the handler and starts the thread that waits for it.
    /// - Parameters:
    ///   - first: the first step, run once when the first signal or request arrives (it ends
    ///     the command's wait), with its name for the log; `nil`: ``wait()`` ends it.
    init(_ logger: Logger, first: (name: String, action: @Sendable () -> Void)? = nil) {
        self.logger = logger
        self.signals = try? EventFD.terminationSignals()
        guard let signals = self.signals else {
            // No handler could be installed: the signals' default action ends the process.
            logger.warning("cannot handle SIGINT and SIGTERM: they end the process at once")
            return
        }
        let thread = Thread { [requested, done] in
            signals.wait()
            let cause = requested.withLock { cause in
                if cause == nil { cause = .signal }
                return cause ?? .signal
            }
            logger.info("shutdown: \(cause.rawValue)")
            if let first {
                logger.info("shutdown: \(first.name)")
                first.action()
            }
            done.signal()
            // Later signals change nothing: the stop is under way.
            while true { signals.wait() }
        }
        thread.name = "vmbus-shutdown"
        thread.start()
    }

    /// Starts the stop as a signal would, for `cause` (the first cause given is kept).
    func request(_ cause: Cause) {
        self.requested.withLock { if $0 == nil { $0 = cause } }
        self.signals?.signal()
    }

    /// Why the stop was asked for; `nil` while nothing asked (the command ends for a reason of
    /// its own: its peer went away).
    var cause: Cause? { self.requested.withLock { $0 } }

    /// Blocks until a signal or ``request(_:)`` arrived and the first step ran; returns the cause.
    func wait() -> Cause {
        guard self.signals != nil else {
            while true { sleep(3600) }
        }
        self.done.wait()
        self.done.signal()
        return self.cause ?? .signal
    }

    /// Runs `steps` in order, logging each before it runs and the end after the last.
    func run(_ steps: [Step]) {
        for step in steps {
            self.logger.info("shutdown: \(step.name)")
            step.action()
        }
        self.logger.info("shutdown: done")
    }

    /// ``run(_:)`` for steps that wait.
    func run(_ steps: [AsyncStep]) async {
        for step in steps {
            self.logger.info("shutdown: \(step.name)")
            await step.action()
        }
        self.logger.info("shutdown: done")
    }
}
