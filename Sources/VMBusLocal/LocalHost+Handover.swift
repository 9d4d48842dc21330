import Foundation
import Logging
import VMBusHost
import VMBusMemory
import VMBusWire

/// Handing a running host to another process (docs/SERVICING.md). The old process
/// ``prepareHandover(timeout:)``s: it stops accepting, parks every guest's loop between two
/// batches of events, holds every channel at a packet boundary, quiesces the devices and saves
/// it all, with the descriptors the new process needs (listener, each guest's socket, memory
/// file and doorbells). The new process builds itself with ``init(restoring:descriptors:path:options:logger:devices:)``
/// and starts; then the old one ``completeHandover()``s — its loops end without touching the
/// guests — or, if the new one failed, ``abortHandover()``s and carries on as if nothing
/// happened. Guests see a pause, nothing else: no reconnect, no lost or repeated packet.
extension LocalHost {
    /// What a takeover passes from the old process to the new one.
    public struct Handover: Sendable {
        /// A saved-state file (`SavedStateFile`, kind host).
        public var state: [UInt8]
        /// The descriptors the state refers to by index, in order. Still this process's: pass
        /// them (SCM_RIGHTS), do not close them.
        public var descriptors: [Int32]
        /// When the first channel was held: the guests' pause starts here (settling before it
        /// keeps everything running).
        public var heldAt: ContinuousClock.Instant
    }

    enum Tag {
        static let listener: UInt16 = 1
        static let nextID: UInt16 = 2
        static let served: UInt16 = 3
        static let guest: UInt16 = 4
        static let extra: UInt16 = 5
    }

    enum ExtraTag {
        static let name: UInt16 = 1
        static let index: UInt16 = 2
    }

    /// Pauses everything and saves it (see the extension's comment).
    /// - Throws: `SavedStateError` when something cannot be held or saved in `timeout` (a
    ///   device that cannot be saved has an open channel, a packet still being handled); the
    ///   host has then carried on already.
    /// - Parameter timeout: how long holding every channel and quiescing every device may take.
    /// - Parameter extraDescriptors: the process's own descriptors the new process needs too,
    ///   by name (a TAP device's): passed after the guests', found again with
    ///   ``handoverExtras(_:descriptors:)``.
    public func prepareHandover(timeout: Duration, extraDescriptors: [String: Int32] = [:]) async throws(SavedStateError) -> Handover {
        guard await self.acceptParking.pause() else { throw SavedStateError("the host is stopping") }
        let connections = self.state.withLock { state in state.connections.values.sorted { $0.id < $1.id } }
        // Work that needs the guests' loops running (a file copy) ends before they park.
        var settled: [HostBus] = []
        for connection in connections {
            guard let bus = connection.bus else { continue }
            do throws(SavedStateError) { try await bus.settle(timeout: timeout) } catch {
                for bus in settled { bus.release() }
                self.acceptParking.unpause(handedOver: false)
                throw SavedStateError("guest \(connection.id): \(error)")
            }
            settled.append(bus)
        }
        var paused: [LocalHostConnection] = []
        let heldAt = ContinuousClock.now
        for connection in connections where await connection.parking.pause() { paused.append(connection) }
        self.state.withLock { $0.handingOver = paused }
        do throws(SavedStateError) {
            for connection in paused {
                guard let bus = connection.bus else { continue }
                do throws(SavedStateError) { try await bus.hold(timeout: timeout) } catch {
                    throw SavedStateError("guest \(connection.id): \(error)")
                }
            }
            var descriptors = [self.listener.fileDescriptor]
            var w = StateWriter()
            w.write(Tag.listener, UInt32(0))
            let (nextID, served) = self.state.withLock { ($0.nextID, $0.served) }
            w.write(Tag.nextID, UInt32(nextID))
            w.write(Tag.served, UInt64(served))
            var failure: SavedStateError?
            for connection in paused {
                w.nested(Tag.guest) { g in
                    do throws(SavedStateError) { try connection.save(into: &g, descriptors: &descriptors) } catch { failure = error }
                }
                if let failure { throw failure }
            }
            for name in extraDescriptors.keys.sorted() {
                guard let fd = extraDescriptors[name] else { continue }
                w.nested(Tag.extra) { e in
                    e.write(ExtraTag.name, text: name)
                    e.write(ExtraTag.index, UInt32(descriptors.count))
                }
                descriptors.append(fd)
            }
            return Handover(state: SavedStateFile(kind: .host, body: w.bytes).encode(), descriptors: descriptors, heldAt: heldAt)
        } catch {
            // Releasing a bus that was not held (or released itself) changes nothing.
            self.abortHandover()
            throw error
        }
    }

    /// The new process has everything and runs: this one's loops and accept thread end without
    /// touching the guests, whose descriptors close here with the process.
    public func completeHandover() {
        self.resumeLoops(handedOver: true)
    }

    /// The new process failed before it took over: every channel is released and every loop
    /// goes on where it stopped.
    public func abortHandover() {
        let paused = self.state.withLock { $0.handingOver }
        for connection in paused { connection.bus?.release() }
        self.resumeLoops(handedOver: false)
    }

