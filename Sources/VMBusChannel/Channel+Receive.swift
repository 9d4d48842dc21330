import VMBusMemory
import VMBusRing
import VMBusWire

/// One received packet: its validated descriptor and its bytes. The bytes are a private copy
/// (the reader's reused buffer), so a peer can no longer change them; keep the value and it
/// is copied on the reader's next write (copy on write), otherwise nothing is allocated.
public struct ChannelPacket: Sendable {
    /// The descriptor, validated when it was read.
    public var descriptor: PacketDescriptor
    /// The whole packet, descriptor first, `len8 × 8` bytes.
    public var bytes: ArraySlice<UInt8>

    /// A packet from a validated descriptor and the whole packet's bytes (descriptor first).
    public init(descriptor: PacketDescriptor, bytes: ArraySlice<UInt8>) {
        self.descriptor = descriptor
        self.bytes = bytes
    }

    /// The payload: the bytes from `offset8 × 8`, padding included.
    public var payload: ArraySlice<UInt8> { self.bytes.dropFirst(self.descriptor.payloadOffset) }

    /// The packet, parsed (03); `strict` applies the host's checks (02 §9.3).
    public func parse(strict: Bool = false) throws(WireError) -> VMBusPacket {
        try VMBusPacket.parse(self.bytes, strict: strict)
    }
}

/// The reading end of a channel, held by one consumer at a time. Obtained from
/// ``Channel/reader()``; ``next()`` returns packets until the channel closes.
///
/// `@unchecked Sendable`: a reader may be handed from task to task (a stream parks it between
/// reads), but its state is only ever used by the one task that holds it — the channel allows
/// one reader, and holders pass it on, never share it.
public final class ChannelReader: AsyncSequence, AsyncIteratorProtocol, @unchecked Sendable {
    public typealias Element = ChannelPacket
    public typealias Failure = Never

    /// The channel this reader reads; it holds the channel's incoming ring until it is released.
    public let channel: Channel
    /// The incoming ring, owned by this reader while it lives (``Channel/reader()`` takes it
    /// out of the channel's lock), so reading takes no lock per packet.
    var ring: IncomingRing<SharedRingMemory>
    /// The packet buffer, reused: it grows to the largest packet and stays there.
    var buffer: [UInt8] = []
    /// Packets consumed since the last publication of the read index (batched delivery).
    var unpublished = 0
    /// Draining with the writer's signals masked.
    var draining = false
    /// How long the next poll lasts, learnt from the gaps between packets.
    var pollWindow: PollWindow
    /// Packets taken since this reader last suspended (see ``yieldNowAndThen()``).
    var sinceSuspension = 0
    /// Why the reader stopped, once it did.
    public private(set) var closeReason: CloseReason?
    /// Whether ``Channel/finish(_:)`` had been called before the last look at the ring. Only
    /// an empty ring seen *after* that proves the drain complete (see ``advance``).
    var finishSeenBeforeLook = false
    /// Tests only: runs when a look finds the ring empty, before the finishing check — where
    /// a peer's last packet and its goodbye can slip in.
    var lookedEmpty: (@Sendable () -> Void)?

    /// Packets read per publication of the read index in batched delivery, so a long stream
    /// still frees room for the writer regularly.
    public static let batchLimit = 64

    init(channel: Channel, ring: IncomingRing<SharedRingMemory>) {
        self.channel = channel
        self.ring = ring
        self.pollWindow = PollWindow(base: channel.options.pollMicroseconds)
        self.buffer.reserveCapacity(4096)
    }

    deinit {
        let ring = self.ring
        self.channel.receiver.withLock { state in
            state.ring = ring
            state.readerActive = false
        }
    }

    /// Lets ``Channel/statistics`` see this reader's counters (once per batch, not per packet).
    func publishStatistics() {
        let stats = self.ring.statistics
        self.channel.receiver.withLock { $0.readerStatistics = stats }
    }

    public func makeAsyncIterator() -> ChannelReader { self }

    enum Step {
        case packet(IncomingPacket)
        case empty(signal: Bool)
        case again(signal: Bool)
        case corrupted(RingError)
        case closed(CloseReason)
        /// The channel is held: everything consumed is published; take nothing more.
        case held(signal: Bool)
    }

