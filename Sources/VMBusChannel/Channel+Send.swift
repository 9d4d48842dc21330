import VMBusMemory
import VMBusRing
import VMBusWire

/// How a GPA-direct packet lays out its ranges (03 §5): the three forms Linux sends.
public enum GpaDirectForm: Hashable, Sendable {
    /// Up to 32 single-page ranges (`vmbus_sendpacket_pagebuffer`).
    case pageBuffer
    /// One range of up to 32 pages (`vmbus_sendpacket_multipagebuffer`).
    case multipage
    /// Any ranges, back to back (`vmbus_sendpacket_mpb_desc`).
    case mpb
}

/// Writes several packets under one lock with one index publication and at most one signal
/// (02 §7.1 batching). Obtained from ``Channel/sendBatch(_:)``.
public struct ChannelBatchWriter: ~Copyable {
    var ring: OutgoingRing<SharedRingMemory>
    /// Packets written so far.
    public private(set) var count = 0
    var failure: RingError?
    let capture: CaptureTap?
    let relid: UInt32

    init(ring: consuming OutgoingRing<SharedRingMemory>, capture: CaptureTap?, relid: UInt32) {
        self.ring = ring
        self.capture = capture
        self.relid = relid
    }

    /// Writes an in-band packet; `false` when the ring has no room left (nothing is written).
    public mutating func write(
        inBand payload: ArraySlice<UInt8>, transactionID: UInt64 = 0, completionRequested: Bool = false
    ) throws(ChannelError) -> Bool {
        try self.write(type: .dataInBand, flags: completionRequested ? .completionRequested : [], transactionID, payload)
    }

    /// Writes a packet already encoded by `PacketEncoder` (any type); `false` when the ring
    /// has no room left.
    public mutating func write(encoded packet: ArraySlice<UInt8>) throws(ChannelError) -> Bool {
        try self.write(length: packet.count) { ring throws(RingError) in try ring.write(packet: packet) }
    }

    /// Writes an in-band packet whose payload is an 8-byte word then `payload` (a pipe
    /// packet, 07 §4); `false` when the ring has no room left.
    public mutating func write(leadingWord: UInt64, payload: ArraySlice<UInt8>) throws(ChannelError) -> Bool {
        try self.write(length: PacketSize.inBand(payload: 8 + payload.count)) { ring throws(RingError) in
            try ring.write(leadingWord: leadingWord, payload: payload)
        }
    }

    /// Writes a completion for `transactionID`; `false` when the ring has no room left.
    public mutating func write(completion payload: ArraySlice<UInt8>, transactionID: UInt64) throws(ChannelError) -> Bool {
        try self.write(type: .completion, flags: [], transactionID, payload)
    }

    mutating func write(type: PacketType, flags: PacketFlags, _ transactionID: UInt64, _ payload: ArraySlice<UInt8>)
        throws(ChannelError) -> Bool
    {
        try self.write(length: PacketSize.inBand(payload: payload.count)) { ring throws(RingError) in
            try ring.write(type: type, flags: flags, transactionID: transactionID, payload: payload)
        }
    }

    /// Every write of a batch: refuses a `length`-byte packet that can never fit, writes it
    /// with `write`, counts it, and keeps a ring failure for ``Channel/sendBatch(_:)``.
    mutating func write(length: Int, _ write: (inout OutgoingRing<SharedRingMemory>) throws(RingError) -> Bool)
        throws(ChannelError) -> Bool
    {
        guard length <= self.ring.maximumPacketLength else {
            throw ChannelError.packetTooLarge(length: length, limit: self.ring.maximumPacketLength)
        }
        do {
            guard try write(&self.ring) else { return false }
        } catch {
            self.failure = error
            throw ChannelError.closed(.ringCorrupted(error))
        }
        if let capture = self.capture { capture.sent(self.ring, relid: self.relid, length: length) }
        self.count += 1
        return true
    }
}

extension Channel {
    /// What one attempt to write did.
    enum Attempt {
        case written(signal: Bool)
        case full
        case corrupted(RingError)
    }

    // MARK: Sending one packet

