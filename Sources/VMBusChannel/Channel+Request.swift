import VMBusMemory
import VMBusRing
import VMBusWire

extension Channel {
    /// Sends an in-band request with a fresh transaction id and returns the payload of the
    /// completion that answers it (padding included, as the peer sent it).
    ///
    /// Someone must be reading the channel (``receive(_:)`` or a ``ChannelReader``): the reader
    /// routes completions to the waiting requests.
    /// - Throws: ``ChannelError/requestorFull`` when every id is outstanding;
    ///   ``ChannelError/closed(_:)`` if the channel closes first.
    public func request(_ payload: ArraySlice<UInt8>) async throws(ChannelError) -> [UInt8] {
        try await self.request { id throws(ChannelError) in
            try await self.send(inBand: payload, transactionID: id, completionRequested: true)
        }
    }

    /// Sends a GPA-direct request (completion requested) and returns the completion's payload.
    public func request(
        gpaDirect ranges: [GpaRange], payload: ArraySlice<UInt8>, form: GpaDirectForm = .mpb
    ) async throws(ChannelError) -> [UInt8] {
        try await self.request { id throws(ChannelError) in
            try await self.send(encoded: Self.encodeGpaDirect(ranges, payload, form, id, true))
        }
    }

    /// Allocates an id, lets `send` write the request with it, then waits for the answer.
    func request(_ send: (UInt64) async throws(ChannelError) -> Void) async throws(ChannelError) -> [UInt8] {
        let allocated: Result<UInt64, ChannelError> = self.requests.withLock { state in
            if let reason = state.closed { return .failure(.closed(reason)) }
            guard let id = state.table.allocate(.sending) else { return .failure(.requestorFull) }
            return .success(id)
        }
        let id = try allocated.get()
        do {
            try await send(id)
        } catch {
            self.requests.withLock { _ = $0.table.complete(id) }
            throw error
        }
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<[UInt8], ChannelError>, Never>) in
            let now: Result<[UInt8], ChannelError>? = self.requests.withLock { state in
                switch state.table.value(id) {
                case .answered(let bytes)?:
                    _ = state.table.complete(id)
                    return .success(bytes)
                case .sending?:
                    state.table.update(id, .waiting(continuation))
                    return nil
                case .waiting?, nil:
                    // Gone: the channel closed and released every id.
                    return .failure(.closed(state.closed ?? .closedLocally))
                }
            }
            if let now { continuation.resume(returning: now) }
        }
        return try result.get()
    }

    /// Hands a completion to the request it answers. The id comes from the peer: it is
    /// looked up, never trusted.
    /// - Returns: `true` if the packet was consumed (answered a request, or was dropped as bogus).
    func routeCompletion(_ packet: ChannelPacket) -> Bool {
        let id = packet.descriptor.transactionID
        enum Route {
            case resume(CheckedContinuation<Result<[UInt8], ChannelError>, Never>)
            case consumed
            case unknown
        }
        let route: Route = self.requests.withLock { state in
            switch state.table.value(id) {
            case .waiting(let continuation)?:
                _ = state.table.complete(id)
                state.completed += 1
                return .resume(continuation)
            case .sending?:
                state.table.update(id, .answered(Array(packet.payload)))
                state.completed += 1
                return .consumed
            case .answered?, nil:
                // Not outstanding (or answered twice): the peer's id is bogus.
                guard self.options.rejectUnknownCompletions else { return .unknown }
                state.rejected += 1
                return .consumed
            }
        }
        switch route {
        case .resume(let continuation):
            continuation.resume(returning: .success(Array(packet.payload)))
            return true
        case .consumed: return true
        case .unknown: return false
        }
    }
}
