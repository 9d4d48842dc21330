import VMBusChannel
import VMBusHost
import VMBusMemory
import VMBusWire

extension StorvspDevice {
    /// What the handler does with one packet.
    enum Accepted {
        /// Answered now: the completion to send.
        case reply(id: UInt64, bytes: [UInt8], counts: Counted)
        /// Handed to a disk worker; it completes later.
        case started
        /// The guest broke the protocol: stop the channel.
        case fatal(String)
    }

    /// What a completed command adds to the counters.
    struct Counted {
        var read = 0
        var written = 0
        var flush = false
        var discard = false
        var failed = false
        var isIO = false
        var nanoseconds: UInt64 = 0

        func apply(to stats: inout StorageQueueStatistics) {
            guard self.isIO else { return }
            stats.requests += 1
            if self.read > 0 {
                stats.reads += 1
                stats.bytesRead += UInt64(self.read)
            }
            if self.written > 0 {
                stats.writes += 1
                stats.bytesWritten += UInt64(self.written)
            }
            if self.flush { stats.flushes += 1 }
            if self.discard { stats.discards += 1 }
            if self.failed { stats.failed += 1 }
            stats.latency.record(nanoseconds: self.nanoseconds)
        }
    }

    /// One run of a channel's handler: send what is owed, then read requests while fewer than
    /// the queue depth are running and the completions fit the ring (OpenVMM reads a request
    /// only with room for its answer, 10 §7).
    func run(_ queue: StorvspQueue) {
        while true {
            let (taken, inFlight, workerCounts) = queue.take()
            var owed = taken
            var counts = workerCounts
            defer { if counts != StorageQueueStatistics() { self.count(queue.index) { $0.merge(counts) } } }
            guard self.send(&owed, on: queue) else { return }
            let limit = queue.depth - inFlight
            guard limit > 0 else { return }
            var fault: String?
            let drained: Int
            do {
                drained = try queue.channel.drainPackets(limit: limit) { descriptor, packet in
                    guard fault == nil else { return }
                    switch self.accept(descriptor, packet, queue: queue) {
                    case .reply(let id, let bytes, let counted):
                        owed.append((id, bytes))
                        counted.apply(to: &counts)
                    case .started: break
                    case .fatal(let why): fault = why
                    }
                }
            } catch {
                return
            }
            if let fault {
                counts.malformed += 1
                counts.lastFault = fault
                queue.channel.close(.closedLocally)
                return
            }
            guard self.send(&owed, on: queue), drained == limit else { return }
        }
    }

    /// Sends completions in one batch. What does not fit goes back to the queue and the guest
    /// is asked to signal once it made room (`pending_send_sz`), which runs the handler again.
    /// - Returns: whether everything went (or the channel closed: nothing more to do but stop).
    func send(_ owed: inout StorvspQueue.Owed, on queue: StorvspQueue) -> Bool {
        while !owed.isEmpty {
            var sent = 0
            do {
                _ = try queue.channel.sendBatch { (writer: inout ChannelBatchWriter) throws(ChannelError) in
                    for (id, bytes) in owed {
                        guard try writer.write(completion: bytes[...], transactionID: id) else { break }
                        sent += 1
                    }
                }
            } catch {
                return false
            }
            owed.removeFirst(sent)
            guard !owed.isEmpty else { return true }
            let room = try? queue.channel.requestRoom(for: PacketSize.inBand(payload: StorageProtocol.packetSize))
            guard room == true else {
                queue.putBack(owed)
                return false
            }
        }
        return true
    }

    /// What a guest may ask (10 §2.2), Fibre Channel's FCHBA_DATA aside (not a SCSI
    /// controller's).
    static let guestOperations: Set<StorageOperation> = [
        .executeSRB, .resetLUN, .resetAdapter, .resetBus, .beginInitialization, .endInitialization, .queryProtocolVersion,
        .queryProperties, .createSubChannels,
    ]

    /// Checks one packet and answers it or starts it (10 §8's rules).
    func accept(_ descriptor: PacketDescriptor, _ packet: Span<UInt8>, queue: StorvspQueue) -> Accepted {
        switch descriptor.type {
        case .dataInBand, .dataUsingGpaDirect: break
        case .completion: return .fatal("a completion from the guest (id \(descriptor.transactionID))")
        default: return .fatal("unexpected packet type \(descriptor.type)")
        }
        guard descriptor.flags.contains(.completionRequested) else { return .fatal("a request without the completion flag") }
        var bytes: [UInt8] = []
        bytes.append(span: packet)
        let payload: ArraySlice<UInt8>
        let ranges: [GpaRange]
        switch try? VMBusPacket.parse(bytes[...], strict: false) {
        case .inBand(_, let body)?:
            payload = body
            ranges = []
        case .gpaDirect(let direct)?:
            payload = direct.payload
            ranges = direct.ranges
        default:
            return .fatal("malformed packet")
        }
        let request: StoragePacket
        do { request = try StoragePacket(parsing: payload) } catch { return .fatal("vstor packet: \(error)") }
        // Completions, unsolicited host packets and unknown operations from a guest break the
        // protocol (10 §8: OpenVMM's worker stops).
        guard Self.guestOperations.contains(request.operation) else {
            return .fatal("operation \(request.operation.rawValue) is not a guest request")
        }
        let replySize = StorageProtocol.replySize(forRequestOfSize: payload.count)
        let id = descriptor.transactionID
        func answer(_ status: NTStatus, _ body: StoragePacket.Body = .none) -> Accepted {
            .reply(id: id, bytes: StoragePacket.completion(status: status, body: body).encode(size: replySize), counts: Counted())
        }
        guard request.operation == .executeSRB else {
            guard ranges.isEmpty else { return .fatal("set-up request with a data buffer") }
            // Set-up belongs to the primary (10 §3); a sub-channel has nothing to set up.
            guard queue.index == 0 else { return answer(.invalidDeviceState) }
            let (bus, reply) = self.state.withLock { ($0.bus, $0.negotiation.receive(request)) }
            if let count = reply.createSubChannels, count > 0 {
                bus?.enableSubChannels(primary: queue.channel.relid, count: count)
            }
            return answer(reply.status, reply.body)
        }
        guard case .request(let scsi) = request.body else { return .fatal("EXECUTE_SRB without a request") }
        // Sub-channels serve nothing until the primary is ready (OpenVMM).
        guard self.isReady else { return answer(.invalidDeviceState) }
        return self.execute(scsi, ranges: ranges, id: id, replySize: replySize, queue: queue)
    }
}
