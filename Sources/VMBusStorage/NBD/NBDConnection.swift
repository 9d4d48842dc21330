import Foundation
import VMBusMemory
import VMBusWire

/// One client of an ``NBDServer``: the handshake, then transmission with many requests in
/// flight.
///
/// Threads and tasks: a reading thread (blocking socket reads never run on the cooperative
/// pool) does the handshake, then parses requests and starts each one as a task on the device,
/// up to the credit ``NBDCredits`` allows; each task queues its reply on the ``NBDOutbox``,
/// whose own thread writes replies as they complete, in any order.
///
/// The end: on `NBD_CMD_DISC`, end of stream, a protocol violation, a failed socket or
/// ``stop()``, the reading thread stops reading, waits until every request in flight has been
/// answered, then shuts the socket down.
final class NBDConnection: Sendable {
    let id: Int
    let socket: StreamSocket
    let export: NBDExport
    let access: NBDBlockAccess
    let statistics: Locked<NBDServerStatistics>
    let credits: NBDCredits
    let outbox: NBDOutbox
    let log: @Sendable (String) -> Void
    private let stopping = Locked(false)

    init(
        id: Int, socket: StreamSocket, export: NBDExport, access: NBDBlockAccess, statistics: Locked<NBDServerStatistics>,
        maximumBufferedBytes: Int, log: @escaping @Sendable (String) -> Void
    ) {
        self.id = id
        self.socket = socket
        self.export = export
        self.access = access
        self.statistics = statistics
        // Requests in flight: as many as the device serves at once.
        self.credits = NBDCredits(maximumRequests: access.device.queueDepth, maximumBytes: maximumBufferedBytes)
        self.outbox = NBDOutbox(socket: socket, credits: self.credits)
        self.log = log
    }

    /// Starts the reading thread; `finished` runs on it once the connection is over.
    func start(finished: @escaping @Sendable (NBDConnection) -> Void) {
        ThreadName.start("nbd-connection-\(self.id)") {
            self.run()
            finished(self)
        }
    }

    /// Stops taking requests: the reading thread sees the end of the stream (after what was
    /// already received), answers what is in flight and closes.
    func stop() {
        self.stopping.store(true)
        self.socket.shutdownRead()
    }

    /// Shuts the socket down both ways: a client that does not read its replies no longer
    /// holds the connection open (its replies are dropped).
    func abort() {
        self.stopping.store(true)
        self.socket.shutdown()
    }

    private var isStopping: Bool { self.stopping.load() }

    private func run() {
        let reader = NBDSocketReader(self.socket)
        if self.handshake(reader) != nil {
            ThreadName.start("nbd-replies-\(self.id)") { self.outbox.run() }
            self.transmit(reader)
            self.credits.waitUntilIdle()
            self.outbox.close()
        }
        self.socket.shutdown()
    }

    private func violation(_ what: String) {
        self.statistics.withLock { $0.protocolViolations += 1 }
        self.log("nbd: connection \(self.id): \(what); closing it")
    }

    // MARK: Handshake

    /// What the handshake does after an action.
    private enum Next {
        case readOption
        case transmit(NBDHandshake.Session)
        case end
    }

    /// Runs the handshake; the session if transmission begins, `nil` if the connection ends.
    private func handshake(_ reader: NBDSocketReader) -> NBDHandshake.Session? {
        var machine = NBDHandshake(export: self.export)
        do {
            try self.socket.write(NBDHandshake.greeting[...])
            guard let flags = try reader.read(4) else { return nil }
            var flagReader = WireReader(flags)
            if let action = machine.receiveClientFlags(try flagReader.readBigEndianUInt32()) {
                _ = try self.perform(action)
                return nil
            }
            while true {
                guard let bytes = try reader.read(NBDOptionHeader.wireSize) else { return nil }
                var headerReader = WireReader(bytes)
                // Sixteen bytes are there, so only a wrong magic fails to parse.
                guard let header = try? NBDOptionHeader(from: &headerReader) else {
                    _ = try self.perform(NBDHandshake.refuse(nil))
                    return nil
                }
                guard header.length <= NBDLimits.maximumOptionData else {
                    _ = try self.perform(NBDHandshake.refuse(header))
                    return nil
                }
                guard let data = try reader.read(Int(header.length)) else { return nil }
                // Once the server stops, options are refused ("SHOULD error further options
                // received (other than an NBD_OPT_ABORT) with NBD_REP_ERR_SHUTDOWN").
                let action =
                    self.isStopping && header.option != .abort
                    ? .reply(NBDOptionReply(option: header.option, error: .errorShutdown, message: "the server is stopping").bytes)
                    : machine.receive(header, data: data)
                switch try self.perform(action) {
                case .readOption: continue
                case .transmit(let session): return session
                case .end: return nil
                }
            }
        } catch {
            // The socket failed (four bytes of client flags always parse).
            return nil
        }
    }