    /// The next packet for the consumer, or `nil` once the channel closed (``closeReason``
    /// says why). Completions answering this side's requests are consumed on the way. Waits
    /// as long as it takes; task cancellation does not end it.
    public func next() async -> ChannelPacket? {
        let packet: ChannelPacket
        switch try? await self.advance(deadline: nil, interruptible: false) {
        case .inRing(let incoming):
            self.ring.copyPacket(incoming, into: &self.buffer)
            guard self.consumed() else { return nil }
            packet = ChannelPacket(descriptor: incoming.descriptor, bytes: self.buffer[...])
        case .copied(let copy):
            packet = copy
        case nil:
            return nil
        }
        let delay = self.channel.options.faultInjection.messageDelayMicroseconds
        if delay > 0 { try? await Task.sleep(for: .microseconds(delay)) }
        return packet
    }

    /// Waits for the next packet and lends it to `body` in place: `body` gets the validated
    /// descriptor and the payload (from `offset8 × 8`, padding included) in the shared ring —
    /// copied only if it wraps on a singly mapped ring. The peer can still write those bytes:
    /// read each once. The packet's room goes back to the writer after `body` returns.
    /// - Returns: what `body` returned, or `nil` once the channel closed (``closeReason``).
    /// - Throws: ``ChannelError/timedOut`` at `deadline`, ``ChannelError/cancelled`` when the
    ///   task is cancelled; the channel and the packets stay as they were.
    public func next<R>(
        deadline: ContinuousClock.Instant? = nil, _ body: (PacketDescriptor, Span<UInt8>) -> R
    ) async throws(ChannelError) -> R? {
        switch try await self.advance(deadline: deadline, interruptible: true) {
        case .inRing(let packet): return self.lend(packet, body)
        case .copied(let packet): return body(packet.descriptor, packet.payload.span)
        case nil: return nil
        }
    }

    /// Like ``next(deadline:_:)`` but without waiting: `nil` when no packet is ready now.
    public func nextIfReady<R>(_ body: (PacketDescriptor, Span<UInt8>) -> R) -> R? {
        while self.closeReason == nil {
            switch self.step() {
            case .packet(let packet):
                guard packet.descriptor.type == .completion else { return self.lend(packet, body) }
                guard let copy = self.routeCompletion(packet) else { continue }
                return body(copy.descriptor, copy.payload.span)
            case .again(let signal):
                if signal { self.channel.doorbell.ring() }
            case .empty(let signal), .held(let signal):
                if signal { self.channel.doorbell.ring() }
                return nil
            case .corrupted(let error):
                self.closeReason = self.channel.fail(error)
            case .closed(let reason):
                self.closeReason = reason
            }
        }
        return nil
    }

    func lend<R>(_ packet: IncomingPacket, _ body: (PacketDescriptor, Span<UInt8>) -> R) -> R? {
        let result: R
        if let inPlace = self.ring.withPayload(of: packet, { body(packet.descriptor, $0) }) {
            result = inPlace
        } else {
            self.ring.copyPayload(of: packet, into: &self.buffer)
            result = body(packet.descriptor, self.buffer.span)
        }
        return self.consumed() ? result : nil
    }

