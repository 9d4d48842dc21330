import Glibc
import Testing
import VMBusMemory

@Suite struct ChildProcessTests {
    @Test func exitStatusesAndSignalsAreReported() {
        #expect(ChildProcess.run(executable: "/bin/true", arguments: [], timeout: .seconds(30)) == .exited(0))
        #expect(ChildProcess.run(executable: "/bin/sh", arguments: ["-c", "exit 3"], timeout: .seconds(30)) == .exited(3))
        #expect(ChildProcess.run(executable: "/bin/sh", arguments: ["-c", "kill -USR1 $$"], timeout: .seconds(30)) == .signalled(SIGUSR1))
        #expect(ChildProcess.run(executable: "/nonexistent/hook", arguments: [], timeout: .seconds(30)) == .failedToStart(ENOENT))
    }

    /// A command past its deadline is stopped promptly, by SIGTERM, even when the caller
    /// ignores SIGTERM (the child starts with default signal handling).
    @Test func aLateCommandIsStoppedEvenIfTheCallerIgnoresSIGTERM() {
        let previous = signal(SIGUSR2, SIG_IGN)
        defer { signal(SIGUSR2, previous) }
        // SIGUSR2 stands in for SIGTERM here (ignoring SIGTERM would change the test process):
        // the child, with default handling, dies of it; one that inherited SIG_IGN would not.
        #expect(ChildProcess.run(executable: "/bin/sh", arguments: ["-c", "kill -USR2 $$; exit 0"], timeout: .seconds(30)) == .signalled(SIGUSR2))
        let clock = ContinuousClock()
        let start = clock.now
        #expect(ChildProcess.run(executable: "/bin/sleep", arguments: ["30"], timeout: .milliseconds(100)) == .timedOut)
        // SIGTERM ends sleep at once: well before the 2 s grace that would bring SIGKILL.
        #expect(clock.now - start < .seconds(2))
    }

    /// Standard input is /dev/null: a command reading it sees end of file instead of waiting.
    @Test func standardInputIsEmpty() {
        #expect(ChildProcess.run(executable: "/bin/sh", arguments: ["-c", "read line; test $? -ne 0"], timeout: .seconds(30)) == .exited(0))
    }
}
