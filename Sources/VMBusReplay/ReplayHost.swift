import Foundation
import VMBusChannel
import VMBusMemory
import VMBusWire

/// Plays a captured host to a live guest over the local substrate (spec 09): takes the guest's
/// connection, maps the memory its HELLO brings, and sends every frame, message, packet and
/// buffer the captured host sent — each once the guest's messages and packets before it in the
/// capture have come and been compared. The guest's GPADLs and OpenChannels (as it sends them
/// now) say where its rings and buffers are.
public final class ReplayHost: Sendable {
    let script: ReplayScript
    let timeout: Duration

    /// - Parameter timeout: how long to wait for each message or packet the capture has.
    public init(script: ReplayScript, timeout: Duration = .seconds(10)) {
        self.script = script
        self.timeout = timeout
    }

    /// Serves `socket`, a guest's accepted connection, to the script's end on this thread.
    /// - Throws: ``ReplayScript/Unreplayable`` when the script does not start with the
    ///   guest's HELLO, or the guest's first datagram is not a HELLO with sealed memory of the
    ///   size it announces.
    public func run(_ socket: LocalSocket) throws(ReplayScript.Unreplayable) -> ReplayGuest.Outcome {
        try self.run(socket, clock: nil)
    }

    func run(_ socket: LocalSocket, clock: ReplayClock?) throws(ReplayScript.Unreplayable) -> ReplayGuest.Outcome {
        var outcome = ReplayGuest.Outcome(connection: self.script.connection)
        let me = self.script.connection
        defer { clock?.advance(me, to: Int.max) }
        guard let hello = self.script.steps.first, case .frame(1, let captured) = hello.item else {
            throw ReplayScript.Unreplayable("connection \(me) does not start with HELLO")
        }
        var memory = try Self.welcome(socket, connection: me)
        if memory.hello != captured {
            outcome.differences.append(ReplayDifference(
                connection: me, record: hello.record + 1, stream: .control, expected: ReplayComparison.describe(hello.item),
                got: ReplayComparison.describe(.frame(kind: 1, bytes: memory.hello))))
        }
        let link: ReplayLink
        do { link = try ReplayLink(socket: socket, peer: "guest") } catch {
            throw ReplayScript.Unreplayable("connection \(me): \(error)")
        }
        link.start(name: "vmbus-replay-host-\(me)") { _, fds in
            // A guest sends no descriptors after HELLO.
            for fd in fds { DescriptorIO.close(fd) }
            return true
        }
        defer { link.stop() }
        var comparison = ReplayComparison()
        var diverged: Set<ReplayStream> = []
        var missed: Set<ReplayStream> = []
        var version: VMBusVersion?
        func differ(_ step: ReplayStep, got: ReplayItem?, stop: Bool) {
            outcome.differences.append(ReplayDifference(
                connection: me, record: step.record + 1, stream: step.item.stream,
                expected: ReplayComparison.describe(step.item), got: got.map(ReplayComparison.describe)))
            if stop { diverged.insert(step.item.stream) }
        }
        /// Follows what the live guest said about its memory and channels.
        func follow(_ item: ReplayItem?) {
            guard case .message(_, let bytes)? = item,
                let message = try? ChannelMessage.parse(bytes[...], version: version, features: [], trailingBytes: .ignore)
            else { return }
            memory.replay.track(message)
            switch message {
            case .initiateContact(let contact): version = contact.versionRequested
            case .openChannel(let open): Self.open(open, in: memory.replay, link: link)
            case .closeChannel(let close): link.channels.withLock { $0.removeValue(forKey: close.childRelID) }?.close(.closedByPeer)
            default: break
            }
        }
        for step in self.script.steps.dropFirst() {
            clock?.advance(me, to: step.record)
            clock?.waitForTurn(me, record: step.record)
            switch step.action {
            case .operate:
                // The host is us: the request is why the host sent what follows, which we send.
                continue
            case .send:
                switch step.item {
                case .frame(let kind, let bytes):
                    if kind == 5, bytes.count >= 12 {
                        // DOORBELLS: a new pair of eventfds, the guest's to ring first.
                        let relid = UInt32(bytes[8]) | UInt32(bytes[9]) << 8 | UInt32(bytes[10]) << 16 | UInt32(bytes[11]) << 24
                        guard let toHost = try? EventFD.nonBlocking(), let toGuest = try? EventFD.nonBlocking() else { continue }
                        try? socket.send(bytes, fds: [toHost.fileDescriptor, toGuest.fileDescriptor])
                        link.addDoorbells(relid: relid, toPeer: toGuest, fromPeer: toHost)
                    } else {
                        try? socket.send(bytes)
                    }
                case .message(_, let bytes):
                    let frame = SubstrateFrame.message(
                        connectionID: UInt32(VMBusConnectionID.messageSINT), messageType: VMBusConnectionID.synicMessageType,
                        payload: comparison.rewritten(message: bytes))
                    try? socket.send(frame.encode())
                case .packet(let relid, let bytes):
                    guard !diverged.contains(step.item.stream) else {
                        outcome.skipped += 1
                        continue
                    }
                    if !link.send(comparison.rewritten(bytes, relid: relid), relid: relid, timeout: self.timeout) {
                        differ(step, got: nil, stop: true)
                        continue
                    }
                case .buffer(_, let gpadl, let offset, let bytes):
                    _ = memory.replay.write(bytes, gpadl: comparison.liveGpadl(gpadl), offset: offset)
                case .operatorRequest:
                    continue
                }
                outcome.sent += 1
            case .expect:
                let stream = step.item.stream
                guard !diverged.contains(stream) else {
                    outcome.skipped += 1
                    continue
                }
                if case .buffer(let relid, let gpadl, let offset, let bytes) = step.item {
                    outcome.compared += 1
                    let live = memory.replay.read(gpadl: comparison.liveGpadl(gpadl), offset: offset, count: bytes.count)
                    if live != bytes {
                        differ(step, got: live.map { .buffer(relid: relid, gpadl: gpadl, offset: offset, bytes: $0) }, stop: true)
                    }
                    continue
                }
                let wait = missed.contains(stream) ? min(self.timeout, ReplayInbox.grace) : self.timeout
                let (taken, instead) = link.inbox.take(stream, until: .now + wait) { whole in
                    let live = step.cut ? whole.cut(like: step.item) : whole
                    switch (step.item, live) {
                    case (.packet(let relid, let captured), .packet(_, let bytes)):
                        var trial = comparison
                        guard trial.packetMatches(captured, bytes, relid: relid) else { return false }
                        comparison = trial
                        return true
                    case (.message(_, let captured), .message(_, let bytes)):
                        return comparison.messageMatches(captured, bytes)
                    default:
                        return step.item == live
                    }
                } answers: { live in
                    ReplayComparison.answersTheSame(step.item, live)
                }
                outcome.compared += 1
                follow(taken ?? instead)
                guard taken == nil else { continue }
                if instead == nil { missed.insert(stream) }
                differ(step, got: instead, stop: stream != .control)
            }
        }
        for (stream, items) in link.inbox.leftovers().sorted(by: { $0.key.description < $1.key.description }) {
            for item in items {
                outcome.differences.append(ReplayDifference(
                    connection: me, record: self.script.steps.count, stream: stream, expected: "nothing more",
                    got: ReplayComparison.describe(item)))
            }
        }
        outcome.ended = link.inbox.ended
        return outcome
    }

