import VMBusChannel
import VMBusGuest
import VMBusMemory
import VMBusWire

/// One queue (channel) of a guest NIC as its interrupt handler sees it: installed when the
/// channel opens — the set-up requests' completions are routed by its drains — and joined to
/// the NIC once it is up; packets before that are dropped (the host sends none before RNDIS).
final class GuestQueue: Sendable {
    let channel: Channel
    let queue: UInt16
    let nic = Locked<NetvscNIC?>(nil)
    /// Packets for the control path (the send table, anything unexpected), in order.
    let control: AsyncStream<ChannelPacket>.Continuation
    /// Completions of transfer-page packets owed to the host, and the message copy buffer.
    let backlog = CompletionBacklog()

    init(channel: Channel, queue: UInt16) {
        self.channel = channel
        self.queue = queue
        let (stream, continuation) = AsyncStream.makeStream(of: ChannelPacket.self)
        self.control = continuation
        let nic = self.nic
        Task {
            for await packet in stream {
                guard let nic = nic.withLock({ $0 }) else { continue }
                await nic.handle(packet, channel: channel, queue: queue)
            }
        }
        Task {
            _ = await channel.ended()
            channel.onInterrupt(nil)
            continuation.finish()
        }
        channel.onInterrupt { [self] in self.interrupted() }
    }

    /// From now on this queue's packets go to `nic`.
    func attach(_ nic: NetvscNIC) {
        self.nic.withLock { $0 = nic }
        // Anything that arrived meanwhile was dropped; look at the ring again anyway.
        self.channel.interrupt()
    }

    func interrupted() {
        let nic = self.nic.withLock { $0 }
        var (owed, scratch) = self.backlog.take()
        var run = NetvscNIC.RunCounts()
        do {
            _ = try self.channel.drainPackets(limit: 256) { descriptor, packet in
                guard let nic else { return }
                switch nic.fast(descriptor, packet, queue: self.queue, channel: self.channel, scratch: &scratch, run: &run) {
                case .complete(let status): owed.append((descriptor.transactionID, status))
                case .done: break
                case .slow: self.control.yield(ChannelPacket(copying: packet, descriptor: descriptor))
                }
            }
        } catch {
            // Closed or corrupted: the bus ends the channel.
        }
        self.backlog.putBack(scratch: scratch)
        guard let nic else { return }
        nic.finish(run, queue: self.queue)
        self.backlog.send(&owed, on: self.channel, success: NetvscNIC.completions.success, failure: NetvscNIC.completions.failure)
    }
}

extension NetvscNIC {
    /// Counters of one handler run, added to the statistics once.
    struct RunCounts {
        var frames: UInt64 = 0
        var bytes: UInt64 = 0
        var malformed: UInt64 = 0
        var released: [Int] = []
        var releasedLarge: [Int] = []
        /// A frame being joined from RSC fragments (they come in one transfer-page packet).
        var assembly: [UInt8] = []
        var assembling = false
        var assemblyOffload = FrameOffload.none
    }

    /// The largest frame joined from fragments: a 64 KiB segment and its headers.
    static let largestFrame = 65536 + 14 + 4

    enum FastOutcome {
        case complete(NVSPStatus)
        case done
        case slow
    }

    /// RNDIS_PACKET_COMPLETE payloads (8 bytes, as Linux completes a receive).
    static let completions = (
        success: NVSPMessage.rndisPacketComplete(status: .success).encode(size: 8)[...],
        failure: NVSPMessage.rndisPacketComplete(status: .failure).encode(size: 8)[...]
    )