    /// Sends an in-band packet, waiting for room if the ring is full (the reader is asked
    /// to signal through `pending_send_sz`, 02 §8).
    /// - Throws: ``ChannelError/packetTooLarge(length:limit:)`` for a packet that can never
    ///   fit; ``ChannelError/closed(_:)`` once the channel closed.
    public func send(
        inBand payload: ArraySlice<UInt8>, transactionID: UInt64 = 0, completionRequested: Bool = false
    ) async throws(ChannelError) {
        let flags: PacketFlags = completionRequested ? .completionRequested : []
        try await self.send(length: PacketSize.inBand(payload: payload.count)) { ring throws(RingError) in
            try ring.write(type: .dataInBand, flags: flags, transactionID: transactionID, payload: payload)
        }
    }

    /// Sends a completion answering `transactionID`, waiting for room if needed.
    public func send(completion payload: ArraySlice<UInt8>, transactionID: UInt64) async throws(ChannelError) {
        try await self.send(length: PacketSize.inBand(payload: payload.count)) { ring throws(RingError) in
            try ring.write(type: .completion, flags: [], transactionID: transactionID, payload: payload)
        }
    }

    /// Sends an in-band packet whose payload is an 8-byte word and then `payload` (a pipe
    /// packet, 07 §4), waiting for room; nothing is joined or allocated.
    public func send(leadingWord: UInt64, payload: ArraySlice<UInt8>) async throws(ChannelError) {
        try await self.send(length: PacketSize.inBand(payload: 8 + payload.count)) { ring throws(RingError) in
            try ring.write(leadingWord: leadingWord, payload: payload)
        }
    }

    /// As ``send(leadingWord:payload:)``, but waiting for room only until `deadline` and only
    /// while the task is not cancelled.
    /// - Throws: ``ChannelError/timedOut`` or ``ChannelError/cancelled`` (the packet was not
    ///   written; the channel stays open), and as ``send(leadingWord:payload:)``.
    public func send(leadingWord: UInt64, payload: ArraySlice<UInt8>, deadline: ContinuousClock.Instant?) async throws(ChannelError) {
        try await self.send(length: PacketSize.inBand(payload: 8 + payload.count), deadline: deadline) { ring throws(RingError) in
            try ring.write(leadingWord: leadingWord, payload: payload)
        }
    }

    /// Free bytes in the outgoing ring now (the peer may free more at any time).
    public func outgoingFreeBytes() throws(ChannelError) -> Int {
        let result: Result<Int, RingError>? = self.sender.withLock { state in
            if state.closed != nil { return nil }
            do throws(RingError) { return .success(try state.ring.freeBytes()) } catch { return .failure(error) }
        }
        switch result {
        case .success(let free)?: return free
        case .failure(let error)?: throw ChannelError.closed(self.fail(error))
        case nil: throw ChannelError.closed(self.closeReason ?? .closedLocally)
        }
    }

    /// Sends a packet already encoded by `PacketEncoder` (any type), waiting for room.
    public func send(encoded packet: [UInt8]) async throws(ChannelError) {
        try await self.send(length: packet.count) { ring throws(RingError) in try ring.write(packet: packet[...]) }
    }

    /// Sends a GPA-direct packet (type 9) describing guest buffers, in one of Linux's forms.
    /// - Throws: ``ChannelError/invalidPacket(_:)`` when the ranges do not suit the form.
    public func send(
        gpaDirect ranges: [GpaRange], payload: ArraySlice<UInt8>, form: GpaDirectForm = .mpb, transactionID: UInt64 = 0,
        completionRequested: Bool = true
    ) async throws(ChannelError) {
        try await self.send(encoded: Self.encodeGpaDirect(ranges, payload, form, transactionID, completionRequested))
    }

