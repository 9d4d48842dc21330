import Synchronization
import VMBusMemory
import VMBusWire

/// A capture that can be started and stopped while the bus runs (`vmbus ctl capture`): the
/// recorder a host installs once, forwarding to the ``CaptureSink`` of the capture in
/// progress, if any. Off, a record costs one relaxed atomic load; on, one lock more than the
/// sink's own.
public final class CaptureSwitch: CaptureRecorder, Sendable {
    let on = Atomic<Bool>(false)
    let current = Locked<CaptureSink?>(nil)

    public init() {}

    /// The snap length of the capture in progress (0 when none is).
    public var snapLength: Int { self.current.withLock { $0?.snapLength ?? 0 } }

    /// The file being written, if a capture is in progress.
    public var path: String? { self.current.withLock { $0?.path } }

    public func record(_ header: CaptureRecordHeader, _ fill: (inout [UInt8], Int) -> Void) {
        guard self.on.load(ordering: .relaxed), let sink = self.current.withLock({ $0 }) else { return }
        sink.record(header, fill)
    }

    /// Starts capturing into `path` (created or truncated).
    /// - Throws: ``CaptureError`` if a capture is in progress already, or the file cannot be
    ///   created.
    public func start(path: String, snapLength: Int = 512) throws(CaptureError) {
        try self.start(try CaptureSink(path: path, snapLength: snapLength))
    }

    /// Starts capturing into `sink`.
    /// - Throws: ``CaptureError`` if a capture is in progress already (the sink is closed).
    public func start(_ sink: CaptureSink) throws(CaptureError) {
        let busy: String? = self.current.withLock { current in
            if let current { return current.path }
            current = sink
            return nil
        }
        if let busy {
            _ = try? sink.close()
            throw CaptureError("a capture into \(busy) is in progress; stop it first")
        }
        self.on.store(true, ordering: .releasing)
    }

    /// Stops the capture in progress and completes its file.
    /// - Returns: the file and what was written; `nil` if no capture was in progress.
    /// - Throws: ``CaptureError`` if a write failed.
    @discardableResult
    public func stop() throws(CaptureError) -> (path: String, summary: CaptureSummary)? {
        self.on.store(false, ordering: .releasing)
        let sink = self.current.withLock { current in
            defer { current = nil }
            return current
        }
        guard let sink else { return nil }
        return (sink.path, try sink.close())
    }
}
