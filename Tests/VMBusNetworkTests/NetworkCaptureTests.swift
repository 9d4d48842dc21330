import Testing
import VMBusMemory
import VMBusNetwork
import VMBusWire

/// Keeps every record in memory, whole.
final class RecordingRecorder: CaptureRecorder, Sendable {
    let records = Locked<[(CaptureRecordHeader, [UInt8])]>([])
    var snapLength: Int { 1 << 16 }

    func record(_ header: CaptureRecordHeader, _ fill: (inout [UInt8], Int) -> Void) {
        let count = min(Int(header.originalLength), self.snapLength)
        var bytes = [UInt8](repeating: 0, count: count)
        fill(&bytes, count)
        self.records.withLock { $0.append((header, bytes)) }
    }
}

/// A capture of the NIC holds the RNDIS messages that only live in the send and receive
/// buffers (buffer-data records), so a reader sees the frames themselves.
@Suite struct NetworkCaptureTests {
    /// The frames in the buffer-data records of one direction, in order.
    static func frames(in recorder: RecordingRecorder, _ direction: CaptureDirection) -> [[UInt8]] {
        recorder.records.withLock { $0 }.compactMap { header, bytes -> [UInt8]? in
            guard header.kind == .bufferData, header.direction == direction, bytes.count > CaptureTap.bufferPrefix else { return nil }
            let message = bytes[CaptureTap.bufferPrefix...]
            guard let packet = try? RNDISPacketHeader(parsing: message) else { return nil }
            return Array(message.dropFirst(packet.frameOffset).prefix(packet.frameLength))
        }
    }

    @Test func theHostsCaptureHoldsEveryFrameEachWay() async throws {
        let recorder = RecordingRecorder()
        let pair = try await NetworkPair.make(capture: recorder)
        // The host's control answers (INITIALIZE_CMPLT and the rest) are in its receive buffer.
        let controls = recorder.records.withLock { $0 }.filter { $0.0.kind == .bufferData && $0.0.direction == .hostToGuest }
        #expect(controls.contains { header, bytes in
            bytes.count >= CaptureTap.bufferPrefix + 8 && header.relid == pair.nic.relid
                && bytes[CaptureTap.bufferPrefix..<(CaptureTap.bufferPrefix + 4)].elementsEqual([0x02, 0, 0, 0x80])
        }, "INITIALIZE_CMPLT")

        var toGuest = pair.system.frames().makeAsyncIterator()
        var toHost = pair.wire.frames().makeAsyncIterator()
        let down = (0..<20).map { testFrame($0, length: 60 + 70 * $0) }
        let up = (0..<20).map { testFrame(100 + $0, length: 1514 - 70 * $0) }
        for frame in down { pair.wire.send(frame[...]) }
        for _ in down { _ = await toGuest.next() }
        for frame in up { pair.system.send(frame[...]) }
        for _ in up { _ = await toHost.next() }

        #expect(Self.frames(in: recorder, .hostToGuest) == down)
        #expect(Self.frames(in: recorder, .guestToHost) == up)
        // Each record names the buffer: the receive buffer's GPADL going down, the send
        // buffer's coming up, at a section or slot boundary.
        let gpadls = Set(recorder.records.withLock { $0 }.filter { $0.0.kind == .bufferData }.map { header, bytes in
            (header.direction, UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24)
        }.map { "\($0.0) \($0.1)" })
        #expect(gpadls.count == 2, "\(gpadls)")
    }
}
