import Testing
import VMBusGuest
import VMBusHost
import VMBusWire

@Suite struct HostViolationTests {
    func connected() throws -> (ControlPair, UInt32) {
        var pair = ControlPair()
        let relid = pair.host.addOffer(deviceOffer(1)).relid
        try pair.connect()
        return (pair, relid)
    }

    func violation(_ pair: inout ControlPair, _ message: ChannelMessage) -> ProtocolViolation? {
        do {
            _ = try pair.host.receive(message)
            return nil
        } catch {
            return error
        }
    }

    @Test func connectionScopedMistakes() throws {
        var fresh = ControlPair()
        #expect(violation(&fresh, .requestOffers)?.scope == .connection, "before negotiation")
        var (pair, relid) = try connected()
        #expect(violation(&pair, .requestOffers)?.scope == .connection, "twice")
        #expect(violation(&pair, .gpadlBody(GpadlBody(gpadl: 99, words: [1])))?.scope == .connection)
        #expect(violation(&pair, .openChannel(OpenChannel(childRelID: 77, openID: 1, ringBufferGpadl: 1, targetVP: 0,
                                                         downstreamRingBufferPageOffset: 1)))?.scope == .connection)
        #expect(violation(&pair, .allOffersDelivered)?.scope == .connection, "wrong direction")
        _ = try pair.createGpadl(channel: relid, pages: 8)
        let (header, _) = try Gpadl.split(channel: relid, handle: 0xE1E10, ranges: [try GpaRange(gpa: 0x1000, length: 4096)])
        #expect(violation(&pair, .gpadlHeader(header))?.scope == .connection, "duplicate handle")
    }

    @Test func channelScopedMistakes() throws {
        var (pair, relid) = try connected()
        #expect(violation(&pair, .closeChannel(CloseChannel(childRelID: relid)))?.scope == .channel(relid))
        #expect(violation(&pair, .gpadlTeardown(GpadlTeardown(childRelID: relid, gpadl: 5)))?.scope == .channel(relid))
        #expect(violation(&pair, .modifyChannel(ModifyChannel(childRelID: relid, targetVP: 1)))?.scope == .channel(relid))
        let gpadl = try pair.createGpadl(channel: relid, pages: 8)
        try pair.guestDid(pair.guest.open(channel: relid, ringGpadl: gpadl, downstreamPageOffset: 4))
        try pair.run()
        let reopen = ChannelMessage.openChannel(OpenChannel(childRelID: relid, openID: 2, ringBufferGpadl: gpadl,
                                                            targetVP: 0, downstreamRingBufferPageOffset: 4))
        #expect(violation(&pair, reopen)?.scope == .channel(relid))
        #expect(violation(&pair, .gpadlTeardown(GpadlTeardown(childRelID: relid, gpadl: gpadl)))?.scope == .channel(relid),
                "the ring GPADL of an open channel")
        #expect(violation(&pair, .relIDReleased(RelIDReleased(childRelID: relid)))?.scope == .channel(relid))
    }

    @Test func malformedRangeListsFailOnlyTheirGpadl() throws {
        var (pair, relid) = try connected()
        var header = try Gpadl.split(channel: relid, handle: 7, ranges: [try GpaRange(gpa: 0x1000, length: 8192)]).header
        header.rangeBufferLength = 12  // not a multiple of 8
        let actions = try pair.host.receive(.gpadlHeader(header))
        #expect(actions == [.send(.gpadlCreated(GpadlCreated(childRelID: relid, gpadl: 7, status: .openVMMFailure)))])
        #expect(pair.host.negotiated != nil, "the connection survives")
        // The handle is free again: a correct list under it is accepted.
        let good = try Gpadl.split(channel: relid, handle: 7, ranges: [try GpaRange(gpa: 0x1000, length: 8192)]).header
        guard case .mapGpadl(relid, 7, _)? = try pair.host.receive(.gpadlHeader(good)).first else {
            Issue.record("the good list was not accepted")
            return
        }
    }

    @Test func garbageIsATypedViolation() {
        var pair = ControlPair()
        #expect(throws: ProtocolViolation.self) { try pair.host.receive([1, 2, 3][...]) }
        #expect(throws: ProtocolViolation.self) { try pair.host.receive([UInt8](repeating: 0xFF, count: 241)[...]) }
    }
}

@Suite struct GuestDefenceTests {
    @Test func repliesNobodyAskedForAreRejected() throws {
        var pair = ControlPair()
        let relid = pair.host.addOffer(deviceOffer(1)).relid
        #expect(throws: HostMisbehaviour.self) {
            try pair.guest.receive(.versionResponse(VersionResponse(versionSupported: true, messageConnectionID: 1)))
        }
        try pair.connect()
        for message: ChannelMessage in [
            .gpadlCreated(GpadlCreated(childRelID: relid, gpadl: 1, status: .success)),
            .openResult(OpenResult(childRelID: relid, openID: relid, status: .success)),
            .gpadlTorndown(GpadlTorndown(gpadl: 1)),
            .unloadResponse,
            .offerChannel(pair.offers[0]),
            .offerChannel(OfferChannel(interfaceType: echoClass, interfaceInstance: .zero, childRelID: 0, connectionID: 1)),
            .offerChannel(OfferChannel(interfaceType: echoClass, interfaceInstance: .zero, childRelID: 2048, connectionID: 1)),
            .requestOffers,
        ] {
            #expect(throws: HostMisbehaviour.self, "\(message.type.name)") { try pair.guest.receive(message) }
        }
        // Rescinds of unknown channels are ignored, as Linux does.
        #expect(try pair.guest.receive(.rescindChannelOffer(RescindChannelOffer(childRelID: 999))).isEmpty)
        #expect(throws: HostMisbehaviour.self) { try pair.guest.receive([0x0F, 0, 0, 0][...]) }
    }
}