    /// Waits for a packet the consumer should see and returns it unconsumed: the caller reads
    /// it, then calls ``consumed()``. `nil` once the channel closed.
    func advance(deadline: ContinuousClock.Instant?, interruptible: Bool) async throws(ChannelError) -> Advanced? {
        while self.closeReason == nil {
            switch self.step() {
            case .packet(let packet):
                await self.yieldNowAndThen()
                guard packet.descriptor.type == .completion else { return .inRing(packet) }
                guard let copy = self.routeCompletion(packet) else { continue }
                return .copied(copy)
            case .again(let signal):
                if signal { self.channel.doorbell.ring() }
            case .empty(let signal):
                if signal { self.channel.doorbell.ring() }
                if let lookedEmpty { lookedEmpty() }
                // Finishing (the peer is gone): the channel ends once the ring is drained. The
                // peer's last packet can land between the look that found the ring empty and
                // this check (it writes, then goes, then finish() is called), so an empty look
                // counts only if finishing was already seen before it: otherwise look again.
                if let reason = self.channel.receiver.withLock({ $0.finishing }) {
                    if self.finishSeenBeforeLook {
                        self.channel.close(reason)
                        self.closeReason = reason
                    } else {
                        self.finishSeenBeforeLook = true
                    }
                    continue
                }
                // Poll briefly before sleeping: a reply often lands within microseconds, and
                // a task wake-up costs more than that.
                let pollStart = ContinuousClock.now
                let budget = self.pollWindow.begin()
                if self.pollBriefly(budget) {
                    self.pollWindow.succeeded()
                    continue
                }
                defer { if budget > 0 { self.adaptPoll(sleptSince: pollStart) } }
                if interruptible {
                    if Task.isCancelled { throw ChannelError.cancelled }
                    if let deadline, ContinuousClock.now >= deadline { throw ChannelError.timedOut }
                    let channel = self.channel
                    await interruptibleWait(deadline: deadline, kick: { channel.kickReader() }) {
                        await channel.waitForInput()
                    }
                } else {
                    await self.channel.waitForInput()
                }
                self.sinceSuspension = 0
                let delay = self.channel.options.faultInjection.interruptDelayMicroseconds
                if delay > 0 { try? await Task.sleep(for: .microseconds(delay)) }
            case .held(let signal):
                if signal { self.channel.doorbell.ring() }
                await self.channel.parkWhileHeld()
            case .corrupted(let error):
                self.closeReason = self.channel.fail(error)
            case .closed(let reason):
                self.closeReason = reason
            }
        }
        return nil
    }

    /// What ``advance(deadline:interruptible:)`` found for the consumer.
    enum Advanced {
        /// Still in the ring: read it, then ``consumed()``.
        case inRing(IncomingPacket)
        /// A completion nobody waited for, copied and consumed already.
        case copied(ChannelPacket)
    }

    /// Copies and consumes a completion; one answering this side's request goes to its waiter
    /// (`nil`), any other comes back for the consumer.
    func routeCompletion(_ packet: IncomingPacket) -> ChannelPacket? {
        self.ring.copyPacket(packet, into: &self.buffer)
        guard self.consumed() else { return nil }
        let copy = ChannelPacket(descriptor: packet.descriptor, bytes: self.buffer[...])
        return self.channel.routeCompletion(copy) ? nil : copy
    }

    /// The consumer is done with the packet ``step()`` returned: count it, and publish the read
    /// index when the batch is full (per packet in per-packet delivery). `false` if the ring
    /// turned out corrupted (the channel is failed).
    func consumed() -> Bool {
        let batched = self.channel.options.delivery == .batched
        self.unpublished += 1
        // A batch also ends once it holds a quarter of the ring, so a writer waiting for room
        // gets it while large packets are still being read.
        guard !batched || self.unpublished >= Self.batchLimit || self.ring.uncommittedBytes >= self.ring.dataSize / 4 else {
            return true
        }
        do throws(RingError) {
            if try self.ring.commit() { self.channel.doorbell.ring() }
        } catch {
            self.publishStatistics()
            self.closeReason = self.channel.fail(error)
            return false
        }
        self.unpublished = 0
        if batched { self.publishStatistics() }
        return true
    }

    /// Watches the ring's write index for `budget` microseconds (the ``PollWindow``'s); `true`
    /// if data arrived (the caller reads on without sleeping).
    ///
    /// The writer's interrupts are masked while we watch (02 §7.2): a reader that is looking
    /// needs no signal, and a signal would wake the peer's event loop for nothing — on a small
    /// machine that thread then competes for the cores both ends are using. The mask is
    /// cleared before we sleep, then the ring looked at once more, so a packet published
    /// while masked is never slept through.
    func pollBriefly(_ budget: Int) -> Bool {
        guard budget > 0 else { return false }
        self.ring.beginDrain()
        let arrived = PollGate.poll(microseconds: budget) {
            if self.channel.isClosed.load(ordering: .relaxed) { return true }
            // An impossible index is found by the unmask below.
            return ((try? self.ring.bytesAvailableToRead()) ?? 0) > 0
        }
        // A failed unmask means a corrupt index: report "data" so the caller's next step finds
        // the error and closes the channel.
        let more = (try? self.ring.endDrain()) ?? true
        return arrived || more
    }

