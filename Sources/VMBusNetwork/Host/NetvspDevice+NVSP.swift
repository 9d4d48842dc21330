import VMBusChannel
import VMBusHost
import VMBusMemory
import VMBusWire

extension NetvspDevice {
    /// The most bytes one SEND_RNDIS_PKT may carry (section plus GPA-direct ranges): a 64 KiB
    /// LSO frame with headers, with room to spare.
    static let maximumMessageBytes = 128 << 10

    /// One NVSP message from the guest (11 §3–§4, §7.4).
    func message(
        _ payload: ArraySlice<UInt8>, ranges: [GpaRange], descriptor: PacketDescriptor, channel: Channel, queue: UInt16
    ) async -> Outcome {
        let message: NVSPMessage
        do { message = try NVSPMessage(parsing: payload) } catch { return .fatal("NVSP: \(error)") }
        let id = descriptor.transactionID
        let wantsCompletion = descriptor.flags.contains(.completionRequested)
        let version = self.state.withLock { $0.version }
        // Set-up happens on the primary only, INIT first.
        if queue != 0, !message.isDataPath { return .fatal("set-up message \(message.type.rawValue) on a sub-channel") }
        if version == nil, message.type != .initialize { return .fatal("message \(message.type.rawValue) before INIT") }
        if let breach = self.checkOrder(message, version: version) { return .fatal(breach) }
        switch message {
        case .initialize(let minimum, let maximum):
            let chosen = NVSPVersion.guestOrder.first { $0 >= minimum && $0 <= maximum }
            if let chosen { self.state.withLock { $0.version = chosen } }
            // OpenVMM answers an unknown version with status 0 and waits for the next INIT.
            let answer = NVSPMessage.initializeComplete(
                negotiated: chosen == .v1 ? 2 : 0xFFFF_FFFF, maximumMDLChainLength: 34, status: chosen == nil ? .none : .success)
            return await self.complete(answer, id: id, on: channel)
        case .ndisConfig(let mtu, _):
            // A frame MTU outside Ethernet's 1514…9216 is treated as 1514 (OpenVMM).
            self.state.withLock { $0.frameMTU = (1514...9216).contains(Int(mtu)) ? Int(mtu) : 1514 }
            return wantsCompletion ? await self.completeEmpty(id, on: channel) : .ok
        case .ndisVersion:
            return wantsCompletion ? await self.completeEmpty(id, on: channel) : .ok
        case .receiveBuffer(let gpadl, _):
            return await self.receiveBuffer(gpadl, id: id, channel: channel)
        case .sendBuffer(let gpadl, _):
            let mapping = self.state.withLock { $0.bus }?.gpadlMapping(gpadl)
            let ok = mapping.map { $0.size >= Self.sectionSize } ?? false
            if ok, let mapping { self.state.withLock { $0.sendBuffer = (mapping, gpadl) } }
            return await self.complete(
                .sendBufferComplete(status: ok ? .success : .failure, sectionSize: ok ? UInt32(Self.sectionSize) : 0), id: id, on: channel)
        case .revokeReceiveBuffer:
            self.state.withLock { $0.receive = nil }
            return .ok
        case .revokeSendBuffer:
            self.state.withLock { $0.sendBuffer = nil }
            return .ok
        case .rndisPacket(let channelType, let index, let bytes):
            return await self.rndisPacket(
                channelType: channelType, index: index, bytes: bytes, ranges: ranges, id: id, channel: channel, queue: queue)
        case .subchannel(let operation, let count):
            return await self.subchannels(operation: operation, count: count, id: id, channel: channel)
        case .switchDataPath:
            return wantsCompletion ? await self.completeEmpty(id, on: channel) : .ok
        case .oidQueryEx:
            return await self.complete(.oidQueryExComplete(status: RNDISStatus.notSupported.rawValue, bytes: 0), id: id, on: channel)
        case .initializeComplete, .receiveBufferComplete, .sendBufferComplete, .rndisPacketComplete, .indirectionTable,
            .vfAssociation, .oidQueryExComplete, .other:
            return .fatal("unexpected NVSP message \(message.type.rawValue) from the guest")
        }
    }

    /// The order of 11 §4, as OpenVMM holds a guest to it: one INIT that succeeded, each of
    /// NDIS_CONFIG, NDIS_VER and the two buffers at most once, NDIS_CONFIG before the buffers
    /// from NVSP 2 on. - Returns: why the message breaks it, or `nil`.
    func checkOrder(_ message: NVSPMessage, version: NVSPVersion?) -> String? {
        let type = message.type
        switch message {
        case .initialize:
            return version == nil ? nil : "a second INIT after version \(version!) was agreed"
        case .ndisConfig, .ndisVersion, .receiveBuffer, .sendBuffer:
            return self.state.withLock { state -> String? in
                if (type == .sendReceiveBuffer || type == .sendSendBuffer), let version, version >= .v2,
                    !state.setUpSeen.contains(NVSPMessageType.sendNDISConfig.rawValue)
                {
                    return "a buffer before NDIS_CONFIG at NVSP \(version)"
                }
                guard state.setUpSeen.insert(type.rawValue).inserted else { return "a second set-up message \(type.rawValue)" }
                return nil
            }
        default:
            return nil
        }
    }

