import CLinux
import Glibc

/// The calling thread's user-space instructions retired, from the CPU's performance counter:
/// benchmarks divide it by the packets a thread moved. Most virtual machines expose no
/// hardware counters, so ``start()`` returns `nil` there.
public final class InstructionCounter {
    private let fd: Int32
    private let origin: Int64

    private init(fd: Int32, origin: Int64) {
        self.fd = fd
        self.origin = origin
    }

    deinit { SystemCall.close(self.fd) }

    /// Starts counting on the calling thread, or `nil` where the machine cannot.
    public static func start() -> InstructionCounter? {
        let fd = clinux_instruction_counter_open()
        guard fd >= 0 else { return nil }
        let origin = clinux_instruction_counter_read(fd)
        guard origin >= 0 else {
            SystemCall.close(fd)
            return nil
        }
        return InstructionCounter(fd: fd, origin: Int64(origin))
    }

    /// Instructions the thread that called ``start()`` retired since then.
    public func read() -> UInt64? {
        let now = clinux_instruction_counter_read(self.fd)
        return now >= 0 ? UInt64(now - self.origin) : nil
    }
}
