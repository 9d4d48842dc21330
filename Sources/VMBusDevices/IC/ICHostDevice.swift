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
    /// The guest opened the channel but never answered version negotiation — on Linux, the
    /// service's user-space daemon (`hv_kvp_daemon`, `hv_vss_daemon`, …) is not running.
    case negotiationUnanswered
    /// No answer within the timeout.
    case timedOut
    /// The answer was malformed.
    case badResponse(String)

    public var description: String {
        switch self {
        case .notConnected: return "the guest has not opened this service"
        case .noCommonVersion: return "no common version with the guest"
        case .negotiationUnanswered:
            return "the guest opened the service but never answered version negotiation (its daemon is not running)"
        case .timedOut: return "the guest did not answer in time"
        case .badResponse(let why): return "malformed answer: \(why)"
        }
    }
}

/// The host side of one integration service (06): offers the class as a message-mode pipe
/// channel, negotiates each time the guest opens it (OpenVMM's host algorithm), then runs one
/// request at a time — IC answers are matched by "the one outstanding request", never by
/// packet transaction id (06 §1.6).
///
/// Everything follows the *open*, not the guest connection: Linux closes and re-opens its IC
/// channels on `rmmod`/`modprobe hv_utils`, on hibernation and on kexec. Each open is a
/// session with its own negotiation; periodic work (``whileOpen(_:)``) starts when a
/// session is ready and is cancelled when its channel ends. A channel ends only after its
/// reader took what the guest had already written (the bus finishes channels, 04 §5): an
/// answer written just before the guest left is still delivered.
public final class ICHostDevice: HostDevice {
    public let offer: HostOffer
    /// The IC framework versions offered in negotiation, in the order they are sent.
    public let frameworkVersions: [ICVersion]
    /// The service versions offered in negotiation, in the order they are sent.
    public let serviceVersions: [ICVersion]
    /// How long a request waits for its answer.
    public let timeout: Duration

    /// `failed` keeps why: no common version, or the guest never answered (a timeout must not
    /// read as a version mismatch).
    enum Negotiation { case pending, ready(framework: ICVersion, service: ICVersion), failed(ICError) }

    /// One open of the channel.
    struct Session {
        let id: UInt64
        let channel: Channel
        var negotiation = Negotiation.pending
        var isReady: Bool { if case .ready = self.negotiation { return true } else { return false } }
    }

    struct State {
        var session: Session?
        /// Opens so far; the newest session's id.
        var sessions: UInt64 = 0
        /// Waits for a change of ``session`` (``waitUntil(timeout:_:)``).
        var watchers: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWatcher: UInt64 = 0
        /// Waits whose time ran out (or were cancelled) before they started waiting.
        var expiredWatchers: Set<UInt64> = []
        /// The request in flight: its number, its session, who waits for the answer, and when
        /// it times out.
        var pending: (
            number: UInt64, session: UInt64, continuation: CheckedContinuation<Result<ICMessage, ICError>, Never>,
            deadline: ContinuousClock.Instant
        )?
        /// Whether the task that times out requests runs (``startWatchdog(until:)``).
        var watchdog = false
        var nextNumber: UInt64 = 1
        /// Requests waiting for the one in flight.
        var queue: [CheckedContinuation<Void, Never>] = []
        var busy = false
        var stale: UInt64 = 0
        /// Operations of several requests in progress (a file copy), and whether a takeover
        /// keeps new ones from starting (``settle(timeout:)``).
        var operations = 0
        var settling = false
        /// Tests only: runs after a negotiation's exchange ended, before its outcome is
        /// recorded — where a late answer can slip in.
        var beforeSettling: (@Sendable () async -> Void)?
    }

    let state = Locked(State())

    /// - Parameters:
    ///   - classID: the service class (e.g. `DeviceClass.heartbeat`'s).
    ///   - instance: the offer's instance GUID.
    ///   - serviceVersions: the versions offered, in the order they are sent.
    ///   - frameworkVersions: the IC framework versions offered in the negotiation, in order.
    ///   - timeout: how long a request waits for the guest's answer before it fails with
    ///     ``ICError/timedOut``.
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

    /// The negotiated versions of the open channel, once the guest answered.
    public var negotiated: (framework: ICVersion, service: ICVersion)? {
        self.state.withLock { if case .ready(let f, let s)? = $0.session?.negotiation { return (f, s) } else { return nil } }
    }

