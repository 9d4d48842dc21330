import VMBusChannel
import VMBusGuest
import VMBusMemory
import VMBusWire

extension NetvscNIC {
    /// A packet the data path does not take, in order: the host's send table; anything else
    /// is malformed.
    func handle(_ packet: ChannelPacket, channel: Channel, queue: UInt16) async {
        guard case .inBand(_, let payload)? = try? packet.parse() else {
            self.count(queue) { $0.malformed += 1 }
            return
        }
        if case .indirectionTable(let table)? = try? NVSPMessage(parsing: payload) {
            self.state.withLock { state in
                state.indirection = table
                state.sendTableReceived = true
            }
            await self.queuesChanged()
        }
    }

    /// One range of a transfer-page packet (11 §7.3, §8): one RNDIS message in the receive
    /// buffer. - Returns: whether it lay inside a sub-allocation and was well-formed.
    func received(_ range: TransferPageRange, channel: Channel, scratch: inout [UInt8], run: inout RunCounts) -> Bool {
        let offset = Int(range.byteOffset)
        let length = Int(range.byteCount)
        guard offset <= self.receive.byteCount, length <= self.receive.byteCount - offset, length <= self.subAllocationSize, length >= 8
        else { return false }
        if scratch.count < length { scratch = [UInt8](repeating: 0, count: max(length, self.subAllocationSize)) }
        // One read of the shared bytes, then only the copy is looked at.
        guard (try? self.memory.read(at: self.receive.offset + offset, count: length, into: &scratch)) != nil else { return false }
        if channel.isCapturing { channel.recordBufferData(outgoing: false, gpadl: self.gpadls.receive, offset: UInt64(offset), scratch[0..<length]) }
        return self.message(scratch[0..<length], run: &run)
    }

    /// One RNDIS message from the host. - Returns: whether it was well-formed.
    func message(_ bytes: ArraySlice<UInt8>, run: inout RunCounts) -> Bool {
        guard let length = try? RNDISMessage.messageLength(in: bytes) else { return false }
        var reader = WireReader(bytes)
        guard let type = try? reader.readUInt32() else { return false }
        if type == RNDISMessageType.packet.rawValue {
            // A broken PPI drops the packet (Linux's walk would spin on it: 11 §8).
            let base = bytes.startIndex
            var checksum: UInt32 = 0
            var packetID: UInt32?
            guard let header = try? RNDISPacketHeader(parsing: bytes.prefix(length)),
                (try? PerPacketInfo.walk(bytes[(base + header.ppiOffset)..<(base + header.ppiOffset + header.ppiLength)]) { type, data in
                    var reader = WireReader(data)
                    guard let value = try? reader.readUInt32() else { return }
                    if type == .checksum { checksum = value }
                    if type == .packetID { packetID = value }
                }) != nil
            else { return false }
            let start = base + header.frameOffset
            let piece = bytes[start..<(start + header.frameLength)]
            // The host's word that the checksums are good (11 §5.4): nothing to check again.
            let status = ChecksumInfo(rawValue: checksum)
            let offload = FrameOffload(checksumVerified: !status.isDisjoint(with: [.rxTCPSucceeded, .rxUDPSucceeded]))
            // A fragment of a frame over several sub-allocations (RSC): joined, in order, and
            // handed on whole with the last (a fragment out of order drops the frame).
            if let packetID, packetID & 0x0100 != 0 {
                let flags = (packetID >> 8) & 0xFF
                if flags & 0x2 != 0 {
                    run.assembly.removeAll(keepingCapacity: true)
                    run.assembling = true
                    run.assemblyOffload = offload
                }
                guard run.assembling, run.assembly.count + piece.count <= Self.largestFrame else {
                    run.assembling = false
                    return false
                }
                run.assembly.append(contentsOf: piece)
                guard flags & 0x4 != 0 else { return true }
                run.assembling = false
                let backend = self.state.withLock { $0.backend }
                backend?.send(run.assembly.span, offload: run.assemblyOffload)
                run.frames += 1
                run.bytes += UInt64(run.assembly.count)
                return true
            }
            let backend = self.state.withLock { $0.backend }
            backend?.send(piece.span, offload: offload)
            run.frames += 1
            run.bytes += UInt64(header.frameLength)
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
        guard let channel = try? await self.bus.open(relid, pages: RingPages(each: max(2, self.configuration.ringPages)), options: options)
        else { return }
        let queue: UInt16 = self.state.withLock { state in
            let queue = UInt16(state.channels.count)
            state.channels[queue] = channel
            state.statistics[queue] = NetworkQueueStatistics()
            return queue
        }
        GuestQueue(channel: channel, queue: queue).attach(self)
        await self.queuesChanged()
    }

    /// HALT, revoke both buffers, stop the backend (Linux's order, 11 §4); the bus closes the
    /// channels afterwards.
    func shutDown() async {
        _ = try? await self.rndisPost(.halt(requestID: 0))
        try? await Self.post(.revokeReceiveBuffer(id: NVSP.receiveBufferID), on: self.channel)
        try? await Self.post(.revokeSendBuffer(id: NVSP.sendBufferID), on: self.channel)
        let (backend, waiters, requests, large): (
            (any NetworkBackend)?, [CheckedContinuation<Int?, Never>], [CheckedContinuation<RNDISMessage?, Never>], GuestBuffer?
        ) = self.state.withLock { state in
            state.closed = true
            defer {
                state.sectionWaiters = []
                state.requests = [:]
                state.queueWaiters = []
            }
            for waiter in state.queueWaiters { waiter.resume() }
            return (state.backend, state.sectionWaiters, Array(state.requests.values), state.large)
        }
        for waiter in waiters { waiter.resume(returning: nil) }
        for request in requests { request.resume(returning: nil) }
        backend?.attach(nil)
        backend?.close()
        // The buffers go back once the bus closed the channel (after this returns): the
        // GPADLs torn down first, as Linux does after close, so the host has let go of them.
        let (bus, channel, gpadls) = (self.bus, self.channel, self.gpadls)
        let buffers = [self.receive, self.send] + (large.map { [$0] } ?? [])
        self.released.store(Task {
            _ = await channel.closed()
            for handle in [gpadls.receive, gpadls.send] { try? await bus.teardownGpadl(handle) }
            for buffer in buffers { bus.memory.release(buffer) }
        })
    }

    /// Waits until a NIC that was shut down gave its buffers back to guest memory.
    public func waitUntilReleased() async { await self.released.load()?.value }

    /// An RNDIS message that gets no answer (HALT).
    func rndisPost(_ message: RNDISMessage) async throws {
        let bytes = message.encode()
        try await self.sendControl(bytes.count, in: try await self.placeControl(bytes))
    }
}
