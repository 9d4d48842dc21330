import Foundation
import Synchronization
import VMBusChannel
import VMBusMemory
import VMBusWire

/// Plays a captured guest against a live host over the local substrate (spec 09): new guest
/// memory of the captured size, the captured HELLO, then every message, packet and buffer the
/// guest sent, in order — each sent once the host's answers before it in the capture have come
/// and been compared. The guest's ring GPADLs are followed so its channels' rings can be set
/// up where the host expects them.
public final class ReplayGuest: Sendable {
    /// What one connection's replay found.
    public struct Outcome: Sendable {
        public var connection: UInt32
        public var differences: [ReplayDifference] = []
        /// Items sent, and answers compared (equal or not).
        public var sent = 0
        public var compared = 0
        /// Answers not compared because their stream had already differed.
        public var skipped = 0
        /// What the host sent beyond the capture on a channel (not counted as a difference:
        /// a timer-driven service may send once more in a longer session).
        public var extra: [String] = []
        /// How the connection ended, when it ended before the script.
        public var ended: String?
    }

    let script: ReplayScript
    let path: String
    let timeout: Duration
    let operate: (@Sendable (UInt32, OperatorRequest) -> Void)?

    /// - Parameters:
    ///   - timeout: how long to wait for each answer the capture has.
    ///   - operate: makes an operator's request to the live host, for the guest of the given
    ///     connection (e.g. through its admin socket); it may block until the host is done.
    ///     Without it, such requests are not made, and the traffic they started is missed.
    public init(
        script: ReplayScript, path: String, timeout: Duration = .seconds(10),
        operate: (@Sendable (UInt32, OperatorRequest) -> Void)? = nil
    ) {
        self.script = script
        self.path = path
        self.timeout = timeout
        self.operate = operate
    }

    /// Runs the script to its end on this thread.
    /// - Throws: ``ReplayScript/Unreplayable`` when the replay cannot start: the socket, the
    ///   memory, or a script that does not start with HELLO.
    public func run() throws(ReplayScript.Unreplayable) -> Outcome {
        try self.run(clock: nil)
    }

