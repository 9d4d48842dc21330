import VMBusChannel
import VMBusHost
import VMBusMemory
import VMBusWire

extension NetvspDevice {
    /// Starts taking the backend's frames into the guest (once per primary open).
    func startReceiving() {
        self.state.withLock { $0.receiving = true }
        self.backend.attach(NICSink(room: self.room) { [self] frames, first in self.deliver(frames, from: first) })
    }

    /// Where a placed frame went: its slot, its RNDIS message length, its queue.
    struct Placement {
        var slot: Int
        var length: Int
        var queue: UInt16
        /// The frame's bytes (``length`` is its RNDIS message length when not chained).
        var frameLength: Int
        /// The transfer-page packet of a frame with offload state, encoded.
        var chain: [UInt8]? = nil
        /// Spread over several sub-allocations (RSC).
        var coalesced = false
    }

    /// Frames from the backend into the guest (11 §7.2), a batch at a time: each gets a
    /// PACKET header in a free data slot and is lent with a transfer-page packet on the queue
    /// its flow hashes to; each queue's packets go out with one publication and at most one
    /// signal. Frames are dropped (and counted) while the guest has no packet filter set, when
    /// larger than a slot, or when their queue's ring is full.
    /// - Returns: the index of the first frame not taken for want of a free slot.
    func deliver(_ frames: FrameBatch, from first: Int) -> Int {
        var placements: [Placement] = []
        placements.reserveCapacity(frames.count - first)
        var header = PacketHeaderTemplate.template
        var dropped: [UInt16: UInt64] = [:]
        let messageSize = self.messageSize
        let placed: (next: Int, channels: [UInt16: Channel], size: Int, slots: ReceiveSlots?)? = self.state.withLock { state in
            // Quiesced for a takeover: the backend keeps its frames (it was paused first).
            if state.paused { return nil }
            // Until the packets for the slots taken here are sent (a takeover waits for that).
            state.delivering += 1
            guard !state.packetFilter.isEmpty, state.rndisReady, state.receiving, let slots = state.receive, !state.channels.isEmpty else {
                dropped[0, default: 0] += UInt64(frames.count - first)
                return (frames.count, [:], 0, nil)
            }
            let size = slots.size
            for index in first..<frames.count {
                let range = frames.range(index)
                var queue = Self.queue(for: frames.bytes[range], table: state.rssTable, channels: state.channels.count)
                if state.channels[queue] == nil { queue = 0 }
                let offload = frames.offload(index)
                if !offload.isNone || RNDISPacketHeader.size + range.count > size {
                    switch Self.placeOffloaded(frames, index, offload: offload, rsc: state.rsc, slots: &state.receive, messageSize: messageSize) {
                    case .placed(var placement):
                        placement.queue = queue
                        placements.append(placement)
                    case .dropped: dropped[queue, default: 0] += 1
                    case .noRoom: return (index, state.channels, size, slots)
                    }
                    continue
                }
                guard let slot = state.receive?.takeData() else { return (index, state.channels, size, slots) }
                PacketHeaderTemplate.patch(&header, frameLength: range.count)
                do {
                    try slots.memory.write(header[...], at: slot * size)
                    try slots.memory.write(frames.bytes[range], at: slot * size + RNDISPacketHeader.size)
                } catch {
                    _ = state.receive?.release(UInt64(slot))
                    dropped[queue, default: 0] += 1
                    continue
                }
                placements.append(Placement(slot: slot, length: RNDISPacketHeader.size + range.count, queue: queue, frameLength: range.count))
            }
            return (frames.count, state.channels, size, slots)
        }
        guard let (next, channels, size, slots) = placed else { return first }
        var sent: [UInt16: (packets: UInt64, bytes: UInt64, coalesced: UInt64)] = [:]
        var unsent: [Int] = []
        if !placements.isEmpty {
            var packet = Self.transferTemplate(size: self.messageSize)
            for queue in Set(placements.map(\.queue)).sorted() {
                guard let channel = channels[queue] else { continue }
                var written = 0
                let mine = placements.filter { $0.queue == queue }
                _ = try? channel.sendBatch { (writer: inout ChannelBatchWriter) throws(ChannelError) in
                    for placement in mine {
                        if channel.isCapturing, let slots { Self.recordPlaced(placement, slots: slots, on: channel) }
                        if let chain = placement.chain {
                            guard try writer.write(encoded: chain[...]) else { break }
                        } else {
                            Self.patch(&packet, slot: placement.slot, length: placement.length, size: size)
                            guard try writer.write(encoded: packet[...]) else { break }
                        }
                        written += 1
                    }
                }
                for placement in mine.dropFirst(written) { unsent.append(placement.slot) }
                sent[queue] = (
                    UInt64(written), mine.prefix(written).reduce(0) { $0 + UInt64($1.frameLength) },
                    UInt64(mine.prefix(written).count { $0.coalesced })
                )
                dropped[queue, default: 0] += UInt64(mine.count - written)
            }
        }
        self.state.withLock { state in
            state.delivering -= 1
            for slot in unsent { _ = state.receive?.release(UInt64(slot)) }
            for (queue, counts) in sent {
                state.statistics[queue, default: NetworkQueueStatistics()].rxPackets += counts.packets
                state.statistics[queue, default: NetworkQueueStatistics()].rxBytes += counts.bytes
                state.statistics[queue, default: NetworkQueueStatistics()].rxCoalesced += counts.coalesced
            }
            for (queue, count) in dropped { state.statistics[queue, default: NetworkQueueStatistics()].rxDropped += count }
        }
        return next
    }

