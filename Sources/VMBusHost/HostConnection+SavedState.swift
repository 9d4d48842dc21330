import VMBusWire

/// The host machine's part of saved state (docs/SAVED-STATE.md §3). Everything is saved as it
/// stands between two messages: a GPADL may be half assembled, a channel open or revoked. The
/// transient states that exist only inside one message's handling (a GPADL being mapped, a
/// channel being opened) cannot be seen from outside and are refused.
extension HostConnection {
    enum Tag {
        static let connected: UInt16 = 1
        static let version: UInt16 = 2
        static let features: UInt16 = 3
        static let targetVCPU: UInt16 = 4
        static let offersSent: UInt16 = 5
        static let paused: UInt16 = 6
        static let parentToChildMonitorPage: UInt16 = 7
        static let childToParentMonitorPage: UInt16 = 8
        static let channel: UInt16 = 16
        static let gpadl: UInt16 = 17
    }

    enum ChannelTag {
        static let relid: UInt16 = 1
        static let interfaceType: UInt16 = 2
        static let interfaceInstance: UInt16 = 3
        static let flags: UInt16 = 4
        static let userDefined: UInt16 = 5
        static let subChannelIndex: UInt16 = 6
        static let mmioMegabytes: UInt16 = 7
        static let maximumSubChannels: UInt16 = 8
        static let wantsMonitor: UInt16 = 9
        static let state: UInt16 = 10
        static let openID: UInt16 = 11
        static let gpadl: UInt16 = 12
        static let primary: UInt16 = 13
        static let monitorID: UInt16 = 14
    }

    enum GpadlTag {
        static let handle: UInt16 = 1
        static let channel: UInt16 = 2
        static let state: UInt16 = 3
        static let rangeCount: UInt16 = 4
        static let expectedWords: UInt16 = 5
        static let words: UInt16 = 6
    }

    /// Channel states on disk.
    enum SavedChannelState: UInt8 {
        case closed = 0, open = 1, revoked = 2
    }

    /// GPADL states on disk.
    enum SavedGpadlState: UInt8 {
        case assembling = 0, ready = 1, tearingDown = 2
    }

