import VMBusChannel
import VMBusHost
import VMBusMemory
import VMBusWire

/// The guest side of heartbeat (06 §3): add one to the sequence number and send it back.
public final class HeartbeatGuest: ICGuestService {
    public let name = "hv_utils-heartbeat"
    public var classID: GUID { DeviceClass.heartbeat.classID }
    public let serviceVersions = ICVersions.linuxHeartbeat
    let answered = Locked(0)

    /// A heartbeat service that answers every request.
    public init() {}

    /// Heartbeats answered.
    public var count: Int { self.answered.withLock { $0 } }

    public func answer(_ message: inout ICMessage, version: ICVersion) -> ICDisposition {
        guard message.header.messageType == .heartbeat else { return .reply(.fail) }
        // Linux needs only the sequence number (the host may not fill the rest).
        guard message.remainder.count >= HeartbeatMessage.minimumSize else { return .drop }
        var bytes = Array(message.remainder)
        var sequence: UInt64 = 0
        for i in 0..<8 { sequence |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        sequence &+= 1
        for i in 0..<8 { bytes[i] = UInt8(truncatingIfNeeded: sequence >> (8 * UInt64(i))) }
        message.remainder = bytes[...]
        self.answered.withLock { $0 += 1 }
        return .reply(.ok)
    }
}

/// What the host knows of a guest's liveness.
public enum GuestHealth: Hashable, Sendable {
    /// The last heartbeat was answered, at this reference time (100 ns, spec 09 §3).
    case healthy(lastAnswer: UInt64)
    /// Heartbeats go unanswered; the last answer was at this time (`nil`: never).
    case lost(lastAnswer: UInt64?)
    /// The guest has not opened the heartbeat channel (or negotiation failed).
    case notRunning
}

/// The host side of heartbeat: sends sequence numbers, checks the answers.
public final class HeartbeatHost: Sendable {
    /// The integration-service device to register on the host bus.
    public let device: ICHostDevice
    struct State {
        var sequence: UInt64 = 0
        var lastAnswer: UInt64?
        var missed = 0
        /// The period of ``start(interval:)`` (for judging an answer overdue).
        var interval: Duration = .seconds(2)
    }
    let state = Locked(State())
    /// How long one heartbeat waits for its answer.
    public let timeout: Duration

    /// - Parameters:
    ///   - instance: the offer's instance GUID; by default the class GUID.
    ///   - timeout: how long one heartbeat waits for its answer.
    ///   - interval: the period ``start(interval:)`` uses by default, and the one ``health``
    ///     judges overdue answers by.
    public init(instance: GUID = DeviceClass.heartbeat.classID, timeout: Duration = .seconds(5), interval: Duration = .seconds(2)) {
        self.timeout = timeout
        self.device = ICHostDevice(
            classID: DeviceClass.heartbeat.classID, instance: instance, serviceVersions: [ICVersion(1, 0), ICVersion(3, 0)],
            timeout: timeout)
        self.state.withLock { $0.interval = interval }
    }

    /// Sends one heartbeat and checks that the answer is the sequence number plus one.
    /// - Returns: the sequence number the guest answered with.
    @discardableResult
    public func beat() async throws(ICError) -> UInt64 {
        let sequence = self.state.withLock { state in
            state.sequence &+= 1
            return state.sequence
        }
        var writer = WireWriter()
        HeartbeatMessage(sequenceNumber: sequence, applicationState: .healthy).write(to: &writer)
        let answer: ICMessage
        do {
            answer = try await self.device.transact(.heartbeat, body: writer.bytes)
        } catch {
            self.state.withLock { $0.missed += 1 }
            throw error
        }
        var reader = WireReader(answer.body)
        guard answer.header.status.isSuccess, let body = try? HeartbeatMessage(from: &reader),
            body.sequenceNumber == sequence &+ 1
        else {
            self.state.withLock { $0.missed += 1 }
            throw ICError.badResponse("heartbeat \(sequence) answered wrongly")
        }
        self.state.withLock { state in
            state.lastAnswer = SystemClock.referenceTime()
            state.missed = 0
        }
        return body.sequenceNumber
    }

    /// Sends a heartbeat every `interval` (Hyper-V: about every 2 s) for as long as the task
    /// runs: from each open of the channel (once negotiated) to its close, again after every
    /// re-open. Cancel the task to stop.
    @discardableResult
    public func start(interval: Duration? = nil) -> Task<Void, Never> {
        let interval = self.state.withLock { state in
            if let interval { state.interval = interval }
            return state.interval
        }
        return Task { [self] in
            await self.device.whileOpen {
                while !Task.isCancelled {
                    _ = try? await self.beat()
                    try? await Task.sleep(for: interval)
                }
            }
        }
    }

    /// The guest's health as of the last heartbeat: healthy only while answers keep coming —
    /// an answer older than one interval plus the answer timeout is overdue.
    public var health: GuestHealth { self.health(at: SystemClock.referenceTime()) }

    /// The guest's health as it will be at reference time `now` (100 ns units) if nothing
    /// more is answered.
    public func health(at now: UInt64) -> GuestHealth {
        guard self.device.isConnected, self.device.negotiated != nil else { return .notRunning }
        return self.state.withLock { state in
            // 100 ns units, as the reference time.
            let limit = (state.interval + self.timeout).components
            let overdue = UInt64(max(0, limit.seconds)) * 10_000_000 + UInt64(max(0, limit.attoseconds) / 100_000_000_000)
            if state.missed == 0, let last = state.lastAnswer, now &- last <= overdue { return .healthy(lastAnswer: last) }
            return .lost(lastAnswer: state.lastAnswer)
        }
    }
}
