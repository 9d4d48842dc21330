import CLinux
import Foundation

/// The calling thread's name as the kernel keeps it (`/proc/self/task/N/comm`, what `top -H`,
/// `ps -L` and debuggers show; at most 15 bytes).
///
/// Foundation's `Thread.name` set before `start()` does not reliably reach the kernel on
/// Linux (the new thread may run before its handle is recorded, and then keeps the name of
/// the thread that started it), so threads name themselves with ``set(_:)`` as they start.
public enum ThreadName {
    /// Names the calling thread (cut to 15 bytes).
    public static func set(_ name: String) {
        unsafe clinux_set_thread_name(name)
    }

    /// Starts a thread named `name` running `body`: for blocking work (socket and file I/O,
    /// `accept`, a device node's `read`) that must stay off the cooperative pool.
    public static func start(_ name: String, _ body: @escaping @Sendable () -> Void) {
        Thread {
            Self.set(name)
            body()
        }.start()
    }

    /// The calling thread's name.
    public static var current: String {
        var buffer = [CChar](repeating: 0, count: 16)
        let status = unsafe buffer.withUnsafeMutableBufferPointer { unsafe clinux_thread_name($0.baseAddress!, 16) }
        guard status == 0 else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
