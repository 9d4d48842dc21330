import Logging
import VMBusHost
import VMBusMemory
import VMBusWire

/// One guest connection in a hand-over (docs/SAVED-STATE.md §5): its id, its socket, its
/// memory file and doorbells (as indices into the descriptors passed with it) and its bus.
extension LocalHostConnection {
    enum Tag {
        static let id: UInt16 = 1
        static let socket: UInt16 = 2
        static let memory: UInt16 = 3
        static let memoryBytes: UInt16 = 4
        static let doorbell: UInt16 = 5
        static let bus: UInt16 = 6
        static let wrongConnectionIDs: UInt16 = 7
    }

    enum DoorbellTag {
        static let relid: UInt16 = 1
        static let toHost: UInt16 = 2
        static let toGuest: UInt16 = 3
    }

    /// Writes this connection, appending its descriptors to `descriptors`. The loop must be
    /// parked and the bus held.
    func save(into w: inout StateWriter, descriptors: inout [Int32]) throws(SavedStateError) {
        let (memoryFD, memoryBytes, doorbells, wrong, bus) = self.state.withLock { state in
            (state.memoryFD, state.memoryBytes, state.doorbells, state.wrongConnectionIDs, state.bus)
        }
        w.write(Tag.id, UInt32(self.id))
        w.write(Tag.socket, UInt32(descriptors.count))
        descriptors.append(self.socket.fileDescriptor)
        w.write(Tag.wrongConnectionIDs, UInt64(wrong))
        // A guest that has not said hello yet has only its socket.
        guard let bus, memoryFD >= 0 else { return }
        w.write(Tag.memory, UInt32(descriptors.count))
        descriptors.append(memoryFD)
        w.write(Tag.memoryBytes, memoryBytes)
        for relid in doorbells.keys.sorted() {
            guard let pair = doorbells[relid] else { continue }
            w.nested(Tag.doorbell) { d in
                d.write(DoorbellTag.relid, relid)
                d.write(DoorbellTag.toHost, UInt32(descriptors.count))
                d.write(DoorbellTag.toGuest, UInt32(descriptors.count + 1))
            }
            descriptors += [pair.toHost.fileDescriptor, pair.toGuest.fileDescriptor]
        }
        var failure: SavedStateError?
        w.nested(Tag.bus) { b in
            do throws(SavedStateError) { try bus.save(into: &b) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// A connection restored from ``save(into:descriptors:)``, its bus and devices running
    /// again on the same rings; its loop is not started yet.
    static func restore(
        _ r: StateReader, descriptors: inout HandoverDescriptors, options: LocalHost.Options, logger: Logger,
        makeDevices: @escaping @Sendable (HostBus) -> [any HostDevice]
    ) throws(SavedStateError) -> LocalHostConnection {
        let id = Int(try r.uint32(Tag.id))
        let socket = LocalSocket(taking: try descriptors.take(try r.uint32(Tag.socket)))
        var connectionLogger = logger
        connectionLogger[metadataKey: "guest"] = "\(id)"
        let connection: LocalHostConnection
        do {
            connection = try LocalHostConnection(id: id, socket: socket, options: options, logger: connectionLogger, makeDevices: makeDevices)
        } catch {
            throw SavedStateError("guest \(id): \(error)")
        }
        connection.state.withLock { $0.wrongConnectionIDs = Int(truncatingIfNeeded: (try? r.optionalUInt64(Tag.wrongConnectionIDs)) ?? 0) }
        guard let memoryIndex = try r.optionalUInt32(Tag.memory) else { return connection }
        let memoryFD = try descriptors.take(memoryIndex)
        let memoryBytes = try r.uint64(Tag.memoryBytes)
        // The connection owns the memory file from here: its teardown closes it.
        connection.state.withLock { state in
            state.memoryFD = memoryFD
            state.memoryBytes = memoryBytes
        }
        do throws(SavedStateError) {
            guard let (size, seals) = try? MappedMemory.describe(fileDescriptor: memoryFD), UInt64(size) == memoryBytes,
                MappedMemory.sealsFixSize(seals), memoryBytes <= options.maximumMemoryBytes
            else { throw SavedStateError("guest \(id): the memory file is not \(memoryBytes) bytes, sealed") }
            var doorbells: [UInt32: DoorbellPair] = [:]
            for d in try r.all(Tag.doorbell) {
                let relid = try d.uint32(DoorbellTag.relid)
                let pair = DoorbellPair(
                    toHost: EventFD(taking: try descriptors.take(try d.uint32(DoorbellTag.toHost))),
                    toGuest: EventFD(taking: try descriptors.take(try d.uint32(DoorbellTag.toGuest))))
                guard doorbells.updateValue(pair, forKey: relid) == nil else { throw SavedStateError("guest \(id): doorbells of \(relid) twice") }
            }
            do {
                let whole = try MappedMemory.map(fileDescriptor: memoryFD, size: Int(memoryBytes))
                connection.state.withLock {
                    $0.wholeMemory = whole
                    $0.doorbells = doorbells
                }
                for (relid, pair) in doorbells { try connection.loop.poll.add(pair.toHost.fileDescriptor, token: Token.doorbell(relid)) }
            } catch {
                throw SavedStateError("guest \(id): \(error)")
            }
            let bus = try HostBus(
                restoring: try r.nested(Tag.bus), configuration: options.configuration, transport: LocalHostTransport(connection: connection),
                capture: connection.capture)
            connection.state.withLock { $0.bus = bus }
            try bus.restoreDevices(makeDevices(bus))
        } catch {
            connection.releaseResources()
            throw error
        }
        return connection
    }
}
