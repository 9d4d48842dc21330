import Synchronization
import VMBusChannel
import VMBusWire

/// Why an hvsock operation failed.
public enum HvSocketError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Nobody listens on that service (the host answered "connection refused").
    case refused
    /// No answer, no connection or no data in time.
    case timedOut
    /// This side closed the stream, or shut its writing side down.
    case closed
    /// The connection is gone: the peer closed the channel, rescinded it, or died.
    case peerGone(CloseReason)
    /// The peer sent something that is not a pipe DATA packet (07 §4.2).
    case protocolError(String)
    /// A concurrent read on the same stream (one reader at a time).
    case readerBusy
    /// Not connected at VMBus 4.0 or later, or the channel could not be opened.
    case unavailable(String)

    public var description: String {
        switch self {
        case .refused: return "connection refused: nobody listens on that service"
        case .timedOut: return "timed out"
        case .closed: return "the stream is closed"
        case .peerGone(let reason): return "the connection is gone (\(reason))"
        case .protocolError(let why): return "malformed data from the peer: \(why)"
        case .readerBusy: return "another task is reading this stream"
        case .unavailable(let why): return "hvsock unavailable: \(why)"
        }
    }
}

/// One Hyper-V socket connection (07): a byte stream over a pipe channel, the same on both
/// sides. Writes are split into DATA packets of at most 4088 bytes and wait for room when the
/// ring is full (nothing is dropped); reads return what the next packets hold; an empty read
/// means the peer shut its side down (FIN). One reader and one writer at a time.
public final class HvSocketStream: Sendable {
    /// The service id (the offer's class GUID) and the connecting end's endpoint id.
    public let service: GUID
    public let endpoint: GUID
    public let channel: Channel

    struct ReadState {
        var reader: ChannelReader?
        /// The rest of a packet a short read did not take.
        var pending: ArraySlice<UInt8> = []
        var endOfStream = false
    }

    struct WriteState {
        var finSent = false
        var closed = false
    }

    let reads: Mutex<ReadState>
    let writes = Mutex(WriteState())
    /// What closing means for the side that owns this stream (host: rescind; guest: wait for it).
    let teardown: @Sendable (HvSocketStream) async -> Void

    init(
        service: GUID, endpoint: GUID, channel: Channel, teardown: @escaping @Sendable (HvSocketStream) async -> Void
    ) throws(ChannelError) {
        self.service = service
        self.endpoint = endpoint
        self.channel = channel
        self.reads = Mutex(ReadState(reader: try channel.reader()))
        self.teardown = teardown
    }

    /// The vsock port of the service, if it is template-shaped.
    public var port: UInt32? { self.service.vsockPort }

    // MARK: Reading

    /// Up to `maximum` bytes: waits for data; returns an empty slice once the peer shut its
    /// side down.
    /// - Throws: ``HvSocketError/peerGone(_:)`` if the connection vanished without a FIN,
    ///   ``HvSocketError/protocolError(_:)`` for a malformed packet (the channel is closed).
    public func read(maximum: Int = 1 << 16) async throws(HvSocketError) -> ArraySlice<UInt8> {
        precondition(maximum > 0, "read at least one byte")
        let taken: Result<(ChannelReader, ArraySlice<UInt8>, Bool), HvSocketError> = self.reads.withLock { state in
            guard let reader = state.reader else { return .failure(.readerBusy) }
            state.reader = nil
            defer { state.pending = [] }
            return .success((reader, state.pending, state.endOfStream))
        }
        let (reader, pending, endOfStream) = try taken.get()
        var keep: ArraySlice<UInt8> = []
        var eof = endOfStream
        defer {
            let (rest, done) = (keep, eof)
            self.reads.withLock { state in
                state.reader = reader
                state.pending = rest
                state.endOfStream = done
            }
        }
        if !pending.isEmpty {
            keep = pending.dropFirst(maximum)
            return pending.prefix(maximum)
        }
        if eof { return [] }
        while true {
            guard let packet = await reader.next() else {
                let reason = reader.closeReason ?? .closedLocally
                // A peer that closed its channel has said all it will: end of stream.
                if reason == .closedByPeer {
                    eof = true
                    return []
                }
                throw HvSocketError.peerGone(reason)
            }
            guard packet.descriptor.type == .dataInBand else {
                self.channel.close(.ringCorrupted(.broken))
                throw HvSocketError.protocolError("packet type \(packet.descriptor.type.rawValue)")
            }
            let data: HvSockData
            do {
                data = try HvSockData(payload: packet.payload, packetLength: packet.bytes.count)
            } catch {
                self.channel.close(.ringCorrupted(.broken))
                throw HvSocketError.protocolError("\(error)")
            }
            if data.isFIN {
                eof = true
                return []
            }
            keep = data.data.dropFirst(maximum)
            return data.data.prefix(maximum)
        }
    }

    /// Reads until the peer's FIN (or `limit` bytes).
    public func readAll(limit: Int = .max) async throws(HvSocketError) -> [UInt8] {
        var all: [UInt8] = []
        while all.count < limit {
            let chunk = try await self.read(maximum: min(1 << 16, limit - all.count))
            if chunk.isEmpty { break }
            all += chunk
        }
        return all
    }

    // MARK: Writing

    /// The pipe header of a DATA packet of `count` bytes (07 §4).
    static func header(_ count: Int) -> UInt64 { UInt64(PipePacketType.data.rawValue) | UInt64(count) << 32 }

