import Foundation
import VMBusLocal
import VMBusMemory
import VMBusWire

/// The takeover conversation on the admin socket (docs/ADMIN.md §Takeover, docs/SERVICING.md).
///
/// The new host sends the request `takeover 0 1` (the last field is this conversation's
/// version). The old host pauses and saves everything (``LocalHost/prepareHandover(timeout:)``),
/// then sends, before any end answer:
///
/// | kind | body | descriptors |
/// |---|---|---|
/// | `H` | state length u32, descriptor count u32, the old host's pid u32 (LE) | the admin listener |
/// | `S` | the next piece of the state (at most 60 KiB) | — |
/// | `D` | how many descriptors this datagram carries, u32 | up to 8 of them, in order |
///
/// The new host restores, starts, and answers `R` (it runs) — or `F` and a UTF-8 reason, or
/// nothing at all if it dies. On `R` the old host lets go (an output line reports the pause the
/// guests saw), ends the request with success and exits; on anything else it carries on and
/// ends the request with the failure.
public enum HostTakeover {
    /// The conversation's version (the request's parameter).
    public static let version = "1"
    static let chunk = 60 << 10
    // What one datagram carries (LocalSocket passes at most 8 descriptors at a time).
    static let descriptorsPerDatagram = 8
    /// Longest state accepted.
    static let maximumState = SavedStateFile.headerSize + SavedStateFile.maximumBodySize
    /// Most descriptors accepted (a host with many guests and channels stays far below).
    static let maximumDescriptors = 65536

    static let header = UInt8(ascii: "H")
    static let statePiece = UInt8(ascii: "S")
    static let descriptorPiece = UInt8(ascii: "D")
    static let resumed = UInt8(ascii: "R")
    static let refused = UInt8(ascii: "F")

    /// What the new host received.
    public final class Received: @unchecked Sendable {
        // Unchecked: used by one thread, the new host's start-up.
        /// A saved-state file (kind host).
        public let state: [UInt8]
        /// The descriptors the state refers to; the caller owns them (pass them all to
        /// ``LocalHost/init(restoring:descriptors:path:options:logger:devices:)``).
        public let descriptors: [Int32]
        /// The old host's admin listener.
        public let adminListener: LocalSocket
        public let previousPID: Int32
        let connection: LocalSocket

        init(state: [UInt8], descriptors: [Int32], adminListener: LocalSocket, previousPID: Int32, connection: LocalSocket) {
            self.state = state
            self.descriptors = descriptors
            self.adminListener = adminListener
            self.previousPID = previousPID
            self.connection = connection
        }

        /// Tells the old host this one runs, and waits for it to let go.
        /// - Returns: the old host's report (the pause the guests saw).
        public func confirm() throws(AdminError) -> String {
            do { try self.connection.send([HostTakeover.resumed]) } catch { throw AdminError("cannot confirm the takeover: \(error)") }
            var report = "the old host let go"
            while true {
                guard let datagram = try? self.connection.receive(maximumLength: AdminProtocol.maximumDatagramLength) else { return report }
                for fd in datagram.fds { DescriptorIO.close(fd) }
                if datagram.isEndOfStream { return report }
                switch try? AdminAnswer(parsing: datagram.bytes) {
                case .output(let line)?: report = line
                case .end(true, _)?: return report
                case .end(false, let message)?: throw AdminError(message)
                case .progress?, nil: continue
                }
            }
        }

        /// Tells the old host this one cannot take over; it carries on.
        public func refuse(_ reason: String) {
            try? self.connection.send([HostTakeover.refused] + Array(reason.utf8.prefix(AdminProtocol.maximumTextLength)))
            self.connection.shutdown()
        }
    }

    /// The new host's side: asks the old host at `adminPath` to hand over, and receives the
    /// state and descriptors. Blocks the calling thread.
    /// - Throws: ``AdminError`` with the old host's reason when it refuses (a device that
    ///   cannot be saved, …), or for a conversation that breaks the rules above.
    public static func begin(adminPath: String) throws(AdminError) -> Received {
        let socket: LocalSocket
        do { socket = try LocalSocket.connect(path: adminPath) } catch { throw AdminError("cannot reach \(adminPath): \(error)") }
        do {
            try socket.send(try AdminProtocol.encodeRequest(AdminRequest(command: "takeover", parameters: [Self.version])))
        } catch {
            throw AdminError("cannot send the takeover request: \(error)")
        }
        // Every descriptor received so far: closed if the conversation fails.
        var owned: [Int32] = []
        do throws(AdminError) {
            let (first, headerFDs) = try Self.next(socket)
            owned += headerFDs
            guard first.first == Self.header, first.count == 13, headerFDs.count == 1 else {
                throw AdminError("the old host sent no takeover header")
            }
            var r = WireReader(first.dropFirst())
            let (length, count, pid) = ((try? r.readUInt32()) ?? 0, (try? r.readUInt32()) ?? 0, (try? r.readUInt32()) ?? 0)
            guard length <= Self.maximumState, count <= Self.maximumDescriptors else {
                throw AdminError("the old host announced \(length) bytes of state and \(count) descriptors")
            }
            var state: [UInt8] = []
            var descriptors: [Int32] = []
            while state.count < Int(length) || descriptors.count < Int(count) {
                let (datagram, fds) = try Self.next(socket)
                owned += fds
                descriptors += fds
                switch datagram.first {
                case Self.statePiece?:
                    guard fds.isEmpty, state.count + datagram.count - 1 <= Int(length) else { throw AdminError("too much state") }
                    state += datagram.dropFirst()
                case Self.descriptorPiece?:
                    var c = WireReader(datagram.dropFirst())
                    guard (try? c.readUInt32()).map(Int.init) == fds.count, descriptors.count <= Int(count) else {
                        throw AdminError("a descriptor datagram does not carry what it says")
                    }
                default:
                    throw AdminError("unexpected datagram in the takeover")
                }
            }
            return Received(
                state: state, descriptors: descriptors, adminListener: LocalSocket(taking: headerFDs[0]), previousPID: Int32(bitPattern: pid),
                connection: socket)
        } catch {
            for fd in owned { DescriptorIO.close(fd) }
            throw error
        }
    }