    /// The data path: frames lent in the receive buffer, completions of our sends.
    func fast(
        _ descriptor: PacketDescriptor, _ packet: Span<UInt8>, queue: UInt16, channel: Channel, scratch: inout [UInt8], run: inout RunCounts
    )
        -> FastOutcome
    {
        switch descriptor.type {
        case .dataUsingTransferPages:
            // 03 §6, read in place, each word once: the set id, the range count (its ranges
            // must end before the payload), the NVSP type of the payload.
            let payloadOffset = descriptor.payloadOffset
            guard payloadOffset >= TransferPagePacket.headerSize, payloadOffset <= packet.count else {
                run.malformed += 1
                return .done
            }
            let setID = UInt16(packet[16]) | UInt16(packet[17]) << 8
            let count = Int(packet.littleEndianUInt32(at: 20))
            guard count <= (payloadOffset - TransferPagePacket.headerSize) / TransferPageRange.wireSize else {
                run.malformed += 1
                return .done
            }
            // The payload must hold SEND_RNDIS_PKT's header and body (Linux drops a shorter one).
            let type = packet.littleEndianUInt32(at: payloadOffset, zeroExtended: true)
            guard setID == NVSP.receiveBufferID, type == NVSPMessageType.sendRNDISPacket.rawValue, packet.count - payloadOffset >= 16 else {
                // Linux ignores such a packet without completing it.
                run.malformed += 1
                return .done
            }
            var status = NVSPStatus.success
            for index in 0..<count {
                let at = TransferPagePacket.headerSize + index * TransferPageRange.wireSize
                let range = TransferPageRange(byteCount: packet.littleEndianUInt32(at: at), byteOffset: packet.littleEndianUInt32(at: at + 4))
                if !self.received(range, channel: channel, scratch: &scratch, run: &run) { status = .failure }
            }
            if status != .success { run.malformed += 1 }
            return .complete(status)
        case .completion:
            // Our sends: the section is free again (the status is only logged by Linux). A
            // completion of anything not in flight — never sent, or completed already — frees
            // nothing: a section freed twice would be filled by two sends at once.
            let id = descriptor.transactionID
            guard self.state.withLock({ $0.inFlight.remove(id) }) != nil else {
                run.malformed += 1
                return .done
            }
            if id & Self.tagMask == Self.largeTag {
                run.releasedLarge.append(Int(id & 0xFFFF_FFFF))
            } else {
                run.released.append(Int(id & 0xFFFF_FFFF))
            }
            return .done
        default:
            return .slow
        }
    }

    /// Adds a run's counters and frees the sections it saw completed, waking a backend
    /// waiting for room.
    func finish(_ run: RunCounts, queue: UInt16) {
        if !run.releasedLarge.isEmpty {
            self.state.withLock { $0.freeLarge.append(contentsOf: run.releasedLarge) }
            if run.released.isEmpty { self.room.notify() }
        }
        if !run.released.isEmpty {
            let waiters: [(CheckedContinuation<Int?, Never>, Int)] = self.state.withLock { state in
                var woken: [(CheckedContinuation<Int?, Never>, Int)] = []
                for section in run.released {
                    if !state.sectionWaiters.isEmpty {
                        woken.append((state.sectionWaiters.removeFirst(), section))
                    } else {
                        state.freeSections.append(section)
                    }
                }
                return woken
            }
            for (waiter, section) in waiters { waiter.resume(returning: section) }
            self.room.notify()
            self.changes.wake()
        }
        if run.frames > 0 || run.malformed > 0 {
            self.count(queue) { stats in
                stats.rxPackets += run.frames
                stats.rxBytes += run.bytes
                stats.malformed += run.malformed
            }
        }
    }

    // MARK: Transmit (11 §7.1)