    /// Writes all of `bytes`, in DATA packets of at most 4088 bytes, waiting for room.
    /// - Throws: ``HvSocketError/closed`` after ``shutdownWrite()``; ``HvSocketError/peerGone(_:)``.
    public func write(_ bytes: ArraySlice<UInt8>) async throws(HvSocketError) {
        guard !self.writes.withLock({ $0.finSent }) else { throw HvSocketError.closed }
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            let end = min(offset + HvSock.sendBufferSize, bytes.endIndex)
            do {
                try await self.channel.send(leadingWord: Self.header(end - offset), payload: bytes[offset..<end])
            } catch {
                throw Self.mapped(error)
            }
            offset = end
        }
    }

    /// Writes all of `bytes`.
    public func write(_ bytes: [UInt8]) async throws(HvSocketError) { try await self.write(bytes[...]) }

    /// Sends the FIN (a DATA packet of length 0), once: the peer reads end of stream; this side
    /// can still read.
    public func shutdownWrite() async throws(HvSocketError) {
        let first = self.writes.withLock { state in
            defer { state.finSent = true }
            return !state.finSent
        }
        guard first else { return }
        do {
            try await self.channel.send(leadingWord: Self.header(0), payload: [][...])
        } catch {
            throw Self.mapped(error)
        }
    }

    /// Sends the FIN if not yet sent and ends the connection (the host rescinds the channel
    /// once the guest is done too; the guest waits for that).
    public func close() async {
        let first = self.writes.withLock { state in
            defer { state.closed = true }
            return !state.closed
        }
        guard first else { return }
        try? await self.shutdownWrite()
        await self.teardown(self)
    }

    static func mapped(_ error: ChannelError) -> HvSocketError {
        if case .closed(let reason) = error { return reason == .closedLocally ? .closed : .peerGone(reason) }
        return .unavailable("\(error)")
    }

    /// Reads and drops what the peer sends until its FIN, the channel's end, or `timeout`.
    func drainUntilPeerDone(timeout: Duration) async {
        let deadline = ContinuousClock.now + timeout
        let watchdog = Task {
            try? await Task.sleep(until: deadline)
            // Wakes a reader that waits forever for a peer that never finishes.
            if !Task.isCancelled { self.channel.close(.closedLocally) }
        }
        defer { watchdog.cancel() }
        while ContinuousClock.now < deadline {
            guard let chunk = try? await self.read(), !chunk.isEmpty else { return }
        }
    }
}

/// Waits for incoming connections on one service.
public final class HvSocketListener: Sendable {
    public let service: GUID
    struct State {
        var ready: [HvSocketStream] = []
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Result<HvSocketStream, HvSocketError>, Never>)] = []
        var nextID: UInt64 = 0
        var closed = false
    }
    let state = Mutex(State())
    let onClose: @Sendable () -> Void

    init(service: GUID, onClose: @escaping @Sendable () -> Void) {
        self.service = service
        self.onClose = onClose
    }

    /// The vsock port, for a template-shaped service.
    public var port: UInt32? { self.service.vsockPort }

    /// The next connection; waits up to `timeout` (forever when `nil`).
    public func accept(timeout: Duration? = nil) async throws(HvSocketError) -> HvSocketStream {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<HvSocketStream, HvSocketError>, Never>) in
            let now: Result<HvSocketStream, HvSocketError>? = self.state.withLock { state in
                if !state.ready.isEmpty { return .success(state.ready.removeFirst()) }
                if state.closed { return .failure(.closed) }
                state.nextID += 1
                let id = state.nextID
                state.waiters.append((id, continuation))
                if let timeout {
                    Task {
                        try? await Task.sleep(for: timeout)
                        self.fail(id, .timedOut)
                    }
                }
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
        return try result.get()
    }

    func fail(_ id: UInt64, _ error: HvSocketError) {
        let waiter = self.state.withLock { state -> CheckedContinuation<Result<HvSocketStream, HvSocketError>, Never>? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index).continuation
        }
        waiter?.resume(returning: .failure(error))
    }

    /// A connection arrived.
    func deliver(_ stream: HvSocketStream) {
        let waiter = self.state.withLock { state -> CheckedContinuation<Result<HvSocketStream, HvSocketError>, Never>? in
            if state.waiters.isEmpty {
                state.ready.append(stream)
                return nil
            }
            return state.waiters.removeFirst().continuation
        }
        waiter?.resume(returning: .success(stream))
    }

    /// Stops listening: waiting accepts fail with ``HvSocketError/closed``.
    public func close() {
        let waiters = self.state.withLock { state in
            state.closed = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.continuation.resume(returning: .failure(.closed)) }
        self.onClose()
    }

    var isClosed: Bool { self.state.withLock { $0.closed } }
}

/// One pending connect, resolved once (by the connection, a refusal, or the timer).
final class PendingConnect: Sendable {
    let slot = Mutex<CheckedContinuation<Result<HvSocketStream, HvSocketError>, Never>?>(nil)
    let early = Mutex<Result<HvSocketStream, HvSocketError>?>(nil)

    func wait(timeout: Duration) async -> Result<HvSocketStream, HvSocketError> {
        let timer = Task {
            try? await Task.sleep(for: timeout)
            if !Task.isCancelled { self.resolve(.failure(.timedOut)) }
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            let now: Result<HvSocketStream, HvSocketError>? = self.early.withLock { early in
                if let early { return early }
                self.slot.withLock { $0 = continuation }
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
    }

    /// `true` if this resolved the connect (it was still pending).
    @discardableResult
    func resolve(_ result: Result<HvSocketStream, HvSocketError>) -> Bool {
        let continuation: CheckedContinuation<Result<HvSocketStream, HvSocketError>, Never>?? = self.early.withLock { early in
            if early != nil { return .some(nil) }  // already resolved
            early = result
            return self.slot.withLock { slot in
                defer { slot = nil }
                return slot
            }
        }
        switch continuation {
        case .some(.some(let waiter)):
            waiter.resume(returning: result)
            return true
        case .some(.none): return false
        case .none: return true
        }
    }
}
