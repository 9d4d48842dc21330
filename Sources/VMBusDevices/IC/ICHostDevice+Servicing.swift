import VMBusChannel
import VMBusHost
import VMBusMemory
import VMBusWire

/// An integration service across a host takeover (docs/SERVICING.md): quiescing takes the
/// service's turn — the request in flight is answered first, later ones wait behind it, so no
/// request is ever half done in the old process — and the saved state is the negotiation of the
/// open channel. The new process's service carries on at the negotiated versions; a channel
/// saved before its negotiation ran negotiates in the new process.
extension ICHostDevice: ServiceableDevice {
    enum Tag {
        static let negotiation: UInt16 = 1
        static let framework: UInt16 = 2
        static let service: UInt16 = 3
        static let failure: UInt16 = 4
    }

    /// Waits for the operations in progress (a file copy's fragments need the channel
    /// running) and refuses new ones until ``resumeAfterSettle()``.
    public func settle(timeout: Duration) async -> Bool {
        self.state.withLock { $0.settling = true }
        guard await pollUntil(timeout: timeout, every: .milliseconds(2), { self.state.withLock { $0.operations == 0 } }) else {
            self.resumeAfterSettle()
            return false
        }
        return true
    }

    public func resumeAfterSettle() { self.state.withLock { $0.settling = false } }

    /// Starts an operation of several requests; `false` while a takeover settles the device.
    func beginOperation() -> Bool {
        self.state.withLock { state in
            guard !state.settling else { return false }
            state.operations += 1
            return true
        }
    }

    func endOperation() { self.state.withLock { $0.operations -= 1 } }

    public func quiesce(timeout: Duration) async -> Bool {
        // Once per takeover, for at most the one request in flight.
        await pollUntil(timeout: timeout) {
            self.state.withLock { state in
                guard !state.busy else { return false }
                state.busy = true
                return true
            }
        }
    }

    public func resumeAfterQuiesce() { self.passTurn() }

    public func saveState(relid: UInt32) throws(SavedStateError) -> [UInt8] {
        let negotiation = self.state.withLock { $0.session?.negotiation }
        var w = StateWriter()
        switch negotiation {
        case .ready(let framework, let service)?:
            w.write(Tag.negotiation, UInt8(1))
            w.write(Tag.framework, UInt32(framework.major) << 16 | UInt32(framework.minor))
            w.write(Tag.service, UInt32(service.major) << 16 | UInt32(service.minor))
        case .failed(let why)?:
            w.write(Tag.negotiation, UInt8(2))
            w.write(Tag.failure, why == .noCommonVersion ? UInt8(1) : UInt8(0))
        case .pending?, nil:
            w.write(Tag.negotiation, UInt8(0))
        }
        return w.bytes
    }

    public func restored(_ channel: Channel, info: HostChannelInfo, state saved: [UInt8]) throws(SavedStateError) {
        let r = try StateReader(saved[...])
        func version(_ tag: UInt16) throws(SavedStateError) -> ICVersion {
            let packed = try r.uint32(tag)
            return ICVersion(UInt16(packed >> 16), UInt16(packed & 0xFFFF))
        }
        let negotiation: Negotiation
        switch try r.uint8(Tag.negotiation) {
        case 0: negotiation = .pending
        case 1: negotiation = .ready(framework: try version(Tag.framework), service: try version(Tag.service))
        case 2: negotiation = .failed(try r.uint8(Tag.failure) == 1 ? .noCommonVersion : .negotiationUnanswered)
        case let other: throw SavedStateError("integration service state \(other)")
        }
        let reader: ChannelReader
        do { reader = try channel.reader() } catch { throw SavedStateError("integration service channel: \(error)") }
        let session: UInt64 = self.state.withLock { state in
            state.sessions += 1
            state.session = Session(id: state.sessions, channel: channel, negotiation: negotiation)
            return state.sessions
        }
        self.notifyWatchers()
        Task {
            while let packet = await reader.next() { self.response(packet, session: session) }
            self.ended(session)
        }
        if case .pending = negotiation { Task { await self.negotiate(session) } }
    }
}
