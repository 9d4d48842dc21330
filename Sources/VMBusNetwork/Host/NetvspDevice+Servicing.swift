import VMBusChannel
import VMBusHost
import VMBusMemory
import VMBusWire

/// The synthetic NIC across a host takeover (docs/SERVICING.md).
///
/// - Settling (the guest still runs): the backend stops taking frames from outside and hands
///   the NIC the batch it holds; frames arriving later wait in the TAP's kernel queue for the
///   new process.
/// - Quiescing (channels held): no frame is placed any more, the control packets already taken
///   off the rings are handled, a delivery under way sends its packets, and the completions
///   owed are in the rings. From there the rings and the receive buffer's slots are the
///   whole data-path state.
/// - Saved: the NVSP and RNDIS set-up, both buffers' GPADLs, which receive slots are lent to
///   the guest (its completions for them may be waiting in the ring), the RSS table.
extension NetvspDevice: ServiceableDevice {
    enum Tag {
        static let version: UInt16 = 1
        static let frameMTU: UInt16 = 2
        static let receiveGpadl: UInt16 = 3
        static let subAllocationSize: UInt16 = 4
        static let lentChain: UInt16 = 5
        static let sendGpadl: UInt16 = 6
        static let packetFilter: UInt16 = 7
        static let linkUp: UInt16 = 8
        static let rndisReady: UInt16 = 9
        static let rssTable: UInt16 = 10
        static let setUpSeen: UInt16 = 11
        static let rsc: UInt16 = 12
        static let grantedSubChannels: UInt16 = 13
        static let macAddress: UInt16 = 14
    }

    public func settle(timeout: Duration) async -> Bool { await self.backend.pauseReceiving(timeout: timeout) }

    public func resumeAfterSettle() { self.backend.resumeReceiving() }

    public func quiesce(timeout: Duration) async -> Bool {
        self.state.withLock { $0.paused = true }
        // Once per takeover, while a control message or a delivery finishes.
        return await pollUntil(timeout: timeout) {
            let (contexts, delivering) = self.state.withLock { (Array($0.contexts.values), $0.delivering) }
            var idle = delivering == 0
            for context in contexts {
                if context.pendingControl.load(ordering: .acquiring) > 0 { idle = false }
                // The handlers do not run while held: completions owed are sent from here.
                var (owed, scratch) = context.backlog.take()
                context.backlog.putBack(scratch: scratch)
                if !owed.isEmpty {
                    let payloads = Self.completionPayloads(size: self.messageSize)
                    context.backlog.send(&owed, on: context.channel, success: payloads.success, failure: payloads.failure)
                    if context.backlog.owed.withLock({ !$0.isEmpty }) { idle = false }
                }
            }
            return idle
        }
    }

    public func resumeAfterQuiesce() {
        let contexts = self.state.withLock { state in
            state.paused = false
            return Array(state.contexts.values)
        }
        for context in contexts { context.channel.interrupt() }
        self.room.notify()
    }

    /// Every channel saves the whole device, so whichever the new process restores first
    /// brings it back.
    public func saveState(relid: UInt32) throws(SavedStateError) -> [UInt8] {
        var w = StateWriter()
        self.state.withLock { state in
            if let version = state.version { w.write(Tag.version, version.rawValue) }
            w.write(Tag.frameMTU, UInt32(state.frameMTU))
            if let slots = state.receive {
                w.write(Tag.receiveGpadl, slots.gpadl)
                w.write(Tag.subAllocationSize, UInt32(slots.size))
                for head in 0..<slots.count where slots.lent[head] && slots.isHead[head] {
                    var chain = WireWriter()
                    var index = head
                    while index >= 0 {
                        chain.writeUInt32(UInt32(index))
                        index = slots.next[index]
                    }
                    w.write(Tag.lentChain, bytes: chain.bytes)
                }
            }
            if let send = state.sendBuffer { w.write(Tag.sendGpadl, send.gpadl) }
            w.write(Tag.packetFilter, state.packetFilter.rawValue)
            w.write(Tag.linkUp, state.linkUp)
            w.write(Tag.rndisReady, state.rndisReady)
            var table = WireWriter()
            for entry in state.rssTable { table.writeUInt32(entry) }
            w.write(Tag.rssTable, bytes: table.bytes)
            var seen = WireWriter()
            for type in state.setUpSeen.sorted() { seen.writeUInt32(type) }
            w.write(Tag.setUpSeen, bytes: seen.bytes)
            w.write(Tag.rsc, state.rsc)
            w.write(Tag.grantedSubChannels, UInt32(state.grantedSubChannels))
        }
        w.write(Tag.macAddress, bytes: self.macAddress.bytes)
        return w.bytes
    }