    /// SEND_RECV_BUF: sub-allocations of 256 + frame MTU + 36 bytes (OpenVMM's size).
    func receiveBuffer(_ gpadl: UInt32, id: UInt64, channel: Channel) async -> Outcome {
        let (bus, frameMTU) = self.state.withLock { ($0.bus, $0.frameMTU) }
        let size = 256 + frameMTU + 36
        guard let mapping = bus?.gpadlMapping(gpadl), let slots = ReceiveSlots(memory: mapping, gpadl: gpadl, subAllocationSize: size) else {
            return await self.complete(.receiveBufferComplete(status: .failure, sections: []), id: id, on: channel)
        }
        let section = NVSPReceiveSection(subAllocationSize: UInt32(size), subAllocationCount: UInt32(slots.count))
        self.state.withLock { $0.receive = slots }
        return await self.complete(.receiveBufferComplete(status: .success, sections: [section]), id: id, on: channel)
    }

    /// SUBCHANNEL: grants the request if it fits (11 §6) and offers the sub-channels.
    func subchannels(operation: UInt32, count: UInt32, id: UInt64, channel: Channel) async -> Outcome {
        let (bus, primary, version) = self.state.withLock { ($0.bus, $0.primaryRelid, $0.version) }
        guard operation == 1, count >= 1, Int(count) < self.maximumQueues, let bus, let primary, let version, version >= .v5 else {
            return await self.complete(.subchannel(operationOrStatus: NVSPStatus.failure.rawValue, count: 0), id: id, on: channel)
        }
        // The answer first: Linux waits for it before it looks for the offers.
        let outcome = await self.complete(.subchannel(operationOrStatus: NVSPStatus.success.rawValue, count: count), id: id, on: channel)
        self.state.withLock { $0.grantedSubChannels = Int(count) }
        bus.enableSubChannels(primary: primary, count: UInt16(count))
        return outcome
    }

    // MARK: RNDIS packets from the guest

    func rndisPacket(
        channelType: UInt32, index: UInt32, bytes: UInt32, ranges: [GpaRange], id: UInt64, channel: Channel, queue: UInt16
    ) async -> Outcome {
        var message: [UInt8] = []
        let length: Int
        switch self.gather(index: index, bytes: bytes, ranges: ranges, into: &message) {
        case .success(let gathered): length = gathered
        case .failure(.fatal(let why)): return .fatal(why)
        case .failure(.malformed):
            self.count(queue) { $0.malformed += 1 }
            return await self.complete(.rndisPacketComplete(status: .failure), id: id, on: channel)
        }
        if channel.isCapturing {
            let origin = Self.origin(index: index, ranges: ranges, sendGpadl: self.state.withLock { $0.sendBuffer?.gpadl ?? 0 })
            channel.recordBufferData(outgoing: false, gpadl: origin.gpadl, offset: origin.offset, message[0..<length])
        }
        if channelType == NVSP.controlChannel {
            guard queue == 0 else { return .fatal("RNDIS control message on a sub-channel") }
            guard let status = await self.control(message[0..<length], channel: channel) else {
                return .fatal("RNDIS control message a guest must not send")
            }
            if status != .success { self.count(queue) { $0.malformed += 1 } }
            return await self.complete(.rndisPacketComplete(status: status), id: id, on: channel)
        }
        let sent = self.transmit(&message, count: length)
        self.count(queue) { stats in
            stats.txPackets += UInt64(sent.frames)
            stats.txBytes += UInt64(sent.bytes)
            stats.txLargeSegments += UInt64(sent.large)
            if !sent.ok { stats.malformed += 1 }
        }
        return await self.complete(.rndisPacketComplete(status: sent.ok ? .success : .failure), id: id, on: channel)
    }

    /// Where a gathered RNDIS message came from, for its capture record: its send section,
    /// or (no section) the guest physical address of its first range.
    static func origin(index: UInt32, ranges: [GpaRange], sendGpadl: UInt32) -> (gpadl: UInt32, offset: UInt64) {
        if index != NVSP.noSection { return (sendGpadl, UInt64(index) * UInt64(Self.sectionSize)) }
        return (0, ranges.first.map { ($0.pfns.first ?? 0) * UInt64(GpaRange.pageSize) + UInt64($0.byteOffset) } ?? 0)
    }

    enum GatherFailure: Error {
        /// Completed with a failure; the channel goes on.
        case malformed
        /// Breaks the protocol: the channel stops.
        case fatal(String)
    }