    /// Frames from the backend to the host, a batch at a time: each copied into a free send
    /// section behind its PACKET header (and its checksum or LSO PPI, 11 §5.4), or — a segment
    /// too large for a section — into a large-send buffer sent GPA-direct; each queue's
    /// SEND_RNDIS_PKTs go out with one publication and at most one signal. The buffer comes
    /// back with the host's completion.
    /// - Returns: the index of the first frame not taken for want of a free buffer.
    func transmit(_ frames: FrameBatch, from first: Int) -> Int {
        struct Placed {
            var buffer: Int
            var large: Bool
            var length: Int
            var frameLength: Int
            var queue: UInt16
        }
        var placed: [Placed] = []
        placed.reserveCapacity(frames.count - first)
        var plain = PacketHeaderTemplate.template
        var withPPI = PacketHeaderTemplate.withPPI
        var headers: [UInt8] = []
        var dropped: UInt64 = 0
        var next = frames.count
        let (channels, table, large, agreed) = self.state.withLock { ($0.channels, $0.indirection, $0.large, $0.offloads) }
        for index in first..<frames.count {
            let range = frames.range(index)
            let offload = frames.offload(index)
            var ppi: PerPacketInfo?
            // Offload state the host never agreed to (a backend breaking its word): dropped.
            let segmentation: NetworkOffloads? = switch offload.segmentation {
            case .tcp4?: .tcp4Segmentation
            case .tcp6?: .tcp6Segmentation
            case nil: nil
            }
            if (offload.checksumStart != nil && !agreed.contains(.checksum)) || segmentation.map({ !agreed.contains($0) }) == true {
                dropped += 1
                continue
            }
            if offload.checksumStart != nil {
                // The headers, made NDIS's convention for LSO (11 §5.4), replace the frame's.
                headers.removeAll(keepingCapacity: true)
                headers.append(contentsOf: frames.bytes[range.lowerBound..<(range.lowerBound + min(range.count, 128))])
                ppi = LargeSend.toNDIS(offload, headers: &headers, frameLength: range.count)
                if ppi == nil {
                    dropped += 1
                    continue
                }
            }
            let headerSize = ppi == nil ? RNDISPacketHeader.size : PacketHeaderTemplate.withPPI.count
            let isLarge = headerSize + range.count > self.sectionSize
            guard !range.isEmpty, !isLarge || (ppi?.type == .lso && large != nil && headerSize + range.count <= Self.largeSendPages * GpaRange.pageSize)
            else {
                dropped += 1
                continue
            }
            let taken: Int? = self.state.withLock { state in
                if state.closed { return nil }
                return isLarge ? state.freeLarge.popLast() : state.freeSections.popLast()
            }
            guard let buffer = taken else {
                next = self.state.withLock { $0.closed } ? frames.count : index
                break
            }
            let offset = isLarge ? large!.offset + buffer * Self.largeSendPages * GpaRange.pageSize : self.send.offset + buffer * self.sectionSize
            do {
                if let ppi {
                    PacketHeaderTemplate.patch(&withPPI, frameLength: range.count, ppi: ppi)
                    try self.memory.write(withPPI[...], at: offset)
                } else {
                    PacketHeaderTemplate.patch(&plain, frameLength: range.count)
                    try self.memory.write(plain[...], at: offset)
                }
                try self.memory.write(frames.bytes[range], at: offset + headerSize)
                if ppi != nil { try self.memory.write(headers[...], at: offset + headerSize) }
            } catch {
                self.release(buffer, large: isLarge)
                dropped += 1
                continue
            }
            let queue = Self.queue(for: frames.bytes[range], channels: channels.count, table: table)
            placed.append(Placed(buffer: buffer, large: isLarge, length: headerSize + range.count, frameLength: range.count, queue: queue))
        }
        var message = Self.dataMessageTemplate
        var sent: [UInt16: (frames: UInt64, bytes: UInt64)] = [:]
        for queue in Set(placed.map(\.queue)).sorted() {
            let mine = placed.filter { $0.queue == queue }
            let channel = channels[queue] ?? self.channel
            func id(_ item: Placed) -> UInt64 { (item.large ? Self.largeTag : Self.dataTag) | UInt64(item.buffer) }
            self.state.withLock { state in for item in mine { state.inFlight.insert(id(item)) } }
            var written = 0
            _ = try? channel.sendBatch { (writer: inout ChannelBatchWriter) throws(ChannelError) in
                for item in mine {
                    if channel.isCapturing { self.recordSent(item.buffer, large: item.large, length: item.length, on: channel) }
                    if item.large, let large {
                        // One range over the buffer's pages; no section (11 §7.1 "Direct").
                        let firstPFN = large.firstPFN + UInt64(item.buffer * Self.largeSendPages)
                        let pages = (item.length + GpaRange.pageSize - 1) / GpaRange.pageSize
                        guard let range = try? GpaRange(byteCount: UInt32(item.length), byteOffset: 0, pfns: (0..<UInt64(pages)).map { firstPFN + $0 }),
                            let packet = try? PacketEncoder.gpaDirect(ranges: [range], payload: Self.directMessage, transactionID: id(item)),
                            try writer.write(encoded: packet[...])
                        else { break }
                    } else {
                        PacketHeaderTemplate.store(UInt32(item.buffer), in: &message, at: 8)
                        PacketHeaderTemplate.store(UInt32(item.length), in: &message, at: 12)
                        guard try writer.write(inBand: message[...], transactionID: id(item), completionRequested: true) else { break }
                    }
                    written += 1
                }
            }
            for item in mine.dropFirst(written) {
                _ = self.state.withLock { $0.inFlight.remove(id(item)) }
                self.release(item.buffer, large: item.large)
            }
            dropped += UInt64(mine.count - written)
            sent[queue] = (UInt64(written), mine.prefix(written).reduce(0) { $0 + UInt64($1.frameLength) })
        }
        self.state.withLock { state in
            for (queue, counts) in sent {
                state.statistics[queue, default: NetworkQueueStatistics()].txPackets += counts.frames
                state.statistics[queue, default: NetworkQueueStatistics()].txBytes += counts.bytes
            }
            state.statistics[0, default: NetworkQueueStatistics()].txDropped += dropped
        }
        return next
    }