    func run(clock: ReplayClock?) throws(ReplayScript.Unreplayable) -> Outcome {
        let me = self.script.connection
        defer { clock?.advance(me, to: Int.max) }
        guard let hello = self.script.steps.first, case .frame(1, _) = hello.item else {
            throw ReplayScript.Unreplayable("connection \(self.script.connection) does not start with HELLO")
        }
        clock?.waitForTurn(me, record: hello.record)
        let memory: GuestMemory
        let socket: LocalSocket
        do {
            memory = try GuestMemory(size: Int(self.script.memoryBytes))
            socket = try LocalSocket.connect(path: self.path)
            try socket.send(
                SubstrateFrame.hello(version: SubstrateFrame.version, pageSize: UInt32(GpaRange.pageSize), memoryBytes: self.script.memoryBytes)
                    .encode(), fds: [memory.fileDescriptor])
        } catch {
            throw ReplayScript.Unreplayable("connection \(self.script.connection): \(error)")
        }
        let link: ReplayLink
        do { link = try ReplayLink(socket: socket, peer: "host") } catch {
            throw ReplayScript.Unreplayable("connection \(self.script.connection): \(error)")
        }
        link.start(name: "vmbus-replay-\(self.script.connection)") { frame, fds in
            switch frame {
            case .doorbells(let relid, _) where fds.count == 2:
                link.addDoorbells(relid: relid, toPeer: EventFD(taking: fds[0]), fromPeer: EventFD(taking: fds[1]))
            default:
                for fd in fds { DescriptorIO.close(fd) }
            }
            return true
        }
        defer { link.stop() }
        var guest = ReplayMemory(memory: memory.memory, fileDescriptor: memory.fileDescriptor)
        var run = ReplayRun(connection: me, timeout: self.timeout, peerIsGuest: false)
        var requested: VMBusVersion?
        for step in self.script.steps.dropFirst() {
            clock?.advance(me, to: step.record)
            clock?.waitForTurn(me, record: step.record)
            switch step.action {
            case .operate:
                guard case .operatorRequest(let request) = step.item, let operate = self.operate else {
                    run.outcome.skipped += 1
                    continue
                }
                // On a thread of its own: the host answers the operator only once this guest
                // (the replay, below) has answered the host.
                ThreadName.start("vmbus-replay-operator") { operate(me, request) }
                run.outcome.sent += 1
            case .send:
                switch step.item {
                case .frame(_, let bytes):
                    try? socket.send(bytes)
                case .message(let port, let bytes):
                    let message = try? ChannelMessage.parse(bytes[...], version: requested, features: [], trailingBytes: .ignore)
                    if let message {
                        guest.track(message)
                        if case .initiateContact(let contact) = message { requested = contact.versionRequested }
                        if case .openChannel(let open) = message { Self.open(open, in: guest, link: link) }
                    }
                    let frame = SubstrateFrame.message(
                        connectionID: port != 0 ? port : VMBusConnectionID.message, messageType: VMBusConnectionID.synicMessageType,
                        payload: bytes)
                    try? socket.send(frame.encode())
                    if case .closeChannel(let close)? = message {
                        link.channels.withLock { $0.removeValue(forKey: close.childRelID) }?.close(.closedLocally)
                    }
                case .packet:
                    if !run.send(step, on: link) { continue }
                case .buffer(_, let gpadl, let offset, let bytes):
                    _ = guest.write(bytes, gpadl: gpadl, offset: offset)
                case .operatorRequest:
                    continue
                }
                run.outcome.sent += 1
            case .expect:
                if run.skips(step) { continue }
                if case .buffer(let relid, _, _, _) = step.item {
                    // Lent with the packet just compared: read where the host put it now.
                    let comparison = run.comparison
                    run.expectBuffer(step) { gpadl, offset, count in
                        guest.read(gpadl: gpadl, offset: comparison.liveOffset(offset, relid: relid), count: count)
                    }
                    continue
                }
                if case .message(_, let bytes) = step.item { run.comparison.learn(offer: bytes, version: requested) }
                // A channel the host did not open as it did: its packets cannot follow.
                if !run.expect(step, from: link.inbox).matched, case .message(_, let captured) = step.item,
                    case .openResult(let result)? = try? ChannelMessage.parse(captured[...], version: requested, features: [])
                {
                    run.diverged.insert(.channel(result.childRelID))
                }
            }
        }
        run.finish(link.inbox, steps: self.script.steps.count, strict: false)
        return run.outcome
    }
    /// Rings for a channel we are about to open, where the captured guest put them: in the
    /// GPADL its OpenChannel names, split at its page offset, initialised as a guest does.
    static func open(_ open: OpenChannel, in guest: borrowing ReplayMemory, link: ReplayLink) {
        guard let ranges = guest.gpadls[open.ringBufferGpadl] else { return }
        let relid = open.childRelID
        do {
            let mapping = try guest.map(ranges)
            let split = Int(open.downstreamRingBufferPageOffset)
            try ChannelRings.initialize(mapping, downstreamPageOffset: split)
            let rings = try ChannelRings.rings(in: mapping, downstreamPageOffset: split, side: .guest)
            var options = ChannelOptions()
            // Completions go to the comparison, not to a request table we never filled.
            options.rejectUnknownCompletions = false
            let channel = try Channel(
                relid: relid, outgoing: rings.outgoing, incoming: rings.incoming,
                doorbell: ClosureDoorbell { link.ring(relid) }, options: options)
            link.channels.withLock { $0[relid] = channel }
        } catch {
            // An OpenChannel the capture edited to name impossible rings: sent as it is; the
            // host's answer is what the replay compares.
        }
    }
}