    public func restored(_ channel: Channel, info: HostChannelInfo, state saved: [UInt8]) throws(SavedStateError) {
        let r = try StateReader(saved[...])
        let mac = Array(try r.bytes(Tag.macAddress))
        guard mac == self.macAddress.bytes else {
            throw SavedStateError("the guest's NIC has address \(mac.map { String($0, radix: 16) }.joined(separator: ":")), this one \(self.macAddress)")
        }
        let firstRestored = self.state.withLock { $0.contexts.isEmpty }
        if firstRestored { try self.restoreSetUp(r) }
        let queue = info.subChannelIndex
        self.state.withLock { state in
            state.channels[queue] = channel
            if queue == 0 { state.primaryRelid = info.relid }
            if state.statistics[queue] == nil { state.statistics[queue] = NetworkQueueStatistics() }
        }
        // Not `opened`: nothing the guest was told is told again (the send table).
        self.serve(channel, queue: queue)
        if queue == 0 {
            let rsc = self.state.withLock { $0.rsc }
            self.backend.acceptOffloads(rsc ? self.backend.offloads : [])
            self.startReceiving()
        }
    }

    /// The device-wide set-up from the first restored channel's state.
    func restoreSetUp(_ r: StateReader) throws(SavedStateError) {
        let bus = self.state.withLock { $0.bus }
        func words(_ tag: UInt16) throws(SavedStateError) -> [UInt32] {
            let bytes = try r.bytes(tag)
            guard bytes.count % 4 == 0 else { throw SavedStateError("network state \(tag): \(bytes.count) bytes") }
            var reader = WireReader(bytes)
            return (0..<(bytes.count / 4)).map { _ in (try? reader.readUInt32()) ?? 0 }
        }
        var receive: ReceiveSlots?
        let receiveGpadl = try r.optionalUInt32(Tag.receiveGpadl)
        if let receiveGpadl {
            let size = Int(try r.uint32(Tag.subAllocationSize))
            guard let memory = bus?.gpadlMapping(receiveGpadl), var slots = ReceiveSlots(memory: memory, gpadl: receiveGpadl, subAllocationSize: size) else {
                throw SavedStateError("the receive buffer (GPADL \(receiveGpadl)) cannot be mapped as \(size)-byte slots")
            }
            for value in r.values(Tag.lentChain) {
                guard value.count >= 4, value.count % 4 == 0 else { throw SavedStateError("a lent chain of \(value.count) bytes") }
                var reader = WireReader(value)
                let chain = (0..<(value.count / 4)).map { _ in Int((try? reader.readUInt32()) ?? UInt32.max) }
                guard slots.lend(chain) else { throw SavedStateError("lent chain \(chain) does not fit the receive buffer") }
            }
            receive = slots
        }
        let sendBuffer = try r.optionalUInt32(Tag.sendGpadl).map { (gpadl: UInt32) throws(SavedStateError) -> (MappedMemory, UInt32) in
            guard let memory = bus?.gpadlMapping(gpadl), memory.size >= Self.sectionSize else {
                throw SavedStateError("the send buffer (GPADL \(gpadl)) cannot be mapped")
            }
            return (memory, gpadl)
        }
        let version = try r.optionalUInt32(Tag.version).map(NVSPVersion.init(rawValue:))
        let frameMTU = Int(try r.uint32(Tag.frameMTU))
        let filter = RNDISPacketFilter(rawValue: try r.uint32(Tag.packetFilter))
        let (linkUp, rndisReady, rsc) = (try r.bool(Tag.linkUp), try r.bool(Tag.rndisReady), try r.bool(Tag.rsc))
        let rssTable = try words(Tag.rssTable)
        let setUpSeen = Set(try words(Tag.setUpSeen))
        let granted = Int(try r.uint32(Tag.grantedSubChannels))
        guard (1514...9216).contains(frameMTU), granted < self.maximumQueues else {
            throw SavedStateError("network state: frame MTU \(frameMTU), \(granted) sub-channels")
        }
        self.state.withLock { state in
            state.version = version
            state.frameMTU = frameMTU
            state.receive = receive
            state.sendBuffer = sendBuffer
            state.packetFilter = filter
            state.linkUp = linkUp
            state.rndisReady = rndisReady
            state.rssTable = rssTable
            state.setUpSeen = setUpSeen
            state.rsc = rsc
            state.grantedSubChannels = granted
        }
    }
}

extension ReceiveSlots {
    /// Marks `chain` lent (its first slot the id the guest will complete), as a saved state
    /// says. - Returns: `false` for a slot out of range or lent already.
    mutating func lend(_ chain: [Int]) -> Bool {
        guard !chain.isEmpty, chain.allSatisfy({ $0 >= 0 && $0 < self.count && !self.lent[$0] }), Set(chain).count == chain.count else {
            return false
        }
        for slot in chain {
            self.lent[slot] = true
            if slot < Self.reserved { self.freeControl.removeAll { $0 == slot } } else { self.freeData.removeAll { $0 == slot } }
        }
        self.isHead[chain[0]] = true
        self.chain(chain)
        return true
    }
}