    /// Records the RNDIS messages a placed frame's packet lends (read back from the receive
    /// buffer), just before the packet goes out: one record per range.
    static func recordPlaced(_ placement: Placement, slots: ReceiveSlots, on channel: Channel) {
        var ranges: [(offset: Int, length: Int)] = [(placement.slot * slots.size, placement.length)]
        if let chain = placement.chain {
            // An encoded transfer-page packet (03 §6): its ranges follow the 24-byte header.
            ranges = []
            let words = chain.span
            let count = chain.count >= TransferPagePacket.headerSize ? Int(words.littleEndianUInt32(at: 20)) : 0
            for index in 0..<count {
                let at = TransferPagePacket.headerSize + index * TransferPageRange.wireSize
                guard at + TransferPageRange.wireSize <= chain.count else { break }
                ranges.append((Int(words.littleEndianUInt32(at: at + 4)), Int(words.littleEndianUInt32(at: at))))
            }
        }
        for (offset, length) in ranges where length > 0 && offset + length <= slots.memory.size {
            var bytes = [UInt8](repeating: 0, count: length)
            guard (try? slots.memory.read(at: offset, count: length, into: &bytes)) != nil else { continue }
            channel.recordBufferData(outgoing: true, gpadl: slots.gpadl, offset: UInt64(offset), bytes[...])
        }
    }

    enum Offloaded {
        case placed(Placement)
        case dropped
        case noRoom
    }

    /// A frame with offload state (11 §5.4, §7.2): its partial checksum finished, a checksum
    /// PPI saying the checksums are good, and — larger than a sub-allocation, with RSC on —
    /// spread over a chain of sub-allocations, each fragment marked by a packet-id PPI
    /// (first, last), all lent with one transfer-page packet whose id is the first slot.
    static func placeOffloaded(
        _ frames: FrameBatch, _ index: Int, offload: FrameOffload, rsc: Bool, slots: inout ReceiveSlots?, messageSize: Int
    ) -> Offloaded {
        guard let size = slots?.size, let memory = slots?.memory else { return .dropped }
        let range = frames.range(index)
        let headerSize = PacketHeaderTemplate.withTwoPPIs.count
        let capacity = size - headerSize
        let pieces = (range.count + capacity - 1) / capacity
        // A frame over several sub-allocations only to a guest that takes RSC; at most 64
        // of them (a 64 KiB segment needs about 40).
        guard pieces >= 1, pieces == 1 || rsc, pieces <= 64 else { return .dropped }
        guard slots?.available ?? 0 >= pieces else { return .noRoom }
        // The finished checksum (the field holds the pseudo-header sum: summing over it, 03).
        var field: (at: Int, value: UInt16)?
        var status = ChecksumInfo()
        if let layout = LargeSend.layout(frames.bytes, base: range.lowerBound, length: range.count) {
            if let start = offload.checksumStart {
                guard start + offload.checksumOffset + 2 <= range.count else { return .dropped }
                let sum = InternetChecksum.sum(frames.bytes[(range.lowerBound + start)..<range.upperBound])
                field = (start + offload.checksumOffset, ~sum == 0 && offload.checksumOffset == 6 ? 0xFFFF : ~sum)
            }
            if field != nil || offload.checksumVerified {
                status = layout.protocol == 6 ? [.rxTCPSucceeded, .rxIPSucceeded] : layout.protocol == 17 ? [.rxUDPSucceeded, .rxIPSucceeded] : [.rxIPSucceeded]
            }
        } else if offload.checksumStart != nil {
            return .dropped
        }
        var taken: [Int] = []
        var ranges: [TransferPageRange] = []
        var header = PacketHeaderTemplate.withTwoPPIs
        for piece in 0..<pieces {
            guard let slot = slots?.takeData() else { break }
            taken.append(slot)
            let start = range.lowerBound + piece * capacity
            let end = min(range.upperBound, start + capacity)
            // Packet id (11 §5.4): version 1; 0x1 several sub-allocations, 0x2 first, 0x4 last.
            var flags: UInt32 = pieces > 1 ? 0x1 : 0
            if piece == 0 { flags |= 0x2 }
            if piece == pieces - 1 { flags |= 0x4 }
            PacketHeaderTemplate.patch(&header, frameLength: end - start, values: (status.rawValue, 1 | flags << 8 | UInt32(taken[0] & 0xFFFF) << 16))
            do {
                try memory.write(header[...], at: slot * size)
                try memory.write(frames.bytes[start..<end], at: slot * size + headerSize)
                if piece == 0, let field {
                    try memory.write([UInt8(field.value >> 8), UInt8(truncatingIfNeeded: field.value)][...], at: slot * size + headerSize + field.at)
                }
            } catch {
                break
            }
            ranges.append(TransferPageRange(byteCount: UInt32(headerSize + end - start), byteOffset: UInt32(slot * size)))
        }
        slots?.chain(taken)
        guard ranges.count == pieces, let first = taken.first,
            let packet = try? PacketEncoder.transferPages(
                setID: NVSP.receiveBufferID, ranges: ranges, payload: Self.transferPayload(NVSP.dataChannel, size: messageSize), transactionID: UInt64(first))
        else {
            if let first = taken.first { _ = slots?.release(UInt64(first)) }
            return .dropped
        }
        return .placed(Placement(slot: first, length: 0, queue: 0, frameLength: range.count, chain: packet, coalesced: pieces > 1))
    }