    func resumeLoops(handedOver: Bool) {
        let paused = self.state.withLock { state in
            defer { state.handingOver = [] }
            return state.handingOver
        }
        for connection in paused { connection.parking.unpause(handedOver: handedOver) }
        self.acceptParking.unpause(handedOver: handedOver)
    }

    /// A host restored from a ``Handover``: it takes `descriptors` (all of them, even when it
    /// throws: what it did not adopt it closes), restores every guest connection, bus and
    /// device, and is ready to ``start()``. `path` is the listener's path (for ``stop()``).
    /// - Throws: `SavedStateError` for a state that is damaged, from an unknown format
    ///   version, or that does not match the descriptors.
    public convenience init(
        restoring handover: [UInt8], descriptors fds: [Int32], path: String, options: Options = Options(),
        logger: Logger = Logger(label: "vmbus.host"), devices: @escaping @Sendable (HostBus) -> [any HostDevice]
    ) throws(SavedStateError) {
        var descriptors = HandoverDescriptors(fds)
        do throws(SavedStateError) {
            let file = try SavedStateFile.decode(handover[...], expecting: .host)
            let r = try StateReader(file.body[...])
            let listener = LocalSocket(taking: try descriptors.take(try r.uint32(Tag.listener)))
            do {
                try self.init(path: path, listener: listener, options: options, logger: logger, devices: devices)
            } catch {
                throw SavedStateError("\(error)")
            }
            var connections: [Int: LocalHostConnection] = [:]
            for g in try r.all(Tag.guest) {
                let connection = try LocalHostConnection.restore(
                    g, descriptors: &descriptors, options: options, logger: logger, makeDevices: devices)
                guard connections.updateValue(connection, forKey: connection.id) == nil else {
                    throw SavedStateError("guest \(connection.id) appears twice")
                }
            }
            // The extras are the caller's (``handoverExtras(_:descriptors:)``), not ours to close.
            for e in try r.all(Tag.extra) { _ = try descriptors.take(try e.uint32(ExtraTag.index)) }
            let nextID = Int(try r.uint32(Tag.nextID))
            guard connections.keys.allSatisfy({ $0 < nextID }) else { throw SavedStateError("guest ids beyond the next id \(nextID)") }
            let served = Int(truncatingIfNeeded: try r.uint64(Tag.served))
            self.state.withLock { state in
                state.connections = connections
                state.nextID = nextID
                state.served = served
                state.restored = connections.values.sorted { $0.id < $1.id }
            }
            descriptors.closeRest()
        } catch {
            descriptors.closeRest()
            throw error
        }
    }
}

extension LocalHost {
    /// The process's own descriptors a hand-over carries (``prepareHandover(timeout:extraDescriptors:)``),
    /// by name, from the state and descriptors received. The caller owns them: build what
    /// they belong to before ``init(restoring:descriptors:path:options:logger:devices:)``,
    /// which leaves them open.
    /// - Throws: `SavedStateError` for a damaged state.
    public static func handoverExtras(_ handover: [UInt8], descriptors: [Int32]) throws(SavedStateError) -> [String: Int32] {
        let file = try SavedStateFile.decode(handover[...], expecting: .host)
        let r = try StateReader(file.body[...])
        var extras: [String: Int32] = [:]
        for e in try r.all(Tag.extra) {
            let index = Int(try e.uint32(ExtraTag.index))
            guard index < descriptors.count else { throw SavedStateError("extra descriptor \(index) of \(descriptors.count)") }
            extras[try e.text(ExtraTag.name)] = descriptors[index]
        }
        return extras
    }
}

extension LocalHost {
    /// Hands this host to a new `LocalHost` in the same process — what a takeover does between
    /// two processes, with the descriptors duplicated as SCM_RIGHTS would — and returns it,
    /// started. For tests and benchmarks of servicing; `vmbus host --takeover` does the same
    /// across processes. If anything fails before the new host exists, this one carries on.
    /// - Parameter timeout: how long holding every channel and quiescing every device may take.
    /// - Parameter path: the listener's path (for the new host's ``stop()``).
    /// - Parameter options: the new host's options.
    /// - Parameter logger: the new host's logger.
    /// - Parameter devices: builds the new host's devices for each guest; they must match the
    ///   old host's by class and instance to take their saved state.
    public func handOverInProcess(
        timeout: Duration = .seconds(10), path: String, options: Options = Options(), logger: Logger = Logger(label: "vmbus.host"),
        devices: @escaping @Sendable (HostBus) -> [any HostDevice]
    ) async throws -> LocalHost {
        let handover = try await self.prepareHandover(timeout: timeout)
        let next: LocalHost
        do {
            let fds = try handover.descriptors.map { fd throws(MemoryError) in try DescriptorIO.duplicate(fd) }
            next = try LocalHost(restoring: handover.state, descriptors: fds, path: path, options: options, logger: logger, devices: devices)
        } catch {
            self.abortHandover()
            throw error
        }
        // As across processes: this host lets go before the new one touches a ring.
        self.completeHandover()
        next.start()
        return next
    }
}
