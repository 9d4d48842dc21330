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
        let me = self.script.connection
        var run = ReplayRun(connection: me, timeout: self.timeout, peerIsGuest: true)
        defer { clock?.advance(me, to: Int.max) }
        guard let hello = self.script.steps.first, case .frame(1, let captured) = hello.item else {
            throw ReplayScript.Unreplayable("connection \(me) does not start with HELLO")
        }
        var memory = try Self.welcome(socket, connection: me)
        if memory.hello != captured { run.differ(hello, got: .frame(kind: 1, bytes: memory.hello), stop: false) }
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
        var version: VMBusVersion?
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
                    if kind == 5, case .doorbells(let relid, _)? = try? SubstrateFrame.parse(bytes[...], descriptors: 2) {
                        // A new pair of eventfds, the guest's to ring first.
                        guard let toHost = try? EventFD.nonBlocking(), let toGuest = try? EventFD.nonBlocking() else { continue }
                        try? socket.send(bytes, fds: [toHost.fileDescriptor, toGuest.fileDescriptor])
                        link.addDoorbells(relid: relid, toPeer: toGuest, fromPeer: toHost)
                    } else {
                        try? socket.send(bytes)
                    }
                case .message(_, let bytes):
                    let frame = SubstrateFrame.message(
                        connectionID: UInt32(VMBusConnectionID.messageSINT), messageType: VMBusConnectionID.synicMessageType,
                        payload: run.comparison.rewritten(message: bytes))
                    try? socket.send(frame.encode())
                case .packet:
                    if !run.send(step, on: link) { continue }
                case .buffer(_, let gpadl, let offset, let bytes):
                    _ = memory.replay.write(bytes, gpadl: run.comparison.liveGpadl(gpadl), offset: offset)
                case .operatorRequest:
                    continue
                }
                run.outcome.sent += 1
            case .expect:
                if run.skips(step) { continue }
                if case .buffer = step.item {
                    let comparison = run.comparison
                    run.expectBuffer(step) { gpadl, offset, count in
                        memory.replay.read(gpadl: comparison.liveGpadl(gpadl), offset: offset, count: count)
                    }
                    continue
                }
                follow(run.expect(step, from: link.inbox).live)
            }
        }
        // Nothing of a guest's is timer-driven: whatever it sent beyond the capture differs.
        run.finish(link.inbox, steps: self.script.steps.count, strict: true)
        return run.outcome
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