    /// Carries out a handshake action.
    private func perform(_ action: NBDHandshake.Action) throws(MemoryError) -> Next {
        switch action {
        case .reply(let bytes):
            try self.socket.write(bytes[...])
            return .readOption
        case .transmit(let bytes, let session):
            try self.socket.write(bytes[...])
            return .transmit(session)
        case .close(let bytes, let end):
            if !bytes.isEmpty { try? self.socket.write(bytes[...]) }
            if end.isViolation { self.violation("handshake ended: \(end)") }
            return .end
        }
    }

    // MARK: Transmission

    /// Reads and starts requests until the client disconnects or breaks the protocol, the
    /// stream ends (``stop()`` ends it after what was already received), or a reply cannot be
    /// sent.
    private func transmit(_ reader: NBDSocketReader) {
        do {
            while !self.outbox.hasFailed {
                guard let bytes = try reader.read(NBDRequest.wireSize) else { return }
                var requestReader = WireReader(bytes)
                guard let request = try? NBDRequest(from: &requestReader) else {
                    // Nothing after a bad magic can be trusted to be a request boundary.
                    return self.violation("a request without NBD_REQUEST_MAGIC")
                }
                var operation = NBDOperation(request, export: self.export)
                // Once the server stops, what still arrives is refused with ESHUTDOWN (the
                // client then disconnects); what was started before is answered normally.
                if self.isStopping { operation = operation.refusedForShutdown }
                switch operation {
                case .disconnect:
                    return
                case .tooLarge(let length):
                    return self.violation("a write of \(length) bytes, above the \(NBDLimits.maximumPayload)-byte limit")
                case .reject(let error, let payload):
                    guard try reader.skip(payload) else { return }
                    self.answerAtOnce(request, error)
                case .succeed(let payload):
                    guard try reader.skip(payload) else { return }
                    self.answerAtOnce(request, .none)
                case .write(_, let length, _):
                    self.credits.acquire(bytes: length)
                    guard let data = try reader.read(length) else {
                        self.credits.release(bytes: length)
                        return
                    }
                    self.start(operation, request, credit: length, data: data)
                case .read(_, let length):
                    self.credits.acquire(bytes: length)
                    self.start(operation, request, credit: length, data: [])
                case .writeZeroes, .trim, .flush:
                    self.credits.acquire(bytes: 0)
                    self.start(operation, request, credit: 0, data: [])
                }
            }
        } catch {
            // The socket failed: nothing more can be read.
        }
    }

    /// Replies without touching the device.
    private func answerAtOnce(_ request: NBDRequest, _ error: NBDError) {
        self.credits.acquire(bytes: 0)
        self.statistics.withLock { statistics in
            statistics.requests += 1
            if error != .none { statistics.errors += 1 }
        }
        self.outbox.send(.init(header: NBDSimpleReply(error: error, cookie: request.cookie).bytes, data: [], credit: 0))
    }

    /// Runs `operation` on the device as a task; its reply is queued when it completes.
    private func start(_ operation: NBDOperation, _ request: NBDRequest, credit: Int, data: [UInt8]) {
        Task {
            var reply: [UInt8] = []
            var error = NBDError.none
            do throws(BlockDeviceError) {
                reply = try await self.execute(operation, data)
            } catch let failure {
                error = NBDError(failure, writing: request.command != .read && request.command != .trim)
            }
            self.count(operation, error)
            self.outbox.send(.init(header: NBDSimpleReply(error: error, cookie: request.cookie).bytes, data: reply, credit: credit))
        }
    }

    /// Carries out one operation; a read's data.
    private func execute(_ operation: NBDOperation, _ data: [UInt8]) async throws(BlockDeviceError) -> [UInt8] {
        switch operation {
        case .read(let offset, let length):
            return try await self.access.read(offset: offset, length: length)
        case .write(let offset, _, let fua):
            try await self.access.write(offset: offset, data, fua: fua)
        case .writeZeroes(let offset, let length, let fua, let mayTrim):
            try await self.access.writeZeroes(offset: offset, length: length, fua: fua, mayTrim: mayTrim)
        case .trim(let offset, let length, let fua):
            try await self.access.trim(offset: offset, length: length, fua: fua)
        case .flush:
            try await self.access.flush()
        case .disconnect, .succeed, .reject, .tooLarge:
            // Handled by the reading thread; never started as a task.
            break
        }
        return []
    }

    private func count(_ operation: NBDOperation, _ error: NBDError) {
        self.statistics.withLock { statistics in
            statistics.requests += 1
            guard error == .none else {
                statistics.errors += 1
                return
            }
            switch operation {
            case .read(_, let length):
                statistics.reads += 1
                statistics.bytesRead += UInt64(length)
            case .write(_, let length, _):
                statistics.writes += 1
                statistics.bytesWritten += UInt64(length)
            case .writeZeroes: statistics.writeZeroes += 1
            case .trim: statistics.trims += 1
            case .flush: statistics.flushes += 1
            case .disconnect, .succeed, .reject, .tooLarge: break
            }
        }
    }
}