    /// Records the RNDIS message in a send section or large-send buffer (read back, so the
    /// capture holds what the host will read), just before the packet that names it.
    func recordSent(_ buffer: Int, large: Bool, length: Int, on channel: Channel) {
        let state = self.state.withLock { $0.large }
        let at: Int
        let gpadl: UInt32
        let offset: UInt64
        if large, let state {
            at = state.offset + buffer * Self.largeSendPages * GpaRange.pageSize
            (gpadl, offset) = (0, (state.firstPFN + UInt64(buffer * Self.largeSendPages)) * UInt64(GpaRange.pageSize))
        } else {
            at = self.send.offset + buffer * self.sectionSize
            (gpadl, offset) = (self.gpadls.send, UInt64(buffer * self.sectionSize))
        }
        var bytes = [UInt8](repeating: 0, count: length)
        guard (try? self.memory.read(at: at, count: length, into: &bytes)) != nil else { return }
        channel.recordBufferData(outgoing: true, gpadl: gpadl, offset: offset, bytes[...])
    }

    /// Frees a send section or a large-send buffer, waking a backend waiting for room.
    func release(_ buffer: Int, large: Bool) {
        if large {
            self.state.withLock { $0.freeLarge.append(buffer) }
            self.room.notify()
        } else {
            self.releaseSection(buffer)
        }
    }

    /// SEND_RNDIS_PKT of data with no section: the whole message is in the GPA ranges.
    static let directMessage = NVSPMessage.rndisPacket(channelType: NVSP.dataChannel, sectionIndex: NVSP.noSection, sectionBytes: 0).encode()

    /// SEND_RNDIS_PKT of data (40 bytes, as Linux sends); per frame only the section index
    /// (offset 8) and size (offset 12) change.
    static let dataMessageTemplate = NVSPMessage.rndisPacket(channelType: NVSP.dataChannel, sectionIndex: 0, sectionBytes: 0).encode()

    /// A flow's queue through the host's send table (11 §6); 0 with one queue.
    static func queue(for frame: ArraySlice<UInt8>, channels: Int, table: [UInt32]) -> UInt16 {
        guard channels > 1, !table.isEmpty else { return 0 }
        var hash: UInt32 = 0x811C_9DC5
        for byte in frame.dropFirst(26).prefix(12) { hash = (hash ^ UInt32(byte)) &* 0x0100_0193 }
        return UInt16(table[Int(hash % UInt32(table.count))] % UInt32(channels))
    }
}
