import VMBusMemory
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
    /// The waiting task was cancelled; the stream is unchanged.
    case cancelled

    public var description: String {
        switch self {
        case .refused: return "connection refused: nobody listens on that service"
        case .timedOut: return "timed out"
        case .closed: return "the stream is closed"
        case .peerGone(let reason): return "the connection is gone (\(reason))"
        case .protocolError(let why): return "malformed data from the peer: \(why)"
        case .readerBusy: return "another task is reading this stream"
        case .unavailable(let why): return "hvsock unavailable: \(why)"
        case .cancelled: return "cancelled"
        }
    }
}

/// How this package tunes channels for Hyper-V sockets.
extension HvSock {
    /// How long an hvsock reader polls its empty ring before it sleeps. A stream's next bytes
    /// usually follow within microseconds; polling for them costs less than a wake-up through
    /// the peer's signal, and halves echo latency. An idle stream polls once, then sleeps.
    public static let pollMicroseconds = 30

    /// Channel options for an hvsock connection: the given ones, polling as above.
    public static func tuned(_ options: ChannelOptions) -> ChannelOptions {
        var options = options
        options.pollMicroseconds = max(options.pollMicroseconds, Self.pollMicroseconds)
        return options
    }
}

/// One Hyper-V socket connection (07): a byte stream over a pipe channel, the same on both
/// sides. Writes are split into DATA packets of at most 4088 bytes and wait for room when the
/// ring is full (nothing is dropped); reads return what the next packets hold; an empty read
/// means the peer shut its side down (FIN). One reader and one writer at a time.
public final class HvSocketStream: Sendable {
    /// The service id (the offer's class GUID) and the connecting end's endpoint id.
    public let service: GUID
    /// The connecting end's endpoint id (the offer's instance GUID).
    public let endpoint: GUID
    /// The connection's channel. Reading or writing it directly breaks the stream's framing; it is
    /// here for statistics, capture and servicing.
    public let channel: Channel

    struct ReadState {
        var reader: ChannelReader?
        /// The rest of a packet a short read did not take.
        var pending: ArraySlice<UInt8> = []
        var endOfStream = false
        /// A malformed packet found after data already read: reported by the next read, so
        /// the good bytes before it are not lost.
        var failure: HvSocketError?
    }

    struct WriteState {
        var finSent = false
        var closed = false
    }

    let reads: Locked<ReadState>
    let writes = Locked(WriteState())
    /// The most data bytes one DATA packet carries: `HVS_MTU_SIZE` (16384, what every receiver
    /// accepts, 07 §4), or less so that two packets fit a small ring and the peer can read one
    /// while the next is written.
    public let packetPayload: Int
    /// What closing means for the side that owns this stream (host: rescind; guest: wait for it).
    let teardown: @Sendable (HvSocketStream) async -> Void

    /// Whether this side connected (else it accepted).
    public let isOutgoing: Bool
    /// The handler serving the stream, when it is served through one (``HvSocketHost/serve(port:_:)``):
    /// what a takeover saves of the service.
    let served = Locked<(any HvSocketServing)?>(nil)

    init(
        service: GUID, endpoint: GUID, outgoing: Bool, channel: Channel,
        teardown: @escaping @Sendable (HvSocketStream) async -> Void
    ) throws(ChannelError) {
        self.isOutgoing = outgoing
        self.service = service
        self.endpoint = endpoint
        self.channel = channel
        self.reads = Locked(ReadState(reader: try channel.reader()))
        self.teardown = teardown
        let data = channel.ringSizes.outgoing - 4096
        self.packetPayload = max(8, min(HvSock.mtu, (data / 2 - HvSock.packetLength(0) - 8) & ~7))
    }

    /// The vsock port of the service, if it is template-shaped.
    public var port: UInt32? { self.service.vsockPort }

    /// This end's vsock port: the connecting end's endpoint port, or the service port on the
    /// accepting side (`nil` when the GUID is not template-shaped).
    public var localPort: UInt32? { self.isOutgoing ? self.endpoint.vsockPort : self.service.vsockPort }

    /// The other end's vsock port.
    public var remotePort: UInt32? { self.isOutgoing ? self.service.vsockPort : self.endpoint.vsockPort }

    // MARK: Reading