    /// Writes the machine's state.
    /// - Throws: `SavedStateError` if a GPADL is being mapped or a channel opened: states a
    ///   driver holds only inside one call, so a caller that sees them is saving mid-message.
    public func save(into w: inout StateWriter) throws(SavedStateError) {
        if let n = self.negotiated {
            w.write(Tag.connected, true)
            w.write(Tag.version, n.version.rawValue)
            w.write(Tag.features, n.features.rawValue)
            w.write(Tag.targetVCPU, n.targetVCPU)
            w.write(Tag.offersSent, n.offersSent)
            w.write(Tag.paused, n.paused)
            w.write(Tag.parentToChildMonitorPage, n.parentToChildMonitorPage)
            w.write(Tag.childToParentMonitorPage, n.childToParentMonitorPage)
        } else {
            w.write(Tag.connected, false)
        }
        for relid in self.channels.keys.sorted() {
            guard let channel = self.channels[relid] else { continue }
            let (state, openID, gpadl): (SavedChannelState, UInt32, UInt32)
            switch channel.state {
            case .closed: (state, openID, gpadl) = (.closed, 0, 0)
            case .open(let id, let handle): (state, openID, gpadl) = (.open, id, handle)
            case .revoked: (state, openID, gpadl) = (.revoked, 0, 0)
            case .opening: throw SavedStateError("channel \(relid) is being opened")
            }
            w.nested(Tag.channel) { c in
                c.write(ChannelTag.relid, relid)
                c.write(ChannelTag.interfaceType, channel.offer.interfaceType)
                c.write(ChannelTag.interfaceInstance, channel.offer.interfaceInstance)
                c.write(ChannelTag.flags, channel.offer.flags.rawValue)
                c.write(ChannelTag.userDefined, bytes: channel.offer.userDefined.bytes)
                c.write(ChannelTag.subChannelIndex, channel.offer.subChannelIndex)
                c.write(ChannelTag.mmioMegabytes, channel.offer.mmioMegabytes)
                c.write(ChannelTag.maximumSubChannels, channel.offer.maximumSubChannels)
                c.write(ChannelTag.wantsMonitor, channel.offer.wantsMonitor)
                c.write(ChannelTag.state, state.rawValue)
                c.write(ChannelTag.openID, openID)
                c.write(ChannelTag.gpadl, gpadl)
                if let primary = channel.primary { c.write(ChannelTag.primary, primary) }
                if let monitorID = channel.monitorID { c.write(ChannelTag.monitorID, monitorID) }
            }
        }
        for handle in self.gpadls.keys.sorted() {
            guard let gpadl = self.gpadls[handle] else { continue }
            let state: SavedGpadlState
            let rangeCount: Int
            let expectedWords: Int
            let words: [UInt64]
            switch gpadl.state {
            case .assembling(let assembler):
                (state, rangeCount, expectedWords, words) = (.assembling, assembler.rangeCount, assembler.expectedWords, assembler.words)
            case .ready(let ranges):
                words = Gpadl.words(ranges)
                (state, rangeCount, expectedWords) = (.ready, ranges.count, words.count)
            case .tearingDown:
                (state, rangeCount, expectedWords, words) = (.tearingDown, 0, 0, [])
            case .mapping: throw SavedStateError("GPADL \(handle) is being mapped")
            }
            w.nested(Tag.gpadl) { g in
                g.write(GpadlTag.handle, handle)
                g.write(GpadlTag.channel, gpadl.channel)
                g.write(GpadlTag.state, state.rawValue)
                g.write(GpadlTag.rangeCount, UInt32(rangeCount))
                g.write(GpadlTag.expectedWords, UInt32(expectedWords))
                var packed = WireWriter(capacity: words.count * 8)
                for word in words { packed.writeUInt64(word) }
                g.write(GpadlTag.words, bytes: packed.bytes)
            }
        }
    }

