import Synchronization
import VMBusChannel
import VMBusHost
import VMBusMemory
import VMBusWire

/// What one queue's interrupt handler keeps between runs: the channel, the ordered hand-off
/// to the control path, completions that did not fit the ring, and a reused copy buffer.
final class QueueContext: Sendable {
    let channel: Channel
    let queue: UInt16
    /// Packets for the control path (set-up, RNDIS control, GPA-direct data), in order.
    let control: AsyncStream<ChannelPacket>.Continuation
    /// Completions owed to the guest, and the section copy buffer.
    let backlog = CompletionBacklog(scratchBytes: NetvspDevice.sectionSize)
    /// Packets handed to the control path and not yet handled: they left the ring, so a
    /// takeover waits for them.
    let pendingControl = Atomic<Int>(0)

    init(channel: Channel, queue: UInt16, control: AsyncStream<ChannelPacket>.Continuation) {
        self.channel = channel
        self.queue = queue
        self.control = control
    }
}

extension NetvspDevice {
    /// Starts serving a channel: the data path runs in its interrupt handler, on the thread
    /// that signals (no task switch per packet); everything else goes, in order, to a task.
    func serve(_ channel: Channel, queue: UInt16) {
        let (stream, continuation) = AsyncStream.makeStream(of: ChannelPacket.self)
        let context = QueueContext(channel: channel, queue: queue, control: continuation)
        self.state.withLock { $0.contexts[queue] = context }
        Task {
            for await packet in stream {
                let outcome = await self.handle(packet, channel: channel, queue: queue)
                context.pendingControl.subtract(1, ordering: .releasing)
                if case .fatal(let why) = outcome {
                    self.stop(channel, queue: queue, why)
                    break
                }
            }
        }
        Task {
            _ = await channel.ended()
            channel.onInterrupt(nil)
            continuation.finish()
        }
        channel.onInterrupt { [self] in self.interrupted(context) }
    }

    /// Like OpenVMM's worker: a channel whose guest broke the protocol stops until the guest
    /// opens it again.
    func stop(_ channel: Channel, queue: UInt16, _ why: String) {
        self.count(queue) { stats in
            stats.malformed += 1
            stats.lastFault = why
        }
        channel.close(.closedLocally)
    }

    /// Counters of one handler run, added to the queue's statistics once.
    struct RunCounts {
        var frames: UInt64 = 0
        var bytes: UInt64 = 0
        var large: UInt64 = 0
        var malformed: UInt64 = 0
        var released = 0
    }

    /// One run of a queue's interrupt handler: the guest's completions of receive slots and its
    /// frames in send sections are handled here; the rest goes to the control path.
    func interrupted(_ context: QueueContext) {
        var (owed, scratch) = context.backlog.take()
        var counts = RunCounts()
        var fault: String?
        let ready: Ready = self.state.withLock { Ready(send: $0.sendBuffer?.memory, sendGpadl: $0.sendBuffer?.gpadl ?? 0, versioned: $0.version != nil) }
        do {
            _ = try context.channel.drainPackets(limit: 256) { descriptor, packet in
                guard fault == nil else { return }
                switch self.fast(descriptor, packet, ready: ready, channel: context.channel, scratch: &scratch, counts: &counts) {
                case .done(let status?): owed.append((descriptor.transactionID, status))
                case .done(nil): break
                case .fatal(let why): fault = why
                case .slow:
                    context.pendingControl.add(1, ordering: .relaxed)
                    context.control.yield(ChannelPacket(copying: packet, descriptor: descriptor))
                }
            }
        } catch {
            // Closed or corrupted: the bus ends the channel; nothing more to do here.
        }
        context.backlog.putBack(scratch: scratch)
        if counts.released > 0 {
            self.room.notify()
            self.changes.wake()
        }
        if counts.frames > 0 || counts.malformed > 0 {
            self.count(context.queue) { stats in
                stats.txPackets += counts.frames
                stats.txBytes += counts.bytes
                stats.txLargeSegments += counts.large
                stats.malformed += counts.malformed
            }
        }
        if let fault {
            self.stop(context.channel, queue: context.queue, fault)
            return
        }
        let payloads = Self.completionPayloads(size: self.messageSize)
        context.backlog.send(&owed, on: context.channel, success: payloads.success, failure: payloads.failure)
    }

    /// The frames of a gathered data message to the backend; the completion owed.
    func send(_ descriptor: PacketDescriptor, count: Int, scratch: inout [UInt8], counts: inout RunCounts) -> FastOutcome {
        let sent = self.transmit(&scratch, count: count)
        counts.frames += UInt64(sent.frames)
        counts.bytes += UInt64(sent.bytes)
        counts.large += UInt64(sent.large)
        if !sent.ok { counts.malformed += 1 }
        return descriptor.flags.contains(.completionRequested) ? .done(sent.ok ? .success : .failure) : .done(nil)
    }

