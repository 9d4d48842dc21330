import Synchronization
import VMBusMemory
import VMBusRing
import VMBusWire

/// One open VMBus channel — a ring pair and a doorbell — as either side uses it: send in-band
/// packets, completions and GPA-direct packets, receive in batches or one by one, make
/// requests whose answers come back by transaction id.
///
/// Sending, receiving and the request table each have their own lock, so a sender never waits
/// for a reader. A lock is taken once per send call or per batch (as Linux takes its ring lock
/// once per write), never per byte; nothing on the send or receive path allocates once the
/// reader's buffer has grown to the largest packet seen.
///
/// Peer data is hostile: an impossible ring index or descriptor closes the channel with
/// ``CloseReason/ringCorrupted(_:)`` and reports it to the fault handler; a completion with an
/// id that is not outstanding is dropped and counted.
public final class Channel: Sendable {
    struct SendState: ~Copyable {
        var ring: OutgoingRing<SharedRingMemory>
        /// Senders waiting for the reader to free room.
        var waiters: [CheckedContinuation<Void, Never>] = []
        /// A signal arrived while no sender waited: the next one to block retries at once.
        var signalled = false
        /// `pending_send_sz` is set on the ring.
        var pendingSet = false
        var blockedSends: UInt64 = 0
        var closed: CloseReason?
    }

    struct ReceiveState: ~Copyable {
        var ring: IncomingRing<SharedRingMemory>
        var waiter: CheckedContinuation<Void, Never>?
        var signalled = false
        var readerActive = false
        var closed: CloseReason?
        /// Signals from the peer (kept here, not in the ring, which a reader may hold).
        var interrupts: UInt64 = 0
        /// The counters of the ring a ``ChannelReader`` holds, as it last published them.
        var readerStatistics = RingStatistics()
        /// Set by ``Channel/finish(_:)``: end once the ring is empty.
        var finishing: CloseReason?
        /// The reader stopped at a packet boundary because the channel is held (``Channel/hold(timeout:)``).
        var readerParked = false
        /// Counts reader parks and handler ends, so a holder never misses one between its check
        /// and its wait.
        var holdEpoch: UInt64 = 0
        var holdWaiters: [CheckedContinuation<Void, Never>] = []
    }

    enum RequestSlot {
        /// Allocated; the request is being written.
        case sending
        /// Written; the requester waits.
        case waiting(CheckedContinuation<Result<[UInt8], ChannelError>, Never>)
        /// Answered before the requester started waiting.
        case answered([UInt8])
    }

    struct RequestState: ~Copyable {
        var table: Requestor<RequestSlot>
        var closed: CloseReason?
        var rejected: UInt64 = 0
        var completed: UInt64 = 0
    }

    struct Lifecycle: ~Copyable {
        var closed: CloseReason?
        var waiters: [CheckedContinuation<CloseReason, Never>] = []
        /// Set by ``Channel/finish(_:)``.
        var finishing: CloseReason?
        var endWaiters: [CheckedContinuation<CloseReason, Never>] = []
    }

