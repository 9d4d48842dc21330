import VMBusMemory
import VMBusRing
import VMBusWire

extension Channel {
    /// Reads what is in the ring now without waiting and without copying: `body` gets each
    /// packet's descriptor and payload in place (the payload is copied only when it wraps on a
    /// singly mapped ring). The bytes are shared memory: read each once. `body` runs outside the
    /// receive lock but holds the ring, so it must not receive from this channel itself.
    /// Completions answering ``request(_:)``s are routed to them, after the walk.
    /// - Returns: the packets handed to `body`.
    public func drain(limit: Int = .max, _ body: (PacketDescriptor, Span<UInt8>) -> Void) throws(ChannelError) -> Int {
        try self.walk(limit: limit, wholePackets: false, body)
    }

    /// As ``drain(limit:_:)``, but `body` gets each whole packet in place, descriptor first
    /// (take the descriptor from its first argument, validated from a private copy, not from
    /// the shared bytes), and gets completions in place as they come, unless they answer a
    /// ``request(_:)`` of this channel — a device that completes its own transaction ids
    /// (receive slots, sections) sees them in order with everything else, with no copy.
    public func drainPackets(limit: Int = .max, _ body: (PacketDescriptor, Span<UInt8>) -> Void) throws(ChannelError) -> Int {
        try self.walk(limit: limit, wholePackets: true, body)
    }

    /// Whether `id` is a request of this channel still waiting for its completion.
    func awaitsCompletion(_ id: UInt64) -> Bool { self.requests.withLock { $0.table.contains(id) } }

    func walk(limit: Int, wholePackets: Bool, _ body: (PacketDescriptor, Span<UInt8>) -> Void) throws(ChannelError) -> Int {
        enum Outcome {
            case done(Int, signal: Bool)
            case corrupted(RingError)
            case closed(CloseReason)
        }
        // The ring is taken out of the lock for the walk (``readerActive`` keeps other readers
        // away), so `body` never runs under the receive lock.
        let taken: Result<IncomingRing<SharedRingMemory>, ChannelError>? = self.receiver.withLock { state in
            if let reason = state.closed { return .failure(.closed(reason)) }
            guard !state.readerActive else { return nil }
            state.readerActive = true
            return .success(state.ring)
        }
        guard let taken else { throw ChannelError.readerBusy }
        var ring = try taken.get()
        var scratch: [UInt8] = []
        var answers: [ChannelPacket] = []
        var count = 0
        let outcome: Outcome
        do throws(RingError) {
            // A hold stops the walk at the next packet boundary.
            while count < limit, !self.isHeld.load(ordering: .acquiring), let packet = try ring.next() {
                if let capture = self.capture { capture.received(packet, from: ring, relid: self.relid) }
                if packet.descriptor.type == .completion && (!wholePackets || self.awaitsCompletion(packet.descriptor.transactionID)) {
                    var bytes: [UInt8] = []
                    ring.copyPacket(packet, into: &bytes)
                    answers.append(ChannelPacket(descriptor: packet.descriptor, bytes: bytes[...]))
                    continue
                }
                count += 1
                if wholePackets {
                    if ring.withPacket(packet, { body(packet.descriptor, $0) }) == nil {
                        ring.copyPacket(packet, into: &scratch)
                        body(packet.descriptor, scratch.span)
                    }
                } else if ring.withPayload(of: packet, { body(packet.descriptor, $0) }) == nil {
                    ring.copyPayload(of: packet, into: &scratch)
                    body(packet.descriptor, scratch.span)
                }
            }
            outcome = .done(count, signal: try ring.commit())
        } catch {
            outcome = .corrupted(error)
        }
        let finished = ring
        self.receiver.withLock { state in
            state.ring = finished
            state.readerActive = false
        }
        switch outcome {
        case .done(let count, let signal):
            if signal { self.doorbell.ring() }
            for answer in answers where !self.routeCompletion(answer) {
                // A completion nobody asked for, delivered because the options say so.
                if wholePackets { body(answer.descriptor, answer.bytes.span) } else { body(answer.descriptor, answer.payload.span) }
            }
            return count
        case .corrupted(let error): throw ChannelError.closed(self.fail(error))
        case .closed(let reason): throw ChannelError.closed(reason)
        }
    }
}
