import VMBusChannel
import VMBusHost
import VMBusMemory
import VMBusWire

extension NetvspDevice {
    /// Starts taking the backend's frames into the guest (once per primary open).
    func startReceiving() {
        let task = Task { [self] in
            for await frame in self.backend.frames() {
                if Task.isCancelled { break }
                await self.deliver(frame[...])
            }
        }
        let previous = self.state.withLock { state in
            defer { state.receiving = task }
            return state.receiving
        }
        previous?.cancel()
    }

    /// One frame from the backend into the guest (11 §7.2): a PACKET header and the frame in a
    /// free data slot, lent with a transfer-page packet on the queue its flow hashes to.
    /// Dropped (and counted) while the guest has no packet filter set, no slot is free or the
    /// frame is larger than a slot.
    func deliver(_ frame: ArraySlice<UInt8>) async {
        enum Placement {
            case placed(slot: Int, size: Int, length: Int, queue: UInt16, channel: Channel)
            case dropped(UInt16)
        }
        var header = WireWriter(capacity: RNDISPacketHeader.size)
        RNDISPacketHeader.write(frameLength: frame.count, to: &header)
        let placement: Placement = self.state.withLock { state in
            let queue = Self.queue(for: frame, table: state.rssTable, channels: state.channels.count)
            let channel = state.channels[queue] ?? state.channels[0]
            let usedQueue = state.channels[queue] == nil ? 0 : queue
            guard !state.packetFilter.isEmpty, state.rndisReady, let channel, let size = state.receive?.size,
                header.count + frame.count <= size, let slot = state.receive?.takeData()
            else { return .dropped(usedQueue) }
            do {
                try state.receive?.memory.write(header.bytes[...], at: slot * size)
                try state.receive?.memory.write(frame, at: slot * size + header.count)
            } catch {
                _ = state.receive?.release(UInt64(slot))
                return .dropped(usedQueue)
            }
            return .placed(slot: slot, size: size, length: header.count + frame.count, queue: usedQueue, channel: channel)
        }
        switch placement {
        case .dropped(let queue):
            self.count(queue) { $0.rxDropped += 1 }
        case .placed(let slot, let size, let length, let queue, let channel):
            let range = TransferPageRange(byteCount: UInt32(length), byteOffset: UInt32(slot * size))
            let payload = Self.transferPayload(NVSP.dataChannel, size: self.messageSize)
            guard let packet = try? PacketEncoder.transferPages(
                setID: NVSP.receiveBufferID, ranges: [range], payload: payload, transactionID: UInt64(slot))
            else { return }
            do {
                if try !channel.trySend(encoded: packet) { try await channel.send(encoded: packet) }
                self.count(queue) { stats in
                    stats.rxPackets += 1
                    stats.rxBytes += UInt64(frame.count)
                }
            } catch {
                self.state.withLock { _ = $0.receive?.release(UInt64(slot)) }
                self.count(queue) { $0.rxDropped += 1 }
            }
        }
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
