import VMBusChannel
import VMBusMemory
import VMBusWire

/// What a queue's interrupt handler keeps from one run to the next, on either side: the
/// completions it owes the peer, and its copy buffer (taken for a run and put back, so no run
/// allocates one).
final class CompletionBacklog: Sendable {
    typealias Owed = [(id: UInt64, status: NVSPStatus)]
    let owed = Locked<Owed>([])
    let scratch: Locked<[UInt8]>

    init(scratchBytes: Int = 0) { self.scratch = Locked([UInt8](repeating: 0, count: scratchBytes)) }

    /// What earlier runs could not send, and the copy buffer.
    func take() -> (owed: Owed, scratch: [UInt8]) {
        let owed = self.owed.withLock { owed in
            defer { owed.removeAll(keepingCapacity: true) }
            return owed
        }
        let scratch = self.scratch.withLock { scratch in
            defer { scratch = [] }
            return scratch
        }
        return (owed, scratch)
    }

    func putBack(scratch: [UInt8]) { self.scratch.withLock { $0 = scratch } }

    /// Sends the owed completions (RNDIS_PACKET_COMPLETE with each status) in one batch; what
    /// does not fit the ring waits for the peer's signal that it made room — the handler runs
    /// again then and sends it first.
    func send(_ owed: inout Owed, on channel: Channel, success: ArraySlice<UInt8>, failure: ArraySlice<UInt8>) {
        while !owed.isEmpty {
            var sent = 0
            do {
                _ = try channel.sendBatch { (writer: inout ChannelBatchWriter) throws(ChannelError) in
                    for (id, status) in owed {
                        guard try writer.write(completion: status == .success ? success : failure, transactionID: id) else { break }
                        sent += 1
                    }
                }
            } catch {
                return
            }
            owed.removeFirst(sent)
            guard !owed.isEmpty else { return }
            guard (try? channel.requestRoom(for: PacketSize.inBand(payload: success.count))) == true else { break }
        }
        let left = owed
        self.owed.withLock { $0.append(contentsOf: left) }
    }
}

extension ChannelPacket {
    /// A private copy of a packet lent in place by a drain, for the control path's task.
    init(copying packet: Span<UInt8>, descriptor: PacketDescriptor) {
        var bytes: [UInt8] = []
        bytes.append(span: packet)
        self.init(descriptor: descriptor, bytes: bytes[...])
    }
}

/// A NIC (either side) as its backend's sink: where the backend's frames go in, and the
/// signal its thread waits on while the NIC has no room.
final class NICSink: FrameSink {
    let take: @Sendable (FrameBatch, Int) -> Int
    let room: WakeSignal
    init(room: WakeSignal, take: @escaping @Sendable (FrameBatch, Int) -> Int) {
        self.room = room
        self.take = take
    }
    func deliver(_ frames: FrameBatch, from first: Int) -> Int { self.take(frames, first) }
    func waitForRoom(timeout: Duration) { self.room.wait(timeout: timeout) }
}