    /// The channel's relid.
    public let relid: UInt32
    /// The options the channel was opened with (delivery mode, packet limits, polling, faults).
    public let options: ChannelOptions
    /// The largest packet (descriptor through padding) the outgoing ring can take.
    public let maximumPacketLength: Int
    /// The two rings' memory, for status snapshots.
    let outgoingMemory: SharedRingMemory
    let incomingMemory: SharedRingMemory
    let doorbell: any ChannelDoorbell
    let onFault: @Sendable (CloseReason) -> Void
    let sender: Locked<SendState>
    let receiver: Locked<ReceiveState>
    let requests: Locked<RequestState>
    let lifecycle = Locked(Lifecycle())
    /// Set once by ``close(_:)``: lets the reader check for a close without a lock.
    let isClosed = Atomic<Bool>(false)
    /// The interrupt handler (``onInterrupt(_:)``) and whether it is running.
    let interruptHandler = Locked(InterruptHandlerState())
    /// Whether a handler is installed: ``interrupt()`` skips the lock when none is.
    let hasInterruptHandler = Atomic<Bool>(false)
    /// Set by ``hold(timeout:)``: packets stay in the ring until ``release()``.
    let isHeld = Atomic<Bool>(false)
    /// Where this channel's packets, doorbells, open and close are recorded; `nil` (the
    /// default) costs one branch per packet.
    let capture: CaptureTap?
    /// The executor of the thread that takes this channel's doorbell, where the substrate has
    /// one (the local substrate's event loop); `nil` elsewhere. A task that prefers it —
    /// `Task(executorPreference: channel.taskExecutor) { … }` — is resumed by that thread as
    /// it takes the signal, instead of being handed to the cooperative pool: one thread
    /// wake-up less on each side of a round trip. Such a task must not block (no file I/O, no
    /// waiting on locks held for long): while it runs, the thread takes no other signal of its
    /// connection.
    public let taskExecutor: (any TaskExecutor)?

    /// Attaches to an initialised ring pair.
    /// - Parameters:
    ///   - relid: the channel's relid, kept as ``relid`` and named in its capture records.
    ///   - outgoing: the ring this side writes (on the guest the first of the pair, on the host
    ///     the second).
    ///   - incoming: the ring this side reads.
    ///   - options: delivery mode, packet limits, polling and fault injection.
    ///   - doorbell: rung when the peer must look at the rings.
    ///   - onFault: called once if the peer corrupts a ring, so the owner can close the channel
    ///     on the control plane too.
    ///   - capture: records every packet sent and received (read back from the rings, so
    ///     nothing on the wire changes), every doorbell both ways, and the open and close.
    ///   - taskExecutor: the executor of the thread that takes this channel's doorbell, kept
    ///     as ``taskExecutor``.
    /// - Throws: ``ChannelError/closed(_:)`` with ``CloseReason/ringCorrupted(_:)`` if a ring
    ///   index is already impossible; ``ChannelError/invalidOption(_:)`` for bad options.
    public init(
        relid: UInt32, outgoing: SharedRingMemory, incoming: SharedRingMemory, doorbell: any ChannelDoorbell,
        options: ChannelOptions = ChannelOptions(), onFault: @escaping @Sendable (CloseReason) -> Void = { _ in },
        capture: CaptureTap? = nil, taskExecutor: (any TaskExecutor)? = nil
    ) throws(ChannelError) {
        let out: OutgoingRing<SharedRingMemory>
        let into: IncomingRing<SharedRingMemory>
        do {
            out = try OutgoingRing(memory: outgoing)
            into = try IncomingRing(memory: incoming, maximumPacketLength: options.maximumPacketLength)
        } catch {
            throw ChannelError.closed(.ringCorrupted(error))
        }
        let capacity = options.requestorCapacity ?? max(16, outgoing.dataSize / 64)
        guard capacity >= 1, capacity <= Int(Int32.max) else {
            throw ChannelError.invalidOption("requestor capacity \(capacity)")
        }
        self.relid = relid
        self.options = options
        self.maximumPacketLength = out.maximumPacketLength
        self.outgoingMemory = outgoing
        self.incomingMemory = incoming
        self.doorbell = capture.map { CapturingDoorbell(inner: doorbell, capture: $0, relid: relid) } ?? doorbell
        self.capture = capture
        self.taskExecutor = taskExecutor
        self.onFault = onFault
        self.sender = Locked(SendState(ring: out))
        self.receiver = Locked(ReceiveState(ring: into))
        self.requests = Locked(RequestState(table: Requestor(capacity: capacity)))
        capture?.channelOpened(
            relid: relid, outgoingRingBytes: outgoing.dataSize + RingControlPage.size,
            incomingRingBytes: incoming.dataSize + RingControlPage.size)
    }

    // MARK: State

    /// Whether this channel's traffic is being recorded: a device that places data in shared
    /// buffers checks it before it copies the bytes for ``recordBufferData(outgoing:gpadl:offset:_:)``.
    public var isCapturing: Bool { self.capture != nil }

