import VMBusWire

extension HostConnection {
    /// The channel a message names, which must exist.
    func channel(_ relid: UInt32, for what: String) throws(ProtocolViolation) -> Channel {
        guard let channel = self.channels[relid] else {
            throw ProtocolViolation(.connection, "\(what) for unknown channel \(relid)", kind: .unknownChannel)
        }
        return channel
    }

    // MARK: GPADLs (04 §3.7–§3.11, §4)

    mutating func receiveGpadlHeader(_ header: GpadlHeader) throws(ProtocolViolation) -> [HostAction] {
        let relid = header.childRelID
        let channel = try self.channel(relid, for: "GPADL_HEADER")
        // Bodies carry only the handle, so a handle must be unique on the connection.
        guard header.gpadl != 0, self.gpadls[header.gpadl] == nil else {
            throw ProtocolViolation(.connection, "GPADL handle \(header.gpadl) is zero or already in use", kind: .badGPADL)
        }
        if case .revoked = channel.state {
            return [Self.gpadlFailed(relid, header.gpadl)]
        }
        let assembler: GpadlAssembler
        do {
            // Extra whole words after the list are ignored, as OpenVMM does: UEFI sends
            // maximum-length GPADL messages (04 §4).
            assembler = try GpadlAssembler(header: header, excessWords: .ignore)
        } catch {
            // A malformed range list fails this GPADL only (OpenVMM answers with a failure).
            return [Self.gpadlFailed(relid, header.gpadl)]
        }
        self.gpadls[header.gpadl] = GpadlRecord(channel: relid, state: .assembling(assembler))
        return self.finishIfComplete(header.gpadl)
    }

    mutating func receiveGpadlBody(_ body: GpadlBody) throws(ProtocolViolation) -> [HostAction] {
        guard let gpadl = self.gpadls[body.gpadl], case .assembling(var assembler) = gpadl.state else {
            // No relid to answer on: the guest is confused about the whole connection.
            throw ProtocolViolation(.connection, "GPADL_BODY for handle \(body.gpadl), which is not being built", kind: .badGPADL)
        }
        do {
            try assembler.append(body)
        } catch {
            self.gpadls[body.gpadl] = nil
            return [Self.gpadlFailed(gpadl.channel, body.gpadl)]
        }
        self.gpadls[body.gpadl] = GpadlRecord(channel: gpadl.channel, state: .assembling(assembler))
        return self.finishIfComplete(body.gpadl)
    }

    /// Once every word arrived: validate the ranges, then let the driver map them.
    mutating func finishIfComplete(_ handle: UInt32) -> [HostAction] {
        guard let gpadl = self.gpadls[handle], case .assembling(let assembler) = gpadl.state, assembler.isComplete else {
            return []
        }
        guard let ranges = try? assembler.finish() else {
            self.gpadls[handle] = nil
            return [Self.gpadlFailed(gpadl.channel, handle)]
        }
        self.gpadls[handle] = GpadlRecord(channel: gpadl.channel, state: .mapping(ranges))
        return [.mapGpadl(channel: gpadl.channel, gpadl: handle, ranges: ranges)]
    }

    mutating func receiveGpadlTeardown(_ teardown: GpadlTeardown) throws(ProtocolViolation) -> [HostAction] {
        let relid = teardown.childRelID
        let channel = try self.channel(relid, for: "GPADL_TEARDOWN")
        guard let gpadl = self.gpadls[teardown.gpadl], gpadl.channel == relid, case .ready = gpadl.state else {
            throw ProtocolViolation(.channel(relid), "teardown of GPADL \(teardown.gpadl), which is not an accepted GPADL of this channel", kind: .badGPADL)
        }
        switch channel.state {
        case .open(_, let ring), .opening(_, let ring):
            guard ring != teardown.gpadl else {
                throw ProtocolViolation(.channel(relid), "teardown of the ring GPADL of an open channel", kind: .badGPADL)
            }
        case .closed, .revoked:
            break
        }
        self.gpadls[teardown.gpadl] = GpadlRecord(channel: relid, state: .tearingDown)
        return [.unmapGpadl(gpadl: teardown.gpadl)]
    }

    // MARK: Open and close (04 §3.4–§3.6, 01 §6 host algorithm)

    mutating func receiveOpen(_ open: OpenChannel) throws(ProtocolViolation) -> [HostAction] {
        let relid = open.childRelID
        var channel = try self.channel(relid, for: "OPENCHANNEL")
        switch channel.state {
        case .revoked:
            return []  // The host silently drops an open of a rescinded channel (01 §7).
        case .opening, .open:
            throw ProtocolViolation(.channel(relid), "OPENCHANNEL on a channel that is already open", kind: .channelState)
        case .closed:
            break
        }
        let failed: [HostAction] = [.send(.openResult(OpenResult(childRelID: relid, openID: open.openID, status: .unsuccessful)))]
        // The ring GPADL: accepted, of this channel, one range from offset 0 over whole pages,
        // split at the downstream page offset into two rings of at least two pages each (a
        // control page and a data page; OpenVMM only asks for 0 < offset < pages).
        let split = Int(open.downstreamRingBufferPageOffset)
        guard let gpadl = self.gpadls[open.ringBufferGpadl], gpadl.channel == relid, case .ready(let ranges) = gpadl.state,
            ranges.count == 1, let range = ranges.first, range.byteOffset == 0, range.byteCount % 4096 == 0,
            split >= 2, range.pfns.count - split >= 2
        else { return failed }
        channel.state = .opening(openID: open.openID, gpadl: open.ringBufferGpadl)
        self.channels[relid] = channel
        return [.openChannel(open, ranges: ranges)]
    }

    mutating func receiveClose(_ relid: UInt32) throws(ProtocolViolation) -> [HostAction] {
        var channel = try self.channel(relid, for: "CLOSECHANNEL")
        switch channel.state {
        case .revoked:
            return []  // Ignored for a rescinded channel (05 §7.2).
        case .closed, .opening:
            throw ProtocolViolation(.channel(relid), "CLOSECHANNEL on a channel that is not open", kind: .channelState)
        case .open:
            channel.state = .closed
            self.channels[relid] = channel
            return [.closeChannel(relid)]
        }
    }

    mutating func receiveRelIDReleased(_ relid: UInt32) throws(ProtocolViolation) -> [HostAction] {
        let channel = try self.channel(relid, for: "RELID_RELEASED")
        switch channel.state {
        case .revoked:
            // The relid may be reused now; its GPADLs went with the rescind.
            self.channels[relid] = nil
            for (handle, gpadl) in self.gpadls where gpadl.channel == relid { self.gpadls[handle] = nil }
            return []
        case .closed:
            // The guest refused the offer; the channel stays offered for a later connection.
            return []
        case .opening, .open:
            throw ProtocolViolation(.channel(relid), "RELID_RELEASED for an open channel", kind: .channelState)
        }
    }
}
