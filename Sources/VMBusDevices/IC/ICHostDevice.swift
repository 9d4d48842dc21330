import VMBusMemory
import VMBusChannel
import VMBusHost
import VMBusWire

/// Why a host-side integration-service request failed.
public enum ICError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The guest has not opened the service's channel (or it closed).
    case notConnected
    /// Negotiation found no common version: the service is unusable.
    case noCommonVersion
    /// No answer within the timeout.
    case timedOut
    /// The answer was malformed.
    case badResponse(String)

    public var description: String {
        switch self {
        case .notConnected: return "the guest has not opened this service"
        case .noCommonVersion: return "no common version with the guest"
        case .timedOut: return "the guest did not answer in time"
        case .badResponse(let why): return "malformed answer: \(why)"
        }
    }
}

/// The host side of one integration service (06): offers the class as a message-mode pipe
/// channel, negotiates when the guest opens it (OpenVMM's host algorithm), then runs one
/// request at a time — IC answers are matched by "the one outstanding request", never by
/// packet transaction id (06 §1.6).
public final class ICHostDevice: HostDevice {
    public let offer: HostOffer
    public let frameworkVersions: [ICVersion]
    public let serviceVersions: [ICVersion]
    /// How long a request waits for its answer.
    public let timeout: Duration

    /// `failed` keeps why: no common version, or the guest never answered (a timeout must not
    /// read as a version mismatch).
    enum Negotiation { case pending, ready(framework: ICVersion, service: ICVersion), failed(ICError) }

    struct State {
        var channel: Channel?
        var negotiation = Negotiation.pending
        var readyWaiters: [CheckedContinuation<Void, Never>] = []
        var openWaiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter: UInt64 = 0
        /// Waits whose time ran out before they started waiting.
        var expiredWaiters: Set<UInt64> = []
        /// The request in flight: its number and who waits for the answer.
        var pending: (number: UInt64, continuation: CheckedContinuation<Result<ICMessage, ICError>, Never>)?
        var nextNumber: UInt64 = 1
        /// Requests waiting for the one in flight.
        var queue: [CheckedContinuation<Void, Never>] = []
        var busy = false
        var stale: UInt64 = 0
        /// Counts opens, so a negotiation that ends after its channel closed and the next one
        /// opened cannot overwrite the new open's state.
        var opens: UInt64 = 0
    }

    let state = Locked(State())

    /// - Parameters:
    ///   - classID: the service class (e.g. ``DeviceClass/heartbeat``'s).
    ///   - serviceVersions: the versions offered, in the order they are sent.
    public init(
        classID: GUID, instance: GUID, serviceVersions: [ICVersion], frameworkVersions: [ICVersion] = ICVersions.openVMMFramework,
        timeout: Duration = .seconds(10)
    ) {
        // Message-mode pipe parameters: pipe_mode 4 at offer offset 60 (06 §1). Locally built,
        // always 120 bytes.
        var writer = WireWriter(capacity: UserDefinedBytes.size)
        try? PipeOfferParameters(pipeMode: PipeOfferParameters.messageMode).write(to: &writer)
        let area = (try? UserDefinedBytes(writer.bytes)) ?? UserDefinedBytes()
        self.offer = HostOffer(interfaceType: classID, interfaceInstance: instance, flags: .pipe, userDefined: area)
        self.frameworkVersions = frameworkVersions
        self.serviceVersions = serviceVersions
        self.timeout = timeout
    }

    /// The negotiated versions, once the guest answered.
    public var negotiated: (framework: ICVersion, service: ICVersion)? {
        self.state.withLock { if case .ready(let f, let s) = $0.negotiation { return (f, s) } else { return nil } }
    }

    /// Whether the guest has the channel open.
    public var isConnected: Bool { self.state.withLock { $0.channel != nil } }

    public func opened(_ channel: Channel, info: HostChannelInfo) {
        let (waiters, open) = self.state.withLock { state in
            state.channel = channel
            state.negotiation = .pending
            state.opens += 1
            defer { state.openWaiters = [:] }
            return (Array(state.openWaiters.values), state.opens)
        }
        for waiter in waiters { waiter.resume() }
        Task { _ = try? await channel.receive { packet in self.response(packet) } }
        Task { await self.negotiate(open: open) }
    }

    public func closed(relid: UInt32) {
        let (pending, waiters) = self.state.withLock { state in
            state.channel = nil
            state.negotiation = .failed(.notConnected)
            let pending = state.pending
            state.pending = nil
            let waiters = state.readyWaiters
            state.readyWaiters = []
            return (pending, waiters)
        }
        pending?.continuation.resume(returning: .failure(.notConnected))
        for waiter in waiters { waiter.resume() }
    }

    /// Waits until the guest opens the channel (at once if it is open).
    public func waitForOpen() async {
        _ = await self.waitForOpen(timeout: nil)
    }

    /// Waits until the guest opens the channel, at most `timeout` (forever when `nil`) and only
    /// while the task is not cancelled.
    /// - Returns: whether it is open.
    public func waitForOpen(timeout: Duration?) async -> Bool {
        let id = self.state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        var timer: Task<Void, Never>?
        if let timeout {
            timer = Task { [weak self] in
                try? await Task.sleep(for: timeout)
                self?.expire(id)
            }
        }
        defer { timer?.cancel() }
        // Cancellation ends the wait as the timeout does.
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now: Bool = self.state.withLock { state in
                    if state.channel != nil || state.expiredWaiters.remove(id) != nil { return true }
                    state.openWaiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            self.expire(id)
        }
        self.state.withLock { _ = $0.expiredWaiters.remove(id) }
        return self.isConnected
    }