    /// Up to `maximum` bytes: waits (up to `timeout`, or until the task is cancelled) for
    /// data, then takes what the ring holds, several packets at once, copied once from the
    /// ring. Returns an empty slice once the peer shut its side down.
    /// - Throws: ``HvSocketError/timedOut`` / ``HvSocketError/cancelled`` (nothing was read; the
    ///   stream is unchanged), ``HvSocketError/peerGone(_:)`` if the connection vanished without
    ///   a FIN, ``HvSocketError/protocolError(_:)`` for a malformed packet (the channel is
    ///   closed; bytes before it are returned first).
    public func read(maximum: Int = 1 << 16, timeout: Duration? = nil) async throws(HvSocketError) -> ArraySlice<UInt8> {
        precondition(maximum > 0, "read at least one byte")
        let taken: Result<(ChannelReader, ArraySlice<UInt8>, Bool, HvSocketError?), HvSocketError> = self.reads.withLock { state in
            guard let reader = state.reader else { return .failure(.readerBusy) }
            state.reader = nil
            defer { state.pending = [] }
            return .success((reader, state.pending, state.endOfStream, state.failure))
        }
        let (reader, pending, endOfStream, failure) = try taken.get()
        var rest: [UInt8] = []
        var eof = endOfStream
        var failed = failure
        defer {
            let (rest, eof, failed) = (pending.count > maximum ? pending.dropFirst(maximum) : rest[...], eof, failed)
            self.reads.withLock { state in
                state.reader = reader
                state.pending = rest
                state.endOfStream = eof
                state.failure = failed
            }
        }
        if !pending.isEmpty { return pending.prefix(maximum) }
        if let failed { throw failed }
        if eof { return [] }
        var data: [UInt8] = []
        // Never more than a ring's worth arrives at once: reserve that much, or `maximum`.
        data.reserveCapacity(min(maximum, self.channel.ringSizes.incoming))
        let first: Taken?
        do throws(ChannelError) {
            first = try await reader.next(deadline: timeout.map { .now + $0 }) { descriptor, payload in
                Self.take(descriptor, payload, maximum, into: &data, rest: &rest)
            }
        } catch {
            throw error == .cancelled ? HvSocketError.cancelled : HvSocketError.timedOut
        }
        var outcome = first
        while true {
            switch outcome {
            case nil:
                guard data.isEmpty else { return data[...] }
                let reason = reader.closeReason ?? .closedLocally
                // A peer that closed its channel has said all it will: end of stream.
                if reason == .closedByPeer {
                    eof = true
                    return []
                }
                throw HvSocketError.peerGone(reason)
            case .malformed(let why)?:
                self.channel.close(.ringCorrupted(.broken))
                let error = HvSocketError.protocolError(why)
                guard data.isEmpty else {
                    failed = error
                    return data[...]
                }
                throw error
            case .fin?:
                eof = true
                return data[...]
            case .data?:
                // Take what else is there already, without waiting.
                guard data.count < maximum else { return data[...] }
                outcome = reader.nextIfReady { descriptor, payload in
                    Self.take(descriptor, payload, maximum, into: &data, rest: &rest)
                }
                if outcome == nil { return data[...] }
            }
        }
    }

    enum Taken: Equatable {
        case data
        case fin
        case malformed(String)
    }

    /// Checks one packet as Linux does (07 §4.2) and appends its data to `data`, up to
    /// `maximum` bytes; what does not fit goes to `rest`. The pipe header is read once from
    /// shared memory, then validated, then used.
    static func take(
        _ descriptor: PacketDescriptor, _ payload: Span<UInt8>, _ maximum: Int, into data: inout [UInt8], rest: inout [UInt8]
    ) -> Taken {
        guard descriptor.type == .dataInBand else { return .malformed("packet type \(descriptor.type.rawValue)") }
        guard payload.count >= PipeHeader.wireSize else { return .malformed("no room for the pipe header") }
        var header: UInt64 = 0
        for i in 0..<8 { header |= UInt64(payload[i]) << (8 * i) }
        guard UInt32(truncatingIfNeeded: header) == PipePacketType.data.rawValue else {
            return .malformed("pipe packet type \(UInt32(truncatingIfNeeded: header))")
        }
        let size: Int
        do {
            size = try HvSockData.validate(dataSize: UInt32(header >> 32), packetLength: descriptor.totalLength)
        } catch {
            return .malformed("\(error)")
        }
        guard size <= payload.count - PipeHeader.wireSize else { return .malformed("data_size \(size) beyond the packet") }
        if size == 0 { return .fin }
        let count = min(size, maximum - data.count)
        let start = PipeHeader.wireSize
        data.append(span: payload.extracting(start..<(start + count)))
        if count < size { rest.append(span: payload.extracting((start + count)..<(start + size))) }
        return .data
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

    /// Writes `bytes` in DATA packets of up to ``packetPayload`` bytes, waiting for room (up
    /// to `timeout`, or until the task is cancelled) — like a POSIX write: it returns how many
    /// bytes went out, which is all of them unless the deadline passed or the task was
    /// cancelled after some were sent.
    /// - Throws: ``HvSocketError/timedOut`` / ``HvSocketError/cancelled`` if nothing was sent,
    ///   ``HvSocketError/closed`` after ``shutdownWrite()``, ``HvSocketError/peerGone(_:)``.
    @discardableResult
    public func write(_ bytes: ArraySlice<UInt8>, timeout: Duration? = nil) async throws(HvSocketError) -> Int {
        guard !self.writes.withLock({ $0.finSent }) else { throw HvSocketError.closed }
        let deadline = timeout.map { ContinuousClock.now + $0 }
        var offset = bytes.startIndex
        let size = self.packetPayload
        while offset < bytes.endIndex {
            do {
                // As many packets as the ring takes now, published together with at most one
                // signal; then one packet waiting for room, and again.
                _ = try self.channel.sendBatch { writer throws(ChannelError) in
                    while offset < bytes.endIndex {
                        let end = min(offset + size, bytes.endIndex)
                        guard try writer.write(leadingWord: Self.header(end - offset), payload: bytes[offset..<end]) else { return }
                        offset = end
                    }
                }
                guard offset < bytes.endIndex else { break }
                let end = min(offset + size, bytes.endIndex)
                try await self.channel.send(leadingWord: Self.header(end - offset), payload: bytes[offset..<end], deadline: deadline)
                offset = end
            } catch {
                let sent = offset - bytes.startIndex
                if sent > 0, error == .timedOut || error == .cancelled { return sent }
                throw Self.mapped(error)
            }
        }
        return bytes.count
    }

    /// Writes all of `bytes` (see ``write(_:timeout:)-(ArraySlice<UInt8>,_)``).
    @discardableResult
    public func write(_ bytes: [UInt8], timeout: Duration? = nil) async throws(HvSocketError) -> Int {
        try await self.write(bytes[...], timeout: timeout)
    }

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
        switch error {
        case .closed(let reason): return reason == .closedLocally ? .closed : .peerGone(reason)
        case .timedOut: return .timedOut
        case .cancelled: return .cancelled
        case .packetTooLarge, .invalidPacket, .requestorFull, .readerBusy, .invalidOption: return .unavailable("\(error)")
        }
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
