import VMBusChannel
import VMBusGuest
import VMBusMemory
import VMBusWire

extension NetvscNIC {
    /// One packet from the host on `queue`'s channel: lent receive slots, completions of our
    /// sends, the send table.
    func handle(_ packet: ChannelPacket, channel: Channel, queue: UInt16) async {
        guard let parsed = try? packet.parse() else {
            self.count(queue) { $0.malformed += 1 }
            return
        }
        switch parsed {
        case .transferPages(let transfer):
            let status = self.received(transfer, queue: queue)
            // Every valid transfer-page packet is completed, so the host can reuse its slots.
            guard let status else { return }
            let completion = NVSPMessage.rndisPacketComplete(status: status).encode(size: 8)
            // Straight into the ring when there is room (no suspension per packet); else wait.
            if (try? channel.trySend(completion: completion[...], transactionID: transfer.descriptor.transactionID)) != true {
                try? await channel.send(completion: completion[...], transactionID: transfer.descriptor.transactionID)
            }
        case .completion(let descriptor, _):
            // Our sends: the section is free again (the status is only logged by Linux). A
            // completion of anything not in flight — never sent, or completed already — frees
            // nothing: a section freed twice would be filled by two sends at once.
            let id = descriptor.transactionID
            guard self.state.withLock({ $0.inFlight.remove(id) }) != nil else {
                self.count(queue) { $0.malformed += 1 }
                return
            }
            self.releaseSection(Int(id & 0xFFFF_FFFF))
        case .inBand(_, let payload):
            if case .indirectionTable(let table)? = try? NVSPMessage(parsing: payload) {
                self.state.withLock { state in
                    state.indirection = table
                    state.sendTableReceived = true
                }
                await self.queuesChanged()
            }
        case .gpaDirect, .other:
            self.count(queue) { $0.malformed += 1 }
        }
    }

    /// The RNDIS messages in a transfer-page packet (11 §7.3, §8): each range one message in
    /// the receive buffer. - Returns: the completion status, or `nil` for a packet Linux
    /// ignores without completing (wrong set, wrong NVSP type).
    func received(_ transfer: TransferPagePacket, queue: UInt16) -> NVSPStatus? {
        guard transfer.transferPageSetID == NVSP.receiveBufferID,
            case .rndisPacket? = try? NVSPMessage(parsing: transfer.payload)
        else {
            self.count(queue) { $0.malformed += 1 }
            return nil
        }
        var status = NVSPStatus.success
        var bytes: [UInt8] = []
        for range in transfer.ranges {
            let offset = Int(range.byteOffset)
            let length = Int(range.byteCount)
            guard offset <= self.receive.byteCount, length <= self.receive.byteCount - offset, length <= self.subAllocationSize,
                length >= 8
            else {
                status = .failure
                continue
            }
            if bytes.count < length { bytes = [UInt8](repeating: 0, count: length) }
            // One read of the shared bytes, then only the copy is looked at.
            guard (try? self.memory.read(at: self.receive.offset + offset, count: length, into: &bytes)) != nil else {
                status = .failure
                continue
            }
            if !self.message(bytes[0..<length], queue: queue) { status = .failure }
        }
        if status != .success { self.count(queue) { $0.malformed += 1 } }
        return status
    }

    /// One RNDIS message from the host. - Returns: whether it was well-formed.
    func message(_ bytes: ArraySlice<UInt8>, queue: UInt16) -> Bool {
        guard let length = try? RNDISMessage.messageLength(in: bytes) else { return false }
        var reader = WireReader(bytes)
        guard let type = try? reader.readUInt32() else { return false }
        if type == RNDISMessageType.packet.rawValue {
            // A broken PPI drops the packet (Linux's walk would spin on it: 11 §8).
            let base = bytes.startIndex
            guard let header = try? RNDISPacketHeader(parsing: bytes.prefix(length)),
                (try? PerPacketInfo.walk(bytes[(base + header.ppiOffset)..<(base + header.ppiOffset + header.ppiLength)]) { _, _ in }) != nil
            else { return false }
            let start = base + header.frameOffset
            let frame = bytes[start..<(start + header.frameLength)]
            let backend = self.state.withLock { $0.backend }
            backend?.send(frame)
            self.count(queue) { stats in
                stats.rxPackets += 1
                stats.rxBytes += UInt64(frame.count)
            }
            return true
        }
        guard let message = try? RNDISMessage(parsing: bytes.prefix(length)) else { return false }
        switch message {
        case .initializeComplete(let complete): self.answer(complete.requestID, message)
        case .queryComplete(let requestID, _, _), .setComplete(let requestID, _), .keepaliveComplete(let requestID, _):
            self.answer(requestID, message)
        case .indicateStatus(let status, _):
            if status == .mediaConnect { self.state.withLock { $0.linkUp = true } }
            if status == .mediaDisconnect { self.state.withLock { $0.linkUp = false } }
        default:
            break
        }
        return true
    }

    // MARK: Sub-channels and shutdown

    /// The host offered a sub-channel (after our SUBCHANNEL request): open it as one more queue.
    func openSubChannel(_ relid: UInt32) async {
        var options = ChannelOptions()
        options.rejectUnknownCompletions = false
        guard let channel = try? await self.bus.open(relid, pages: RingPages(each: max(2, self.configuration.ringPages)), options: options),
            let pump = try? PacketPump(channel: channel)
        else { return }
        let queue: UInt16 = self.state.withLock { state in
            let queue = UInt16(state.channels.count)
            state.channels[queue] = channel
            state.statistics[queue] = NetworkQueueStatistics()
            return queue
        }
        pump.deliver { [self] packet in await self.handle(packet, channel: channel, queue: queue) }
        await self.queuesChanged()
    }

    /// HALT, revoke both buffers, stop the backend (Linux's order, 11 §4); the bus closes the
    /// channels afterwards.
    func shutDown() async {
        _ = try? await self.rndisPost(.halt(requestID: 0))
        try? await Self.post(.revokeReceiveBuffer(id: NVSP.receiveBufferID), on: self.channel)
        try? await Self.post(.revokeSendBuffer(id: NVSP.sendBufferID), on: self.channel)
        let (backend, tasks, waiters, requests): (
            (any NetworkBackend)?, [Task<Void, Never>], [CheckedContinuation<Int?, Never>], [CheckedContinuation<RNDISMessage?, Never>]
        ) = self.state.withLock { state in
            state.closed = true
            defer {
                state.sectionWaiters = []
                state.requests = [:]
                state.tasks = []
                state.queueWaiters = []
            }
            for waiter in state.queueWaiters { waiter.resume() }
            return (state.backend, state.tasks, state.sectionWaiters, Array(state.requests.values))
        }
        for task in tasks { task.cancel() }
        for waiter in waiters { waiter.resume(returning: nil) }
        for request in requests { request.resume(returning: nil) }
        backend?.close()
    }

    /// An RNDIS message that gets no answer (HALT).
    func rndisPost(_ message: RNDISMessage) async throws {
        let bytes = message.encode()
        try await self.sendControl(bytes.count, in: try await self.placeControl(bytes))
    }
}