    static func encodeGpaDirect(
        _ ranges: [GpaRange], _ payload: ArraySlice<UInt8>, _ form: GpaDirectForm, _ transactionID: UInt64,
        _ completionRequested: Bool
    ) throws(ChannelError) -> [UInt8] {
        let flags: PacketFlags = completionRequested ? .completionRequested : []
        do throws(WireError) {
            switch form {
            case .pageBuffer:
                return try PacketEncoder.pageBuffer(ranges: ranges, payload: payload, flags: flags, transactionID: transactionID)
            case .multipage:
                guard ranges.count == 1, let range = ranges.first else {
                    throw WireError.invalidField(name: "range_cnt", value: UInt64(ranges.count))
                }
                return try PacketEncoder.multipage(range: range, payload: payload, flags: flags, transactionID: transactionID)
            case .mpb:
                return try PacketEncoder.gpaDirect(ranges: ranges, payload: payload, flags: flags, transactionID: transactionID)
            }
        } catch {
            throw ChannelError.invalidPacket(error)
        }
    }

    /// Tries to send an in-band packet without waiting: `false` when the ring is full.
    public func trySend(
        inBand payload: ArraySlice<UInt8>, transactionID: UInt64 = 0, completionRequested: Bool = false
    ) throws(ChannelError) -> Bool {
        let flags: PacketFlags = completionRequested ? .completionRequested : []
        return try self.attempt(length: PacketSize.inBand(payload: payload.count), askForRoom: false) { ring throws(RingError) in
            try ring.write(type: .dataInBand, flags: flags, transactionID: transactionID, payload: payload)
        }
    }

    /// Tries to send a completion without waiting: `false` when the ring is full.
    public func trySend(completion payload: ArraySlice<UInt8>, transactionID: UInt64) throws(ChannelError) -> Bool {
        try self.attempt(length: PacketSize.inBand(payload: payload.count), askForRoom: false) { ring throws(RingError) in
            try ring.write(type: .completion, flags: [], transactionID: transactionID, payload: payload)
        }
    }

    /// Tries to send a packet already encoded by `PacketEncoder` without waiting: `false` when
    /// the ring is full.
    public func trySend(encoded packet: [UInt8]) throws(ChannelError) -> Bool {
        try self.attempt(length: packet.count, askForRoom: false) { ring throws(RingError) in try ring.write(packet: packet[...]) }
    }

    /// Writes several packets with one publication and at most one signal. Packets the body
    /// wrote before a `false` from the writer (ring full) are still sent.
    /// - Returns: how many packets were sent.
    public func sendBatch(_ body: (inout ChannelBatchWriter) throws(ChannelError) -> Void) throws(ChannelError) -> Int {
        enum Outcome {
            case sent(Int, signal: Bool)
            case failed(ChannelError)
            case corrupted(RingError)
        }
        let outcome: Outcome = self.sender.withLock { state in
            if let reason = state.closed { return .failed(.closed(reason)) }
            var writer = ChannelBatchWriter(ring: state.ring, capture: self.capture, relid: self.relid)
            var bodyError: ChannelError?
            do throws(ChannelError) { try body(&writer) } catch { bodyError = error }
            state.ring = writer.ring
            if let failure = writer.failure { return .corrupted(failure) }
            if writer.count > 0 && state.pendingSet {
                state.ring.clearPendingSendSize()
                state.pendingSet = false
            }
            do throws(RingError) {
                let signal = try state.ring.commit()
                if signal { state.ring.recordEvent() }
                if let bodyError { return .failed(bodyError) }
                return .sent(writer.count, signal: signal)
            } catch {
                return .corrupted(error)
            }
        }
        switch outcome {
        case .sent(let count, let signal):
            if signal { self.doorbell.ring() }
            return count
        case .failed(let error): throw error
        case .corrupted(let error): throw ChannelError.closed(self.fail(error))
        }
    }

    /// Asks the peer to signal once a `length`-byte packet fits in the outgoing ring
    /// (`pending_send_sz`, 02 §8), for a sender that must not wait — an interrupt handler
    /// keeps what did not fit and sends it when that signal runs the handler again. The
    /// request is withdrawn by the next write that succeeds.
    /// - Returns: `true` when the room is there already (no signal will come: send now).
    public func requestRoom(for length: Int) throws(ChannelError) -> Bool {
        let outcome: Result<Bool, ChannelError> = self.sender.withLock { state in
            if let reason = state.closed { return .failure(.closed(reason)) }
            do throws(RingError) {
                if try state.ring.setPendingSendSize(length + RingControlPage.trailerSize) { return .success(true) }
                state.pendingSet = true
                state.blockedSends += 1
                return .success(false)
            } catch {
                return .failure(.closed(self.fail(error)))
            }
        }
        return try outcome.get()
    }