    /// Records bytes a device wrote to guest memory for the peer (`outgoing`) or read from it,
    /// at `offset` into GPADL `gpadl` (0: `offset` is a guest physical address). Call it just
    /// before sending the packet that points at them, or when reading what a received packet
    /// points at; it does nothing unless ``isCapturing``.
    public func recordBufferData(outgoing: Bool, gpadl: UInt32, offset: UInt64, _ bytes: ArraySlice<UInt8>) {
        self.capture?.bufferData(outgoing: outgoing, relid: self.relid, gpadl: gpadl, offset: offset, bytes)
    }

    /// Why the channel closed, or `nil` while it is open.
    public var closeReason: CloseReason? { self.lifecycle.withLock { $0.closed } }

    /// Counters of both rings and of the request table.
    public var statistics: ChannelStatistics {
        var stats = ChannelStatistics()
        self.sender.withLock {
            stats.outgoing = $0.ring.statistics
            stats.blockedSends = $0.blockedSends
        }
        self.receiver.withLock {
            stats.incoming = $0.readerActive ? $0.readerStatistics : $0.ring.statistics
            stats.incoming.interrupts = $0.interrupts
        }
        self.requests.withLock {
            stats.rejectedCompletions = $0.rejected
            stats.completedRequests = $0.completed
        }
        return stats
    }

    /// Ring sizes in bytes, control page included.
    public var ringSizes: (outgoing: Int, incoming: Int) {
        (self.outgoingMemory.dataSize + RingControlPage.size, self.incomingMemory.dataSize + RingControlPage.size)
    }

    /// Bytes waiting in each ring right now (a snapshot; `nil` if the peer wrote an impossible
    /// index).
    public var fill: (outgoing: Int?, incoming: Int?) {
        (self.outgoingMemory.bytesPending(), self.incomingMemory.bytesPending())
    }

    /// Requests waiting for their completion.
    public var outstandingRequests: Int { self.requests.withLock { $0.table.outstanding } }

    /// Waits until the channel closes or starts finishing (``finish(_:)``) and returns why:
    /// the moment the peer is known to be gone, even if data is still to be read.
    public func ended() async -> CloseReason {
        await withCheckedContinuation { (continuation: CheckedContinuation<CloseReason, Never>) in
            let reason: CloseReason? = self.lifecycle.withLock { state in
                if let reason = state.closed ?? state.finishing { return reason }
                state.endWaiters.append(continuation)
                return nil
            }
            if let reason { continuation.resume(returning: reason) }
        }
    }

    /// Waits until the channel closes and returns why.
    public func closed() async -> CloseReason {
        await withCheckedContinuation { (continuation: CheckedContinuation<CloseReason, Never>) in
            let reason: CloseReason? = self.lifecycle.withLock { state in
                if let reason = state.closed { return reason }
                state.waiters.append(continuation)
                return nil
            }
            if let reason { continuation.resume(returning: reason) }
        }
    }

    // MARK: Doorbell and close

