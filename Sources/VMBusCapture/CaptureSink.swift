import Foundation
import Synchronization
import VMBusMemory
import VMBusWire

/// What a finished capture wrote.
public struct CaptureSummary: Hashable, Sendable {
    /// Records written to the file.
    public var records: UInt64 = 0
    /// Records lost because the queue was full.
    public var dropped: UInt64 = 0
    /// Guest connections seen (pcapng interfaces).
    public var connections = 0

    public init(records: UInt64 = 0, dropped: UInt64 = 0, connections: Int = 0) {
        self.records = records
        self.dropped = dropped
        self.connections = connections
    }
}

/// A capture in progress: a ``CaptureRecorder`` that writes a pcapng file (docs/CAPTURE.md).
///
/// Producers — the channel, bus and substrate hooks — copy at most ``snapLength`` bytes into
/// one of a fixed number of preallocated slots under a short lock and go on; nothing is
/// allocated per record and nothing waits for the file. When every slot is taken the record is
/// dropped and counted; the counts go into the file as drops records and, at ``close()``, as
/// each interface's `isb_ifdrop`. One writer thread drains the slots every few milliseconds
/// (at once when half of them are taken) and writes the blocks.
///
/// Call ``close()`` when done: it completes the file, and until then the writer thread keeps
/// the sink alive.
public final class CaptureSink: CaptureRecorder, Sendable {
    struct WriterState: ~Copyable {
        var file: FileHandle?
        /// Empty slots to swap for the queue's filled ones.
        var spare: [CaptureSlot]
        /// Connection → pcapng interface id, in order of first appearance.
        var interfaces: [UInt32: UInt32] = [:]
        var written: [UInt64] = []
        var dropped: [UInt64] = []
        var summary = CaptureSummary()
        var failure: String?
        var closed = false
    }

    /// Slots for about 4 MiB of records (twice that with the spare set), 4096 to 65536: at
    /// a million packets a second — a 64-byte stream between two processes — the writer then
    /// has ~25 ms at a 96-byte snap length to drain before a record is lost, rather than 4.
    public static func defaultCapacity(snapLength: Int) -> Int {
        min(65536, max(4096, (4 << 20) / (snapLength + 64)))
    }

    /// How often the writer thread looks at the queue when nobody wakes it.
    public static let drainInterval = Duration.milliseconds(10)

    public let path: String
    public let snapLength: Int
    /// Slots in the queue: records that can wait for the writer at once.
    public let capacity: Int
    let queue: Locked<CaptureQueue>
    let writer: Locked<WriterState>
    let wake = WakeSignal()
    let stopping = Atomic<Bool>(false)

    /// Creates (or truncates) `path` and writes the section header.
    /// - Parameters:
    ///   - snapLength: bytes of data kept per record after its header (0…1 MiB).
    ///   - capacity: records that can wait for the writer (at least 2); by default
    ///     ``defaultCapacity(snapLength:)``.
    ///   - startWriter: start the writer thread now; without it records are written only by
    ///     ``flush()`` and ``close()`` (tests use this to fill the queue).
    /// - Throws: ``CaptureError`` for bad limits or a file that cannot be created.
    public init(path: String, snapLength: Int = 512, capacity: Int? = nil, startWriter: Bool = true) throws(CaptureError) {
        let capacity = capacity ?? Self.defaultCapacity(snapLength: snapLength)
        guard (0...(1 << 20)).contains(snapLength) else { throw CaptureError("snap length \(snapLength) is outside 0…1048576") }
        guard (2...(1 << 20)).contains(capacity) else { throw CaptureError("queue capacity \(capacity) is outside 2…1048576") }
        let header = Pcapng.sectionHeader(application: "swift-vmbus")
        guard FileManager.default.createFile(atPath: path, contents: Data(header)),
            let file = FileHandle(forWritingAtPath: path)
        else { throw CaptureError("cannot create \(path)") }
        do { _ = try file.seekToEnd() } catch { throw CaptureError("cannot write \(path): \(error)") }
        self.path = path
        self.snapLength = snapLength
        self.capacity = capacity
        self.queue = Locked(CaptureQueue(capacity: capacity, snapLength: snapLength))
        self.writer = Locked(WriterState(file: file, spare: (0..<capacity).map { _ in CaptureSlot(snapLength: snapLength) }))
        if startWriter { self.startWriter() }
    }

    // MARK: Producers

    public func record(_ header: CaptureRecordHeader, _ fill: (inout [UInt8], Int) -> Void) {
        // The timestamp is taken under the lock, so the file's order and its times agree.
        let wake = self.queue.withLock { $0.push(header, timestamp: SystemClock.unixNanoseconds(), fill) }
        if wake { self.wake.notify() }
    }