    // MARK: The write loop

    /// Writes with `write` until it fits, waiting for the reader to free room in between:
    /// first by watching the ring for ``ChannelOptions/pollMicroseconds`` (no signal asked
    /// for, so the reader never has to send one), then by asking for a signal and sleeping.
    func send(
        length: Int, _ write: (inout OutgoingRing<SharedRingMemory>) throws(RingError) -> Bool
    ) async throws(ChannelError) {
        while true {
            if try self.attempt(length: length, askForRoom: false, write) { return }
            if self.pollForRoom(length) { continue }
            if try self.attempt(length: length, askForRoom: true, write) { return }
            await self.waitForRoom()
        }
    }

    /// As ``send(length:_:)``, but a wait for room ends at `deadline` or when the task is
    /// cancelled (nothing of this packet was written then).
    func send(
        length: Int, deadline: ContinuousClock.Instant?,
        _ write: (inout OutgoingRing<SharedRingMemory>) throws(RingError) -> Bool
    ) async throws(ChannelError) {
        while true {
            if try self.attempt(length: length, askForRoom: true, write) { return }
            if self.pollForRoom(length) { continue }
            if Task.isCancelled { throw ChannelError.cancelled }
            if let deadline, ContinuousClock.now >= deadline { throw ChannelError.timedOut }
            await interruptibleWait(deadline: deadline, kick: { [self] in self.kickSenders() }) { await self.waitForRoom() }
        }
    }

    /// One try under the send lock: write, publish, decide on the signal; on a full ring,
    /// optionally set `pending_send_sz` for this packet.
    func attempt(
        length: Int, askForRoom: Bool, _ write: (inout OutgoingRing<SharedRingMemory>) throws(RingError) -> Bool
    ) throws(ChannelError) -> Bool {
        guard length <= self.maximumPacketLength else {
            throw ChannelError.packetTooLarge(length: length, limit: self.maximumPacketLength)
        }
        let outcome: Result<Attempt, ChannelError> = self.sender.withLock { state in
            if let reason = state.closed { return .failure(.closed(reason)) }
            do throws(RingError) {
                var written = try write(&state.ring)
                if !written && askForRoom {
                    // Ask for this packet and its trailer; if the reader freed room meanwhile the
                    // request is withdrawn and the write goes ahead.
                    if try state.ring.setPendingSendSize(length + RingControlPage.trailerSize) {
                        written = try write(&state.ring)
                    } else {
                        state.pendingSet = true
                        state.blockedSends += 1
                        return .success(.full)
                    }
                }
                guard written else { return .success(.full) }
                if let capture = self.capture { capture.sent(state.ring, relid: self.relid, length: length) }
                if state.pendingSet {
                    state.ring.clearPendingSendSize()
                    state.pendingSet = false
                }
                let signal = try state.ring.commit()
                if signal { state.ring.recordEvent() }
                return .success(.written(signal: signal))
            } catch {
                return .success(.corrupted(error))
            }
        }
        switch outcome {
        case .failure(let error): throw error
        case .success(.written(let signal)):
            if signal { self.doorbell.ring() }
            return true
        case .success(.full): return false
        case .success(.corrupted(let error)): throw ChannelError.closed(self.fail(error))
        }
    }

    /// Watches the ring for room for a `length`-byte packet for
    /// ``ChannelOptions/pollMicroseconds``, as a reader polls for data: the reader usually
    /// frees room within microseconds, sooner than its signal would wake us.
    func pollForRoom(_ length: Int) -> Bool {
        PollGate.poll(microseconds: self.options.pollMicroseconds) {
            guard let free = try? self.outgoingFreeBytes() else { return true }  // closed: let the attempt say so
            return free > length + RingControlPage.trailerSize
        }
    }

    /// Suspends until a signal from the peer (or close) might have freed room.
    func waitForRoom() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now: Bool = self.sender.withLock { state in
                if state.signalled || state.closed != nil {
                    state.signalled = false
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }
}