    /// Whether the guest has the channel open.
    public var isConnected: Bool { self.state.withLock { $0.session != nil } }

    /// The executor of the thread that takes the open channel's doorbell, if its substrate has
    /// one (`Channel.taskExecutor`): where a run of requests (a file copy) waits for its
    /// answers with no hop to another thread.
    public var taskExecutor: (any TaskExecutor)? { self.state.withLock { $0.session?.channel.taskExecutor } }

    /// How often the guest opened the channel so far.
    public var openCount: UInt64 { self.state.withLock { $0.sessions } }

    /// What the service is doing now, for status displays.
    public var phase: ICPhase {
        self.state.withLock { state in
            guard let session = state.session else { return .closed }
            switch session.negotiation {
            case .pending: return .negotiating
            case .ready(let framework, let service): return .open(framework: framework, service: service)
            case .failed(let why): return .failed(why)
            }
        }
    }

    public func opened(_ channel: Channel, info: HostChannelInfo) {
        // The reader is taken now, not in the task: a channel the bus finishes before the task
        // runs must still find an active reader, or what the guest wrote would be dropped.
        let reader = try? channel.reader()
        let session: UInt64 = self.state.withLock { state in
            state.sessions += 1
            state.session = Session(id: state.sessions, channel: channel)
            return state.sessions
        }
        self.notifyWatchers()
        // The reader only matches answers to the request in flight and resumes its waiter: it
        // runs on the thread that takes the channel's doorbell (where the substrate has one),
        // so an answer costs no wake-up of another thread.
        Task(executorPreference: channel.taskExecutor) {
            if let reader { while let packet = await reader.next() { self.response(packet, session: session) } }
            self.ended(session)
        }
        Task { await self.negotiate(session) }
    }

    /// Nothing to do here: the session ends when its reader has drained the channel (a
    /// re-open may already have started the next one).
    public func closed(relid: UInt32) {}

    /// The channel of `session` ended and its reader took everything: fail what still waits
    /// for it, wake waiters, end its periodic work.
    func ended(_ session: UInt64) {
        let pending: CheckedContinuation<Result<ICMessage, ICError>, Never>? = self.state.withLock { state in
            // A re-open may already have started the next session; the request in flight on
            // this one fails either way (it holds the turn the next session's negotiation
            // waits for).
            if state.session?.id == session { state.session = nil }
            guard let pending = state.pending, pending.session == session else { return nil }
            state.pending = nil
            return pending.continuation
        }
        pending?.resume(returning: .failure(.notConnected))
        self.notifyWatchers()
    }

    // MARK: Waiting for the channel

    /// Waits until the guest opens the channel (at once if it is open).
    public func waitForOpen() async {
        _ = await self.waitForOpen(timeout: nil)
    }

    /// Waits until the guest opens the channel, at most `timeout` (forever when `nil`) and only
    /// while the task is not cancelled.
    /// - Returns: whether it is open.
    public func waitForOpen(timeout: Duration?) async -> Bool {
        await self.waitUntil(timeout: timeout) { $0.session != nil }
    }

    /// Waits until the channel is closed (at once if it is), at most `timeout` and only while
    /// the task is not cancelled. "Closed" means its reader has taken everything the guest
    /// wrote before closing.
    /// - Returns: whether it is closed.
    public func waitForClose(timeout: Duration?) async -> Bool {
        await self.waitUntil(timeout: timeout) { $0.session == nil }
    }

    /// Waits until the open channel is negotiated (at once if it is), at most `timeout`.
    /// A negotiation the guest answers late (its daemon started) still counts.
    /// - Returns: whether it is negotiated.
    public func waitForNegotiation(timeout: Duration?) async -> Bool {
        await self.waitUntil(timeout: timeout) { $0.session?.isReady == true }
    }

