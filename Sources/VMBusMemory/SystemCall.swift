import SystemPackage

/// The bridge from swift-system to this layer's errors. swift-system's descriptor calls throw
/// untyped errors that are always an `Errno`; every wrapper here throws the typed
/// ``MemoryError``, whose `system` case keeps the raw errno so the rest of the package matches
/// on it unchanged.
enum SystemCall {
    /// Runs `body`, a swift-system call, and reports its failure as `call` with its errno.
    ///
    /// Only the failure path pays for the untyped throw (the error is boxed); calls expected to
    /// fail in normal operation (`EAGAIN` on a polled descriptor) therefore stay on the raw C
    /// calls (docs/ARCHITECTURE.md).
    @inline(__always)
    static func run<Value>(_ call: @autoclosure () -> String, _ body: () throws -> Value) throws(MemoryError) -> Value {
        do {
            return try body()
        } catch {
            throw MemoryError.system(call: call(), errno: Self.code(of: error))
        }
    }

    /// The errno of an error swift-system threw. Its descriptor calls throw nothing but
    /// `Errno`; anything else would be a new kind of failure, reported as EIO rather than lost.
    static func code(of error: any Error) -> Int32 {
        (error as? Errno)?.rawValue ?? Errno.ioError.rawValue
    }

    /// Closes a descriptor this layer owns. A failed close (EINTR, EIO) has already released
    /// the descriptor on Linux, so there is nothing to retry and nothing to report.
    static func close(_ fd: Int32) {
        _ = try? FileDescriptor(rawValue: fd).close()
    }
}

extension MemoryError {
    /// The text of an errno (`strerror`), through swift-system's `Errno`.
    static func text(_ code: Int32) -> String {
        Errno(rawValue: code).description
    }
}