    /// Records lost so far because the queue was full.
    public var droppedRecords: UInt64 { self.queue.withLock { $0.lost } }

    // MARK: The writer

    func startWriter() {
        ThreadName.start("vmbus-capture") { [self] in
            while !self.stopping.load(ordering: .acquiring) {
                self.wake.wait(timeout: Self.drainInterval)
                self.flush()
            }
        }
    }

    /// Writes everything queued so far, on the calling thread.
    public func flush() {
        self.writer.withLock { self.drain(&$0) }
    }

    /// Stops the writer, writes what is queued, then one Interface Statistics Block per
    /// connection (records written and lost), and closes the file. Records made afterwards are
    /// dropped. Closing twice returns the same summary.
    /// - Throws: ``CaptureError`` if a write failed at any point.
    @discardableResult
    public func close() throws(CaptureError) -> CaptureSummary {
        self.stopping.store(true, ordering: .releasing)
        self.wake.notify()
        let (summary, failure): (CaptureSummary, String?) = self.writer.withLock { w in
            if !w.closed {
                self.drain(&w)
                let now = SystemClock.unixNanoseconds()
                var blocks: [UInt8] = []
                for interface in 0..<w.written.count {
                    blocks += Pcapng.interfaceStatistics(
                        interface: UInt32(interface), timestamp: now, received: w.written[interface], dropped: w.dropped[interface])
                }
                self.write(blocks, &w)
                try? w.file?.close()
                w.file = nil
                w.closed = true
            }
            return (w.summary, w.failure)
        }
        if let failure { throw CaptureError(failure) }
        return summary
    }

    /// Swaps the queue's slots for the spare ones and writes them, then a drops record for
    /// each connection that lost records since the last drain.
    func drain(_ w: inout WriterState) {
        guard !w.closed else { return }
        var slots: [CaptureSlot] = []
        Swift.swap(&slots, &w.spare)
        let (count, drops) = self.queue.withLock { $0.swap(into: &slots) }
        var out = WireWriter(capacity: count * (64 + self.snapLength))
        for index in 0..<count {
            let interface = self.interface(slots[index].header.connection, &w, &out)
            self.writeRecord(slots[index], interface: interface, &w, &out)
        }
        w.spare = slots
        let now = SystemClock.unixNanoseconds()
        for (connection, lost) in drops.sorted(by: { $0.key < $1.key }) {
            let interface = self.interface(connection, &w, &out)
            w.dropped[Int(interface)] += lost
            w.summary.dropped += lost
            var slot = CaptureSlot(snapLength: 16)
            slot.header = CaptureRecordHeader(
                kind: .drops, direction: .hostToGuest, observer: .host, connection: connection, originalLength: 16)
            slot.timestamp = now
            slot.count = 16
            for i in 0..<8 {
                slot.bytes[i] = UInt8(truncatingIfNeeded: lost >> (8 * UInt64(i)))
                slot.bytes[8 + i] = UInt8(truncatingIfNeeded: w.dropped[Int(interface)] >> (8 * UInt64(i)))
            }
            self.writeRecord(slot, interface: interface, &w, &out)
        }
        if out.count > 0 { self.write(out.bytes, &w) }
    }

    /// The interface of `connection`, described in the file the first time it appears.
    func interface(_ connection: UInt32, _ w: inout WriterState, _ out: inout WireWriter) -> UInt32 {
        if let interface = w.interfaces[connection] { return interface }
        let interface = UInt32(w.written.count)
        w.interfaces[connection] = interface
        w.written.append(0)
        w.dropped.append(0)
        w.summary.connections += 1
        out.writeBytes(
            Pcapng.interfaceDescription(
                linkType: Pcapng.linkTypeUser0, snapLength: UInt32(CaptureRecordHeader.wireSize + self.snapLength),
                name: "vmbus connection \(connection)", description: "swift-vmbus capture records (docs/CAPTURE.md)"))
        return interface
    }

    func writeRecord(_ slot: CaptureSlot, interface: UInt32, _ w: inout WriterState, _ out: inout WireWriter) {
        Pcapng.enhancedPacket(
            interface: interface, timestamp: slot.timestamp, capturedLength: CaptureRecordHeader.wireSize + slot.count,
            originalLength: UInt32(CaptureRecordHeader.wireSize) &+ slot.header.originalLength, to: &out
        ) { data in
            slot.header.write(to: &data)
            data.writeBytes(slot.bytes[0..<slot.count])
        }
        w.written[Int(interface)] += 1
        w.summary.records += 1
    }

    func write(_ bytes: [UInt8], _ w: inout WriterState) {
        guard let file = w.file, w.failure == nil else { return }
        do {
            try file.write(contentsOf: bytes)
        } catch {
            // Later records are lost too; close() reports the first failure.
            w.failure = "cannot write \(self.path): \(error)"
        }
    }
}