    /// A timed wait for the open ran out: wake it, or make it return at once if it has not
    /// started waiting yet.
    func expire(_ id: UInt64) {
        let waiter: CheckedContinuation<Void, Never>? = self.state.withLock { state in
            guard let waiter = state.openWaiters.removeValue(forKey: id) else {
                state.expiredWaiters.insert(id)
                return nil
            }
            return waiter
        }
        waiter?.resume()
    }

    /// Waits until negotiation finished (or the channel went away).
    /// - Throws: ``ICError/noCommonVersion`` or ``ICError/notConnected``.
    public func ready() async throws(ICError) -> (framework: ICVersion, service: ICVersion) {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now: Bool = self.state.withLock { state in
                if case .pending = state.negotiation, state.channel != nil {
                    state.readyWaiters.append(continuation)
                    return false
                }
                return true
            }
            if now { continuation.resume() }
        }
        return try self.state.withLock { state throws(ICError) -> (framework: ICVersion, service: ICVersion) in
            switch state.negotiation {
            case .ready(let framework, let service): return (framework, service)
            case .failed(let why): throw state.channel == nil ? ICError.notConnected : why
            case .pending: throw ICError.notConnected
            }
        }
    }

    /// Sends one request of `type` with `body` at the negotiated versions and returns the
    /// guest's answer. One request is in flight at a time; others wait their turn.
    public func transact(_ type: ICMessageType, body: [UInt8]) async throws(ICError) -> ICMessage {
        let (framework, service) = try await self.ready()
        var header = ICMessageHeader(frameworkVersion: framework, messageType: type, messageVersion: service, messageSize: 0)
        header.flags = .hostRequest
        let message: ICMessage
        do { message = try ICMessage(header: header, body: body) } catch { throw ICError.badResponse("request too large: \(error)") }
        return try await self.exchange(message)
    }

    /// The version negotiation of 06 §2.2 for open number `open`.
    func negotiate(open: UInt64) async {
        let outcome: Negotiation
        if let request = try? ICNegotiation.request(framework: self.frameworkVersions, service: self.serviceVersions) {
            do throws(ICError) {
                let response = try await self.exchange(request)
                if let chosen = try? ICNegotiation.chosen(in: response) {
                    outcome = .ready(framework: chosen.framework, service: chosen.service)
                } else {
                    outcome = .failed(.noCommonVersion)
                }
            } catch {
                outcome = .failed(error)
            }
        } else {
            // Version lists too long to send: nothing can be agreed.
            outcome = .failed(.noCommonVersion)
        }
        let waiters: [CheckedContinuation<Void, Never>] = self.state.withLock { state in
            // A program that attached and left unanswered, then the next one attached: this
            // outcome belongs to the old open; the new open's negotiation decides.
            guard state.opens == open else { return [] }
            state.negotiation = outcome
            let waiters = state.readyWaiters
            state.readyWaiters = []
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Sends `message` once nothing else is in flight; waits for its answer or the timeout.
    func exchange(_ message: ICMessage) async throws(ICError) -> ICMessage {
        await self.takeTurn()
        defer { self.passTurn() }
        guard let channel = self.state.withLock({ $0.channel }) else { throw ICError.notConnected }
        let number = self.state.withLock { state in
            defer { state.nextNumber += 1 }
            return state.nextNumber
        }
        let timeout = self.timeout
        let timer = Task {
            try? await Task.sleep(for: timeout)
            self.finish(number, .failure(.timedOut))
        }
        defer { timer.cancel() }
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<ICMessage, ICError>, Never>) in
            self.state.withLock { $0.pending = (number, continuation) }
            Task {
                do {
                    try await channel.send(inBand: message.encode()[...], transactionID: number)
                } catch {
                    self.finish(number, .failure(.notConnected))
                }
            }
        }
        return try result.get()
    }

    /// Completes request `number` (once: a late answer or timer finds nothing to complete).
    func finish(_ number: UInt64, _ result: Result<ICMessage, ICError>) {
        let continuation = self.state.withLock { state -> CheckedContinuation<Result<ICMessage, ICError>, Never>? in
            guard let pending = state.pending, pending.number == number else { return nil }
            state.pending = nil
            return pending.continuation
        }
        continuation?.resume(returning: result)
    }

    /// A packet from the guest: the answer to the request in flight, or stale.
    func response(_ packet: ChannelPacket) {
        guard packet.descriptor.type == .dataInBand, let message = try? ICMessage(payload: packet.payload),
            message.header.flags.contains(.response)
        else {
            self.state.withLock { $0.stale += 1 }
            return
        }
        let number: UInt64? = self.state.withLock { state in
            // Answers of another type are stale (from before a reset): dropped (06 §2.2).
            guard let pending = state.pending else {
                state.stale += 1
                return nil
            }
            return pending.number
        }
        if let number { self.finish(number, .success(message)) }
    }

    func takeTurn() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now: Bool = self.state.withLock { state in
                if !state.busy {
                    state.busy = true
                    return true
                }
                state.queue.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    func passTurn() {
        let next: CheckedContinuation<Void, Never>? = self.state.withLock { state in
            if state.queue.isEmpty {
                state.busy = false
                return nil
            }
            return state.queue.removeFirst()
        }
        next?.resume()
    }

    /// Answers that matched no request in flight, or were malformed.
    public var staleAnswers: UInt64 { self.state.withLock { $0.stale } }
}