    /// The logical message: the send section's bytes, then the GPA-direct ranges' (11 §7.4),
    /// copied into `message` (reused: grown, never shrunk). - Returns: its length.
    func gather(index: UInt32, bytes: UInt32, ranges: [GpaRange], into message: inout [UInt8]) -> Result<Int, GatherFailure> {
        var length = 0
        if index != NVSP.noSection {
            guard let buffer = self.state.withLock({ $0.sendBuffer?.memory }) else { return .failure(.fatal("send section without a send buffer")) }
            let offset = UInt64(index) * UInt64(Self.sectionSize)
            guard bytes > 0, bytes <= UInt32(Self.sectionSize), offset + UInt64(bytes) <= UInt64(buffer.size) else {
                return .failure(.fatal("send section \(index) (\(bytes) bytes) outside the send buffer"))
            }
            length = Int(bytes)
            if message.count < length { message = [UInt8](repeating: 0, count: max(length, Self.sectionSize)) }
            do { try buffer.read(at: Int(offset), count: length, into: &message) } catch {
                return .failure(.fatal("send section: \(error)"))
            }
        }
        if !ranges.isEmpty {
            let total = ranges.reduce(0) { $0 + Int($1.byteCount) }
            guard total > 0, length + total <= Self.maximumMessageBytes, let bus = self.state.withLock({ $0.bus }) else {
                return .failure(.malformed)
            }
            if message.count < length + total { message += [UInt8](repeating: 0, count: length + total - message.count) }
            for range in ranges {
                do { try bus.readGuest(range, into: &message, at: length) } catch { return .failure(.malformed) }
                length += Int(range.byteCount)
            }
        }
        return length == 0 ? .failure(.malformed) : .success(length)
    }

    /// Data: one or more PACKETs back to back (a batch), each frame to the backend with the
    /// offloads its PPIs ask for (11 §5.4). Any bad one fails the whole send (the frames before
    /// it went out, as on OpenVMM). `message` is a private copy: offload fix-ups are made in it.
    /// - Returns: whether all were well-formed, and the frames and bytes sent.
    func transmit(_ message: inout [UInt8], count: Int) -> (ok: Bool, frames: Int, bytes: Int, large: Int) {
        var start = 0
        var frames = 0
        var sent = 0
        var large = 0
        let offloads = self.backend.offloads
        while start < count {
            let rest = message[start..<count]
            // Every PPI must be whole (OpenVMM: PPI size 0 or an overrun fails the packet).
            var checksum: UInt32?
            var lso: UInt32?
            var vlan: UInt32?
            guard let header = try? RNDISPacketHeader(parsing: rest),
                (try? PerPacketInfo.walk(rest[(start + header.ppiOffset)..<(start + header.ppiOffset + header.ppiLength)]) { type, data in
                    var reader = WireReader(data)
                    guard let value = try? reader.readUInt32() else { return }
                    if type == .checksum { checksum = value }
                    if type == .lso { lso = value }
                    if type == .vlan { vlan = value }
                }) != nil
            else { return (false, frames, sent, large) }
            let frame = (start + header.frameOffset)..<(start + header.frameOffset + header.frameLength)
            guard var offload = LargeSend.offload(checksum: checksum, lso: lso, frame: &message, range: frame, backend: offloads) else {
                return (false, frames, sent, large)
            }
            if let vlan {
                // The tag the guest moved into a PPI (11 §5.4) goes back into the frame, after
                // the MAC addresses: 802.1Q, priority and CFI above the VLAN id.
                guard frame.count >= 14 else { return (false, frames, sent, large) }
                let tci = UInt16(truncatingIfNeeded: (vlan & 0x7) << 13 | (vlan >> 3 & 1) << 12 | (vlan >> 4) & 0xFFF)
                var tagged = Array(message[frame.lowerBound..<(frame.lowerBound + 12)])
                tagged += [0x81, 0x00, UInt8(tci >> 8), UInt8(truncatingIfNeeded: tci)]
                tagged += message[(frame.lowerBound + 12)..<frame.upperBound]
                offload.checksumStart = offload.checksumStart.map { $0 + 4 }
                self.backend.send(tagged.span, offload: offload)
            } else {
                self.backend.send(message[frame].span, offload: offload)
            }
            frames += 1
            sent += header.frameLength
            if offload.segmentation != nil { large += 1 }
            start += header.messageLength
            // Batches end with zero padding up to the alignment, counted in the last msg_len.
            if message[start..<count].allSatisfy({ $0 == 0 }) { break }
        }
        return (frames > 0, frames, sent, large)
    }

    // MARK: Answers

    func complete(_ message: NVSPMessage, id: UInt64, on channel: Channel) async -> Outcome {
        let bytes = message.encode(size: self.messageSize)
        do {
            // Straight into the ring when there is room (no suspension per packet); else wait.
            if try !channel.trySend(completion: bytes[...], transactionID: id) {
                try await channel.send(completion: bytes[...], transactionID: id)
            }
        } catch {
            return .fatal("cannot answer: \(error)")
        }
        return .ok
    }

    func completeEmpty(_ id: UInt64, on channel: Channel) async -> Outcome {
        do { try await channel.send(completion: [][...], transactionID: id) } catch { return .fatal("cannot answer: \(error)") }
        return .ok
    }
}

extension NVSPMessage {
    /// Messages a sub-channel may carry: data and its completions.
    var isDataPath: Bool {
        switch self {
        case .rndisPacket, .rndisPacketComplete: return true
        default: return false
        }
    }
}