    /// A one-range transfer-page packet on the receive buffer carrying SEND_RNDIS_PKT (data);
    /// per frame only the transaction id and the range change.
    static func transferTemplate(size: Int) -> [UInt8] {
        let range = TransferPageRange(byteCount: 0, byteOffset: 0)
        let payload = Self.transferPayload(NVSP.dataChannel, size: size)
        // Cannot fail: one range and a payload of at most 40 bytes.
        return (try? PacketEncoder.transferPages(setID: NVSP.receiveBufferID, ranges: [range], payload: payload, transactionID: 0)) ?? []
    }

    /// Offsets in a transfer-page packet (03 §6): the transaction id in the descriptor, then
    /// the first range's byte count and byte offset after the 8-byte transfer-page header.
    static let transactionIDOffset = 8
    static let rangeOffset = PacketDescriptor.wireSize + 8

    static func patch(_ packet: inout [UInt8], slot: Int, length: Int, size: Int) {
        let id = UInt64(slot)
        for byte in 0..<8 { packet[Self.transactionIDOffset + byte] = UInt8(truncatingIfNeeded: id >> (8 * byte)) }
        PacketHeaderTemplate.store(UInt32(length), in: &packet, at: Self.rangeOffset)
        PacketHeaderTemplate.store(UInt32(slot * size), in: &packet, at: Self.rangeOffset + 4)
    }

    /// The SEND_RNDIS_PKT payload of a transfer-page packet (no send section), for data or
    /// control at either message size — the same few bytes for every frame, encoded once.
    static func transferPayload(_ channelType: UInt32, size: Int) -> [UInt8] {
        switch (channelType == NVSP.controlChannel, size == NVSP.messageSize) {
        case (false, false): return Self.transferPayloads.data.legacy
        case (false, true): return Self.transferPayloads.data.full
        case (true, false): return Self.transferPayloads.control.legacy
        case (true, true): return Self.transferPayloads.control.full
        }
    }

    static let transferPayloads = {
        func encoded(_ type: UInt32) -> (legacy: [UInt8], full: [UInt8]) {
            let message = NVSPMessage.rndisPacket(channelType: type, sectionIndex: NVSP.noSection, sectionBytes: 0)
            return (message.encode(size: NVSP.legacyMessageSize), message.encode(size: NVSP.messageSize))
        }
        return (data: encoded(NVSP.dataChannel), control: encoded(NVSP.controlChannel))
    }()

    /// The queue a frame's flow goes to: a hash of its IPv4/IPv6 addresses and ports through
    /// the guest's RSS table (every frame of a flow on one queue, keeping its order); queue 0
    /// without RSS.
    static func queue(for frame: ArraySlice<UInt8>, table: [UInt32], channels: Int) -> UInt16 {
        guard !table.isEmpty, channels > 1, frame.count >= 14 else { return 0 }
        let start = frame.startIndex
        let etherType = UInt16(frame[start + 12]) << 8 | UInt16(frame[start + 13])
        let flow: Range<Int>
        switch etherType {
        case 0x0800 where frame.count >= 14 + 20 + 4: flow = (start + 26)..<(start + 38)  // addresses and ports
        case 0x86DD where frame.count >= 14 + 40 + 4: flow = (start + 22)..<(start + 58)
        default: return 0
        }
        // FNV-1a: cheap and stable; the spread, not Toeplitz compatibility, is what matters here.
        var hash: UInt32 = 0x811C_9DC5
        for byte in frame[flow] { hash = (hash ^ UInt32(byte)) &* 0x0100_0193 }
        return UInt16(truncatingIfNeeded: table[Int(hash % UInt32(table.count))])
    }
}