    /// The next datagram of the conversation; an end answer (the old host refused) becomes
    /// its message.
    static func next(_ socket: LocalSocket) throws(AdminError) -> ([UInt8], [Int32]) {
        let datagram: LocalSocket.Datagram
        do { datagram = try socket.receive(maximumLength: Self.chunk + 16) } catch { throw AdminError("the takeover connection failed: \(error)") }
        if datagram.isEndOfStream { throw AdminError("the old host closed the takeover connection") }
        guard !datagram.truncated else {
            for fd in datagram.fds { DescriptorIO.close(fd) }
            throw AdminError("a takeover datagram is too long")
        }
        if datagram.bytes.first == AdminAnswer.endKind, case .end(false, let message)? = try? AdminAnswer(parsing: datagram.bytes) {
            for fd in datagram.fds { DescriptorIO.close(fd) }
            throw AdminError(message)
        }
        return (datagram.bytes, datagram.fds)
    }

    /// The old host's side: sends `handover` and waits for the new host's answer. Blocks.
    static func send(_ handover: LocalHost.Handover, adminListener: Int32, on socket: LocalSocket) throws(AdminError) {
        do throws(MemoryError) {
            var header = WireWriter(capacity: 13)
            header.writeUInt8(Self.header)
            header.writeUInt32(UInt32(handover.state.count))
            header.writeUInt32(UInt32(handover.descriptors.count))
            header.writeUInt32(UInt32(bitPattern: getpid()))
            try socket.send(header.bytes, fds: [adminListener])
            var offset = 0
            while offset < handover.state.count {
                let end = min(offset + Self.chunk, handover.state.count)
                try socket.send([Self.statePiece] + handover.state[offset..<end])
                offset = end
            }
            var index = 0
            while index < handover.descriptors.count {
                let end = min(index + Self.descriptorsPerDatagram, handover.descriptors.count)
                var piece = WireWriter(capacity: 5)
                piece.writeUInt8(Self.descriptorPiece)
                piece.writeUInt32(UInt32(end - index))
                try socket.send(piece.bytes, fds: Array(handover.descriptors[index..<end]))
                index = end
            }
        } catch {
            throw AdminError("cannot send the state to the new host: \(error)")
        }
        let answer = try? socket.receive(maximumLength: AdminProtocol.maximumDatagramLength)
        for fd in answer?.fds ?? [] { DescriptorIO.close(fd) }
        guard let answer, answer.bytes.first == Self.resumed else {
            let reason = answer.flatMap { $0.bytes.first == Self.refused ? String(decoding: $0.bytes.dropFirst(), as: UTF8.self) : nil }
            throw AdminError(reason.map { "the new host refused: \($0)" } ?? "the new host went away before it took over")
        }
    }
}

extension AdminServer {
    /// Serves `takeover`: hands `host` to the new host process that asks (see ``HostTakeover``).
    /// - Parameter handedOver: called once the new host runs, with the pause the guests saw;
    ///   the process should exit without stopping anything (every descriptor it would close
    ///   or shut down now serves the new host).
    /// - Parameter extraDescriptors: the process's own descriptors the new host needs, by name
    ///   (``LocalHost/prepareHandover(timeout:extraDescriptors:)``).
    public func registerTakeover(
        host: LocalHost, timeout: Duration = .seconds(5), extraDescriptors: @escaping @Sendable () -> [String: Int32] = { [:] },
        handedOver: @escaping @Sendable (Duration) -> Void
    ) {
        self.register("takeover") { [self] request, session in
            guard request.parameters.first == HostTakeover.version else {
                throw AdminError("takeover version \(request.parameters.first ?? "none"); this host speaks \(HostTakeover.version)")
            }
            self.pauseAccepting()
            let handover: LocalHost.Handover
            do {
                handover = try await host.prepareHandover(timeout: timeout, extraDescriptors: extraDescriptors())
            } catch {
                self.resumeAccepting()
                throw AdminError("cannot hand over: \(error)")
            }
            let listener = self.listener.fileDescriptor
            let sent: Result<Void, AdminError> = await onOwnThread {
                do throws(AdminError) {
                    try HostTakeover.send(handover, adminListener: listener, on: session.connection)
                    return .success(())
                } catch {
                    return .failure(error)
                }
            }
            switch sent {
            case .success:
                host.completeHandover()
                self.handOff()
                let pause = ContinuousClock.now - handover.heldAt
                session.output("handed over by pid \(getpid()) after a pause of \(pause.formatted(.units(allowed: [.milliseconds], fractionalPart: .show(length: 1))))")
                handedOver(pause)
            case .failure(let error):
                host.abortHandover()
                self.resumeAccepting()
                throw error
            }
        }
    }
}

/// Runs blocking work on a thread of its own, not on the cooperative pool.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { (done: CheckedContinuation<T, Never>) in
        Thread { done.resume(returning: body()) }.start()
    }
}