    /// Lets the pool's other tasks run now and then. A reader whose packets keep coming —
    /// already in the ring, or within its poll — never suspends, so without this it would keep
    /// its pool thread for as long as the stream lasts, and with many channels in one process
    /// (a host serving many guests) the others' tasks would wait behind it: their p99 grew to
    /// hundreds of milliseconds. Every ``yieldInterval`` packets without a suspension, it yields.
    func yieldNowAndThen() async {
        self.sinceSuspension += 1
        guard self.sinceSuspension >= Self.yieldInterval else { return }
        self.sinceSuspension = 0
        await Task.yield()
    }

    /// Packets a reader takes without suspending before it yields.
    static let yieldInterval = 16

    /// Learns the poll window from a sleep that began with a poll at `start` and has just
    /// ended (see ``PollWindow``).
    func adaptPoll(sleptSince start: ContinuousClock.Instant) {
        let gap = (ContinuousClock.now - start).components
        self.pollWindow.learn(gapMicroseconds: Int(gap.seconds) * 1_000_000 + Int(gap.attoseconds / 1_000_000_000_000))
    }

    /// One look at the ring. Only a closed-flag load is shared with other threads. A packet
    /// is returned unconsumed: its room is published by ``consumed()``.
    func step() -> Step {
        if self.channel.isClosed.load(ordering: .acquiring) { return .closed(self.channel.closeReason ?? .closedLocally) }
        let batched = self.channel.options.delivery == .batched
        if self.channel.isHeld.load(ordering: .acquiring) { return self.stepHeld() }
        do throws(RingError) {
            if batched && !self.draining {
                self.ring.beginDrain()
                self.draining = true
            }
            if let packet = try self.ring.next() {
                if let capture = self.channel.capture { capture.received(packet, from: self.ring, relid: self.channel.relid) }
                return .packet(packet)
            }
            let signal = try self.ring.commit()
            self.unpublished = 0
            self.draining = false
            self.publishStatistics()
            // Unmask, then look again: a packet published while masked came unsignalled.
            if try self.ring.endDrain() { return .again(signal: signal) }
            return .empty(signal: signal)
        } catch {
            self.publishStatistics()
            return .corrupted(error)
        }
    }
}

extension ChannelReader {
    /// Publishes what was consumed and unmasks, as an empty ring would, then reports the hold.
    func stepHeld() -> Step {
        do throws(RingError) {
            let signal = try self.ring.commit()
            self.unpublished = 0
            self.draining = false
            self.publishStatistics()
            _ = try self.ring.endDrain()
            return .held(signal: signal)
        } catch {
            self.publishStatistics()
            return .corrupted(error)
        }
    }
}

/// Runs `wait` — a wait that `kick` ends early — until it returns on its own, `deadline`
/// passes or the task is cancelled. The caller re-checks its condition afterwards.
func interruptibleWait(
    deadline: ContinuousClock.Instant?, kick: @escaping @Sendable () -> Void, _ wait: () async -> Void
) async {
    // One timer task per wait, never per packet: waits happen only when the ring is idle.
    let timer = deadline.map { deadline in
        Task {
            try? await Task.sleep(until: deadline)
            kick()
        }
    }
    defer { timer?.cancel() }
    await withTaskCancellationHandler { await wait() } onCancel: { kick() }
}

extension Channel {
    /// The channel's reader. One consumer at a time: a second reader while the first is alive
    /// is refused.
    /// - Throws: ``ChannelError/readerBusy``.
    public func reader() throws(ChannelError) -> ChannelReader {
        let ring: IncomingRing<SharedRingMemory>? = self.receiver.withLock { state in
            guard !state.readerActive else { return nil }
            state.readerActive = true
            state.readerStatistics = state.ring.statistics
            return state.ring
        }
        guard let ring else { throw ChannelError.readerBusy }
        return ChannelReader(channel: self, ring: ring)
    }

    /// Runs `handler` on every packet until the channel closes; returns why it closed.
    /// Completions answering ``request(_:)`` calls never reach the handler.
    public func receive(_ handler: (ChannelPacket) async throws -> Void) async throws -> CloseReason {
        let reader = try self.reader()
        while let packet = await reader.next() { try await handler(packet) }
        return reader.closeReason ?? .closedLocally
    }

    /// Suspends until the peer signals (or the channel closes).
    func waitForInput() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now: Bool = self.receiver.withLock { state in
                if state.signalled || state.closed != nil || state.finishing != nil {
                    state.signalled = false
                    return true
                }
                state.waiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }
}