    /// The peer rang this channel's doorbell: wakes the reader and any sender waiting for room.
    /// Cheap and non-blocking; substrates call it from their event loop.
    public func interrupt() {
        if let capture = self.capture { capture.doorbell(outgoing: false, relid: self.relid) }
        let reader: CheckedContinuation<Void, Never>? = self.receiver.withLock { state in
            state.interrupts += 1
            guard let waiter = state.waiter else {
                state.signalled = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        reader?.resume()
        self.wakeSenders(signal: true)
        if self.hasInterruptHandler.load(ordering: .acquiring) { self.runInterruptHandler() }
    }

    func wakeSenders(signal: Bool) {
        let waiters: [CheckedContinuation<Void, Never>] = self.sender.withLock { state in
            if state.waiters.isEmpty {
                if signal { state.signalled = true }
                return []
            }
            let waiters = state.waiters
            state.waiters = []
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Wakes the reader to re-check its deadline or cancellation; if it is not waiting yet,
    /// its next wait returns at once (a spurious wake only costs one more look at the ring).
    func kickReader() {
        let reader: CheckedContinuation<Void, Never>? = self.receiver.withLock { state in
            guard let waiter = state.waiter else {
                state.signalled = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        reader?.resume()
    }

    /// Wakes every waiting sender to re-check deadlines or cancellation.
    func kickSenders() { self.wakeSenders(signal: true) }

    func wakeReader() {
        let reader: CheckedContinuation<Void, Never>? = self.receiver.withLock { state in
            let waiter = state.waiter
            state.waiter = nil
            return waiter
        }
        reader?.resume()
    }

    /// Stops the channel: every waiting send, receive and request ends with
    /// ``ChannelError/closed(_:)`` (a reader's loop ends with the reason). Closing twice keeps
    /// the first reason.
    public func close(_ reason: CloseReason) {
        var reason = reason
        let waiters: [CheckedContinuation<CloseReason, Never>]? = self.lifecycle.withLock { state in
            guard state.closed == nil else { return nil }
            // A channel already finishing keeps the reason it is finishing for.
            reason = state.finishing ?? reason
            state.closed = reason
            let waiters = state.waiters + state.endWaiters
            state.waiters = []
            state.endWaiters = []
            return waiters
        }
        guard let waiters else { return }
        if let capture = self.capture { capture.channelClosed(relid: self.relid, reason: CaptureCloseReason(reason)) }
        self.isClosed.store(true, ordering: .releasing)
        self.sender.withLock { $0.closed = reason }
        self.receiver.withLock { $0.closed = reason }
        self.wakeSenders(signal: false)
        self.wakeReader()
        let pending: [RequestSlot] = self.requests.withLock { state in
            state.closed = reason
            return state.table.removeAll()
        }
        for slot in pending {
            if case .waiting(let continuation) = slot { continuation.resume(returning: .failure(.closed(reason))) }
        }
        for waiter in waiters { waiter.resume(returning: reason) }
    }

    /// Ends the channel once its reader has taken what is already in the incoming ring: data
    /// the peer sent before going away (a rescinded hvsock connection) is still delivered.
    /// Sends fail at once. Without an active reader the channel closes now.
    public func finish(_ reason: CloseReason) {
        let reading: Bool = self.receiver.withLock { state in
            if state.readerActive && state.finishing == nil { state.finishing = reason }
            return state.readerActive
        }
        guard reading else {
            self.close(reason)
            return
        }
        let endWaiters: [CheckedContinuation<CloseReason, Never>] = self.lifecycle.withLock { state in
            if state.finishing == nil { state.finishing = reason }
            defer { state.endWaiters = [] }
            return state.endWaiters
        }
        for waiter in endWaiters { waiter.resume(returning: reason) }
        self.sender.withLock { if $0.closed == nil { $0.closed = reason } }
        self.wakeSenders(signal: false)
        self.wakeReader()
    }

    /// The peer closed the channel or went away while its rings are still mapped: what it
    /// wrote before goes to the consumer, then the channel ends with `reason` — a reader drains
    /// the ring first (``finish(_:)``), an interrupt handler runs once more. A substrate calls
    /// this instead of ``close(_:)`` so that an answer written just before a goodbye is not lost.
    public func peerEnded(_ reason: CloseReason) {
        if self.hasInterruptHandler.load(ordering: .acquiring) && self.closeReason == nil { self.runInterruptHandler() }
        self.finish(reason)
    }

    /// Whether ``finish(_:)`` was called and the reader has not drained the ring yet.
    public var isFinishing: Bool {
        self.receiver.withLock { $0.finishing != nil } && self.closeReason == nil
    }

    /// The peer broke a ring: close, tell the owner.
    func fail(_ error: RingError) -> CloseReason {
        let reason = CloseReason.ringCorrupted(error)
        let first = self.closeReason == nil
        self.close(reason)
        if first { self.onFault(reason) }
        return self.closeReason ?? reason
    }
}