    /// RNDIS_PACKET_COMPLETE payloads, encoded once per message size.
    static func completionPayloads(size: Int) -> (success: ArraySlice<UInt8>, failure: ArraySlice<UInt8>) {
        size == NVSP.messageSize ? Self.completions.full : Self.completions.legacy
    }

    static let completions = {
        func encoded(_ size: Int) -> (success: ArraySlice<UInt8>, failure: ArraySlice<UInt8>) {
            (NVSPMessage.rndisPacketComplete(status: .success).encode(size: size)[...],
             NVSPMessage.rndisPacketComplete(status: .failure).encode(size: size)[...])
        }
        return (legacy: encoded(NVSP.legacyMessageSize), full: encoded(NVSP.messageSize))
    }()

    /// What the data path needs of the device's state, taken once per handler run.
    struct Ready {
        var send: MappedMemory?
        var sendGpadl: UInt32
        var versioned: Bool
    }

    enum FastOutcome {
        /// Handled; the completion to send, if one is owed.
        case done(NVSPStatus?)
        /// Not a data-path packet: the control path takes it, in order.
        case slow
        case fatal(String)
    }

    /// The data path (11 §7): a completion returning a receive slot, or a SEND_RNDIS_PKT of
    /// data in a send section. Anything else — or data before the set-up it needs — is slow.
    func fast(
        _ descriptor: PacketDescriptor, _ packet: Span<UInt8>, ready: Ready, channel: Channel,
        scratch: inout [UInt8], counts: inout RunCounts
    ) -> FastOutcome {
        let start = descriptor.payloadOffset
        // Each word read once from the shared bytes; the message is zero-extended as the
        // parser does (a short completion reads as type 0).
        func word(_ index: Int) -> UInt32 { packet.littleEndianUInt32(at: start + 4 * index, zeroExtended: true) }
        switch descriptor.type {
        case .completion:
            guard word(0) == NVSPMessageType.sendRNDISPacketComplete.rawValue else { return .fatal("completion is not type 108") }
            let id = descriptor.transactionID
            guard self.state.withLock({ $0.receive?.release(id) ?? false }) else { return .fatal("completion for slot \(id), not lent") }
            counts.released += 1
            return .done(nil)
        case .dataInBand:
            let index = word(2)
            guard ready.versioned, let buffer = ready.send, word(0) == NVSPMessageType.sendRNDISPacket.rawValue,
                word(1) == NVSP.dataChannel, index != NVSP.noSection
            else { return .slow }
            let bytes = Int(word(3))
            let offset = Int(index) * Self.sectionSize
            guard bytes > 0, bytes <= Self.sectionSize, offset + bytes <= buffer.size else {
                return .fatal("send section \(index) (\(bytes) bytes) outside the send buffer")
            }
            if scratch.count < bytes { scratch = [UInt8](repeating: 0, count: Self.sectionSize) }
            // One copy out of the section: the guest cannot change what is checked and sent.
            guard (try? buffer.read(at: offset, count: bytes, into: &scratch)) != nil else { return .fatal("send section \(index) unreadable") }
            if channel.isCapturing { channel.recordBufferData(outgoing: false, gpadl: ready.sendGpadl, offset: UInt64(offset), scratch[0..<bytes]) }
            return self.send(descriptor, count: bytes, scratch: &scratch, counts: &counts)
        case .dataUsingGpaDirect:
            // Large segments (11 §7.1 "Direct"): the ranges are read straight from guest memory.
            guard ready.versioned, word(0) == NVSPMessageType.sendRNDISPacket.rawValue, word(1) == NVSP.dataChannel else { return .slow }
            var bytes: [UInt8] = []
            bytes.append(span: packet)
            guard case .gpaDirect(let direct)? = try? VMBusPacket.parse(bytes[...], strict: false) else { return .slow }
            switch self.gather(index: word(2), bytes: word(3), ranges: direct.ranges, into: &scratch) {
            case .success(let count):
                if channel.isCapturing {
                    let origin = Self.origin(index: word(2), ranges: direct.ranges, sendGpadl: ready.sendGpadl)
                    channel.recordBufferData(outgoing: false, gpadl: origin.gpadl, offset: origin.offset, scratch[0..<count])
                }
                return self.send(descriptor, count: count, scratch: &scratch, counts: &counts)
            case .failure(.fatal(let why)): return .fatal(why)
            case .failure(.malformed):
                counts.malformed += 1
                return descriptor.flags.contains(.completionRequested) ? .done(.failure) : .done(nil)
            }
        default:
            return .slow
        }
    }
}