    /// Waits until negotiation of the open channel finished.
    /// - Throws: ``ICError/noCommonVersion``, ``ICError/negotiationUnanswered`` or
    ///   ``ICError/notConnected`` (no channel open, or it closed).
    public func ready() async throws(ICError) -> (framework: ICVersion, service: ICVersion) {
        guard self.isConnected else { throw ICError.notConnected }
        _ = await self.waitUntil(timeout: nil) { state in
            guard let session = state.session else { return true }
            if case .pending = session.negotiation { return false }
            return true
        }
        return try self.state.withLock { state throws(ICError) -> (framework: ICVersion, service: ICVersion) in
            switch state.session?.negotiation {
            case .ready(let framework, let service)?: return (framework, service)
            case .failed(let why)?: throw why
            case .pending?, nil: throw ICError.notConnected
            }
        }
    }

    /// Runs `body` for every open of the channel whose negotiation succeeded, one after the
    /// other, until the calling task is cancelled. `body` is cancelled when its channel ends,
    /// so periodic work (heartbeats, time samples) follows each open — a re-open after any
    /// gap starts it again, with its first message first.
    public func whileOpen(_ body: @escaping @Sendable () async -> Void) async {
        var last: UInt64 = 0
        while !Task.isCancelled {
            let next = await self.nextReadySession(after: last)
            guard let next else { return }
            last = next
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await body() }
                group.addTask { _ = await self.waitUntil(timeout: nil) { $0.session?.id != next } }
                await group.next()
                group.cancelAll()
            }
        }
    }

    /// The next session after `last` that is open and negotiated; `nil` when cancelled.
    func nextReadySession(after last: UInt64) async -> UInt64? {
        let found = await self.waitUntil(timeout: nil) { state in
            guard let session = state.session else { return false }
            return session.id > last && session.isReady
        }
        guard found else { return nil }
        return self.state.withLock { $0.session?.id }
    }

    /// Waits until `condition` holds of the state, `timeout` passes (forever when `nil`) or
    /// the task is cancelled; re-checked on every open, negotiation and end.
    /// - Returns: whether the condition holds.
    func waitUntil(timeout: Duration?, _ condition: @escaping @Sendable (borrowing State) -> Bool) async -> Bool {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        while true {
            if self.state.withLock({ condition($0) }) { return true }
            if Task.isCancelled { return false }
            if let deadline, ContinuousClock.now >= deadline { return false }
            let id = self.state.withLock { state in
                state.nextWatcher += 1
                return state.nextWatcher
            }
            let timer = deadline.map { deadline in
                Task { [weak self] in
                    try? await Task.sleep(until: deadline)
                    self?.wake(id)
                }
            }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let now: Bool = self.state.withLock { state in
                        if condition(state) || state.expiredWatchers.remove(id) != nil { return true }
                        state.watchers[id] = continuation
                        return false
                    }
                    if now { continuation.resume() }
                }
            } onCancel: {
                self.wake(id)
            }
            timer?.cancel()
            self.state.withLock { _ = $0.expiredWatchers.remove(id) }
        }
    }

    /// Ends one wait early (its time ran out, or its task was cancelled); one that has not
    /// started waiting yet returns at once.
    func wake(_ id: UInt64) {
        let waiter: CheckedContinuation<Void, Never>? = self.state.withLock { state in
            guard let waiter = state.watchers.removeValue(forKey: id) else {
                state.expiredWatchers.insert(id)
                return nil
            }
            return waiter
        }
        waiter?.resume()
    }

    /// The session changed: every wait looks at its condition again.
    func notifyWatchers() {
        let watchers: [CheckedContinuation<Void, Never>] = self.state.withLock { state in
            defer { state.watchers = [:] }
            return Array(state.watchers.values)
        }
        for watcher in watchers { watcher.resume() }
    }

    /// Answers that matched no request in flight, or were malformed.
    public var staleAnswers: UInt64 { self.state.withLock { $0.stale } }
}

/// Where a host-side service stands, for `vmbus ctl status`.
public enum ICPhase: Hashable, Sendable, CustomStringConvertible {
    /// The guest has not opened the channel, or closed it.
    case closed
    /// Open; version negotiation has not finished.
    case negotiating
    /// Open and negotiated.
    case open(framework: ICVersion, service: ICVersion)
    /// Open, but negotiation failed (no common version, or never answered).
    case failed(ICError)

    public var description: String {
        switch self {
        case .closed: return "closed"
        case .negotiating: return "open, negotiating"
        case .open(let framework, let service): return "open, framework \(framework), version \(service)"
        case .failed(let why): return "open, unusable: \(why)"
        }
    }
}