    /// Restores a machine from ``save(into:)``'s records, checking what a corrupted state could
    /// make impossible: relids in range, sub-channels under existing primaries, monitor ids
    /// unique and below 128, open channels on ready GPADLs of their own, GPADL words that make
    /// valid ranges.
    public init(restoring r: StateReader, configuration: HostConfiguration) throws(SavedStateError) {
        self.init(configuration: configuration)
        if try r.bool(Tag.connected) {
            self.state = .connected(Negotiated(
                version: VMBusVersion(rawValue: try r.uint32(Tag.version)),
                features: FeatureFlags(rawValue: try r.uint32(Tag.features)),
                targetVCPU: try r.uint32(Tag.targetVCPU), offersSent: try r.bool(Tag.offersSent), paused: try r.bool(Tag.paused),
                parentToChildMonitorPage: try r.uint64(Tag.parentToChildMonitorPage),
                childToParentMonitorPage: try r.uint64(Tag.childToParentMonitorPage)))
        }
        for g in try r.all(Tag.gpadl) {
            let handle = try g.uint32(GpadlTag.handle)
            guard handle != 0, self.gpadls[handle] == nil else { throw SavedStateError("GPADL handle \(handle) is zero or repeated") }
            let rangeCount = Int(try g.uint32(GpadlTag.rangeCount))
            let expectedWords = Int(try g.uint32(GpadlTag.expectedWords))
            let packed = try g.bytes(GpadlTag.words)
            guard packed.count % 8 == 0, packed.count / 8 <= GpadlAssembler.maximumWords, expectedWords <= GpadlAssembler.maximumWords
            else { throw SavedStateError("GPADL \(handle): bad word list") }
            var reader = WireReader(packed)
            var words: [UInt64] = []
            while reader.remaining > 0, let word = try? reader.readUInt64() { words.append(word) }
            let channel = try g.uint32(GpadlTag.channel)
            let state: GpadlState
            switch SavedGpadlState(rawValue: try g.uint8(GpadlTag.state)) {
            case .assembling?:
                guard words.count < expectedWords, let length = UInt16(exactly: expectedWords * 8), let count = UInt16(exactly: rangeCount),
                    let assembler = try? GpadlAssembler(
                        header: GpadlHeader(childRelID: channel, gpadl: handle, rangeBufferLength: length, rangeCount: count, words: words),
                        excessWords: .ignore)
                else { throw SavedStateError("GPADL \(handle): bad partial range list") }
                state = .assembling(assembler)
            case .ready?:
                guard words.count == expectedWords, let ranges = try? Gpadl.ranges(fromWords: words[...], rangeCount: rangeCount) else {
                    throw SavedStateError("GPADL \(handle): bad range list")
                }
                state = .ready(ranges)
            case .tearingDown?: state = .tearingDown
            case nil: throw SavedStateError("GPADL \(handle): unknown state")
            }
            self.gpadls[handle] = GpadlRecord(channel: channel, state: state)
        }
        var monitorIDs = Set<UInt8>()
        for c in try r.all(Tag.channel) {
            let relid = try c.uint32(ChannelTag.relid)
            guard (1...Self.maximumRelID).contains(relid), self.channels[relid] == nil else {
                throw SavedStateError("channel relid \(relid) is out of range or repeated")
            }
            let userDefined: UserDefinedBytes
            do { userDefined = try UserDefinedBytes(try c.bytes(ChannelTag.userDefined)) } catch {
                throw SavedStateError("channel \(relid): bad user-defined bytes")
            }
            let offer = HostOffer(
                interfaceType: try c.guid(ChannelTag.interfaceType), interfaceInstance: try c.guid(ChannelTag.interfaceInstance),
                flags: OfferFlags(rawValue: try c.uint16(ChannelTag.flags)), userDefined: userDefined,
                subChannelIndex: try c.uint16(ChannelTag.subChannelIndex), mmioMegabytes: try c.uint16(ChannelTag.mmioMegabytes),
                maximumSubChannels: try c.uint16(ChannelTag.maximumSubChannels), wantsMonitor: try c.bool(ChannelTag.wantsMonitor))
            let state: ChannelState
            switch SavedChannelState(rawValue: try c.uint8(ChannelTag.state)) {
            case .closed?: state = .closed
            case .revoked?: state = .revoked
            case .open?:
                let gpadl = try c.uint32(ChannelTag.gpadl)
                guard let record = self.gpadls[gpadl], record.channel == relid, case .ready = record.state else {
                    throw SavedStateError("channel \(relid) is open on GPADL \(gpadl), which is not a ready GPADL of its own")
                }
                state = .open(openID: try c.uint32(ChannelTag.openID), gpadl: gpadl)
            case nil: throw SavedStateError("channel \(relid): unknown state")
            }
            let monitorID = try c.optionalUInt8(ChannelTag.monitorID)
            if let monitorID {
                guard Int(monitorID) < MonitorPage.monitorIDCount, monitorIDs.insert(monitorID).inserted else {
                    throw SavedStateError("channel \(relid): monitor id \(monitorID) out of range or repeated")
                }
            }
            self.channels[relid] = Channel(offer: offer, state: state, primary: try c.optionalUInt32(ChannelTag.primary), monitorID: monitorID)
        }
        for (relid, channel) in self.channels {
            if let primary = channel.primary {
                guard let parent = self.channels[primary], parent.primary == nil, primary != relid else {
                    throw SavedStateError("sub-channel \(relid) names \(primary), which is not a primary")
                }
            }
        }
        for (handle, gpadl) in self.gpadls where self.channels[gpadl.channel] == nil {
            throw SavedStateError("GPADL \(handle) belongs to channel \(gpadl.channel), which does not exist")
        }
        if self.negotiated == nil, !self.gpadls.isEmpty || self.channels.values.contains(where: { $0.state != .closed }) {
            throw SavedStateError("a disconnected machine with GPADLs or channels that are not closed")
        }
    }
}
