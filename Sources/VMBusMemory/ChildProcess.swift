import CLinux
import Glibc

/// Runs a command to its end with a time limit, for the hooks integration services run (a VSS
/// freeze script, the shutdown command).
///
/// Not Foundation's `Process`: its termination is reported through a run-loop thread and a
/// dispatch source, which on a loaded machine delayed a hook's kill by tens of seconds; and a
/// child must not inherit the caller's signal state (the guest daemon ignores SIGTERM to handle
/// it itself, and a hook that ignores SIGTERM could not be stopped). Here the child starts with
/// every signal at its default, reads /dev/null, and is waited for on a pidfd: its end, or the
/// deadline, is seen at once.
public enum ChildProcess {
    /// How a run ended.
    public enum Outcome: Hashable, Sendable {
        /// Exited by itself with this status.
        case exited(Int32)
        /// Killed by this signal (not by us).
        case signalled(Int32)
        /// Still running at the deadline: sent SIGTERM, then SIGKILL after the grace period.
        case timedOut
        /// Could not be started (errno).
        case failedToStart(Int32)

        /// Exited with status 0.
        public var succeeded: Bool { self == .exited(0) }
    }

    /// Runs `executable` with `arguments` and blocks the calling thread until it ends (or is
    /// stopped at `timeout`). Run it on a thread of its own, never on the concurrency pool.
    public static func run(
        executable: String, arguments: [String], timeout: Duration, grace: Duration = .seconds(2)
    ) -> Outcome {
        let strings = [executable] + arguments
        // strdup'd copies: the C strings must outlive the spawn.
        var argv: [UnsafeMutablePointer<CChar>?] = unsafe strings.map { unsafe strdup($0) } + [nil]
        defer { unsafe argv.forEach { unsafe free($0) } }
        var status: Int32 = 0
        let result = unsafe clinux_run_command(
            executable, &argv, Self.milliseconds(timeout), Self.milliseconds(grace), &status)
        switch result {
        case -1: return .failedToStart(errno)
        case 1: return .timedOut
        default:
            if status == -1 { return .failedToStart(ECHILD) }
            // The wait status: low 7 bits the signal (0 for a normal exit), then the exit code.
            let signal = status & 0x7F
            return signal == 0 ? .exited((status >> 8) & 0xFF) : .signalled(signal)
        }
    }

    /// A duration in whole milliseconds, clamped to what poll(2) takes.
    static func milliseconds(_ duration: Duration) -> Int32 {
        let (seconds, attoseconds) = duration.components
        let total = seconds.multipliedReportingOverflow(by: 1000)
        guard !total.overflow, seconds >= 0 else { return seconds < 0 ? 0 : Int32.max }
        return Int32(clamping: total.partialValue + attoseconds / 1_000_000_000_000_000)
    }
}