    /// The guest's memory, as its HELLO gave it, and that HELLO's bytes.
    struct Welcome: ~Copyable {
        var replay: ReplayMemory
        var hello: [UInt8]
    }

    /// Reads the guest's HELLO and maps its memory: a sealed memfd of the size announced, as a
    /// host must check before it touches a page (a shorter file would fault on access).
    static func welcome(_ socket: LocalSocket, connection: UInt32) throws(ReplayScript.Unreplayable) -> Welcome {
        func refuse(_ why: String) -> ReplayScript.Unreplayable { ReplayScript.Unreplayable("connection \(connection): \(why)") }
        guard let datagram = try? socket.receive(maximumLength: SubstrateFrame.maximumDatagram), !datagram.isEndOfStream else {
            throw refuse("the guest sent no HELLO")
        }
        guard case .hello(_, _, let bytes)? = try? SubstrateFrame.parse(datagram.bytes[...], descriptors: datagram.fds.count),
            datagram.fds.count == 1, let fd = datagram.fds.first
        else {
            for fd in datagram.fds { DescriptorIO.close(fd) }
            throw refuse("the guest's first frame is not a HELLO with its memory")
        }
        guard let (size, seals) = try? MappedMemory.describe(fileDescriptor: fd), UInt64(size) == bytes, MappedMemory.sealsFixSize(seals),
            let mapped = try? MappedMemory.map(fileDescriptor: fd, size: size, taking: true)
        else {
            DescriptorIO.close(fd)
            throw refuse("the guest's memory is not a sealed file of the \(bytes) bytes it announces")
        }
        return Welcome(replay: ReplayMemory(memory: mapped, fileDescriptor: fd), hello: datagram.bytes)
    }

    /// The host end of a channel the guest opens, on the rings its GPADL names (laid out and
    /// initialised by the guest; nothing is written to them here).
    static func open(_ open: OpenChannel, in memory: borrowing ReplayMemory, link: ReplayLink) {
        guard let ranges = memory.gpadls[open.ringBufferGpadl] else { return }
        let relid = open.childRelID
        do {
            let mapping = try memory.map(ranges)
            let rings = try ChannelRings.rings(in: mapping, downstreamPageOffset: Int(open.downstreamRingBufferPageOffset), side: .host)
            var options = ChannelOptions()
            options.rejectUnknownCompletions = false
            options.strictPackets = true
            let channel = try Channel(
                relid: relid, outgoing: rings.outgoing, incoming: rings.incoming, doorbell: ClosureDoorbell { link.ring(relid) },
                options: options)
            link.channels.withLock { $0[relid] = channel }
        } catch {
            // Rings the guest laid out impossibly: its packets cannot be read; the comparison
            // reports them missing.
        }
    }
}
