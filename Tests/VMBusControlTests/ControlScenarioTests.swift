import Testing
import VMBusGuest
import VMBusHost
import VMBusWire

@Suite struct NegotiationTests {
    @Test(arguments: VMBusVersion.known.filter { $0 >= .win8 })
    func everyVersionNegotiates(_ version: VMBusVersion) throws {
        var guestConfig = GuestConfiguration()
        guestConfig.versions = [version]
        guestConfig.features = .allKnown
        var pair = ControlPair(guest: guestConfig)
        try pair.guestDid(pair.guest.connect())
        #expect(pair.toHost.first?.connectionID == (version >= .win10_5_0 ? 4 : 1))
        try pair.run()
        let features: FeatureFlags = version >= .copper ? HostConfiguration().supportedFeatures : []
        #expect(pair.guestEvents == [.connected(version: version, features: features)])
        #expect(pair.host.negotiated?.version == version && pair.guest.version == version)
        // Later messages go to the message connection id (1 for OpenVMM-style VTL0 hosts).
        try pair.guestDid(pair.guest.requestOffers())
        #expect(pair.toHost.first?.connectionID == 1)
    }

    @Test func aGuestFallsBackToTheNewestVersionTheHostAccepts() throws {
        var hostConfig = HostConfiguration()
        hostConfig.maximumVersion = .win10_5_2
        var pair = ControlPair(host: hostConfig)
        try pair.guestDid(pair.guest.connect())
        try pair.run()
        #expect(pair.guestEvents == [.connected(version: .win10_5_2, features: [])])
    }

    @Test func noCommonVersionFailsCleanly() throws {
        var hostConfig = HostConfiguration()
        hostConfig.minimumVersion = .copper
        var guestConfig = GuestConfiguration()
        guestConfig.versions = [.win10_5_3, .win10]
        var pair = ControlPair(host: hostConfig, guest: guestConfig)
        try pair.guestDid(pair.guest.connect())
        try pair.run()
        #expect(pair.guestEvents == [.connectionFailed])
        #expect(pair.host.negotiated == nil && pair.guest.version == nil)
    }

    @Test func halfGivenMonitorPagesAreRefused() throws {
        var guestConfig = GuestConfiguration()
        guestConfig.monitorPages = (0x1000, 0)
        guestConfig.versions = [.win10_5_3]
        var pair = ControlPair(guest: guestConfig)
        try pair.guestDid(pair.guest.connect())
        try pair.run()
        #expect(pair.guestEvents == [.connectionFailed])
    }
}

@Suite struct ChannelLifecycleTests {
    @Test func offersArriveSortedThenAllOffersDelivered() throws {
        var pair = ControlPair()
        for n: UInt32 in 1...3 { _ = pair.host.addOffer(deviceOffer(n)) }
        try pair.connect()
        #expect(pair.offers.map(\.childRelID) == [1, 2, 3])
        #expect(pair.offers.map(\.connectionID) == [0x2001, 0x2002, 0x2003])
        #expect(pair.guestEvents.last == .allOffersDelivered)
        // Hot add after the offers went out.
        try pair.hostDid(pair.host.addOffer(deviceOffer(4)).actions)
        try pair.run()
        #expect(pair.offers.map(\.childRelID) == [1, 2, 3, 4])
    }

    @Test func openUseCloseTeardown() throws {
        var pair = ControlPair()
        let relid = pair.host.addOffer(deviceOffer(1)).relid
        try pair.connect()
        let gpadl = try pair.createGpadl(channel: relid, pages: 8)
        #expect(pair.guestEvents.last == .gpadlCreated(gpadl: gpadl, status: .success))
        try pair.guestDid(pair.guest.open(channel: relid, ringGpadl: gpadl, downstreamPageOffset: 4))
        try pair.run()
        #expect(pair.guestEvents.last == .opened(channel: relid, status: .success))
        #expect(pair.host.isOpen(relid) && pair.guest.isOpen(relid))
        try pair.guestDid(pair.guest.close(channel: relid))
        try pair.guestDid(pair.guest.teardownGpadl(gpadl))
        try pair.run()
        #expect(pair.guestEvents.last == .gpadlTornDown(gpadl))
        #expect(!pair.host.isOpen(relid) && pair.hostWork.contains(.closeChannel(relid)))
    }

    @Test func largeGpadlsTravelInBodies() throws {
        var pair = ControlPair()
        let relid = pair.host.addOffer(deviceOffer(1)).relid
        try pair.connect()
        let before = pair.hostWork.count
        let gpadl = try pair.createGpadl(channel: relid, pages: 1026)
        guard case .mapGpadl(_, let handle, let ranges) = pair.hostWork[before] else {
            Issue.record("no mapGpadl")
            return
        }
        #expect(handle == gpadl && ranges.first?.pfns.count == 1026)
        #expect(pair.guestEvents.last == .gpadlCreated(gpadl: gpadl, status: .success))
    }

    @Test func refusalsReachTheGuestAsStatuses() throws {
        var pair = ControlPair()
        let relid = pair.host.addOffer(deviceOffer(1)).relid
        try pair.connect()
        pair.accept = false
        let refused = try pair.createGpadl(channel: relid, pages: 8)
        #expect(pair.guestEvents.last == .gpadlCreated(gpadl: refused, status: .openVMMFailure))
        pair.accept = true
        let gpadl = try pair.createGpadl(channel: relid, pages: 8)
        // A downstream offset outside the GPADL fails the open, not the connection.
        try pair.guestDid(pair.guest.open(channel: relid, ringGpadl: gpadl, downstreamPageOffset: 8))
        try pair.run()
        #expect(pair.guestEvents.last == .opened(channel: relid, status: .unsuccessful))
        // The channel can be opened again properly.
        try pair.guestDid(pair.guest.open(channel: relid, ringGpadl: gpadl, downstreamPageOffset: 4))
        try pair.run()
        #expect(pair.guestEvents.last == .opened(channel: relid, status: .success))
    }

    @Test func rescindWhileOpenThenReleaseFreesTheRelid() throws {
        var pair = ControlPair()
        let relid = try pair.openOneChannel()
        try pair.hostDid(pair.host.rescind(relid))
        try pair.run()
        #expect(pair.guestEvents.last == .rescinded(relid))
        #expect(pair.hostWork.last == .closeChannel(relid))
        // The guest's close of a rescinded channel is ignored; then it releases the relid.
        try pair.hostDid(pair.host.receive(.closeChannel(CloseChannel(childRelID: relid))))
        try pair.guestDid(pair.guest.release(channel: relid))
        try pair.run()
        #expect(pair.host.relids.isEmpty && pair.guest.relids.isEmpty)
        #expect(pair.host.addOffer(deviceOffer(2)).relid == relid, "the relid is free again")
    }

    @Test func unloadReleasesEverythingAndAllowsReconnect() throws {
        var pair = ControlPair()
        let relid = try pair.openOneChannel()
        try pair.guestDid(pair.guest.unload())
        try pair.run()
        #expect(pair.guestEvents.last == .unloaded)
        #expect(pair.hostWork.suffix(2) == [.closeChannel(relid), .resetConnection])
        #expect(pair.host.negotiated == nil && !pair.host.isOpen(relid))
        pair.guestEvents = []
        try pair.connect()
        #expect(pair.offers.map(\.childRelID) == [relid])
    }
}

@Suite struct GuestRaceTests {
    @Test func openingARescindedChannelFailsLocally() throws {
        var pair = ControlPair()
        let relid = pair.host.addOffer(deviceOffer(1)).relid
        try pair.connect()
        let gpadl = try pair.createGpadl(channel: relid, pages: 8)
        try pair.hostDid(pair.host.rescind(relid))
        try pair.run()
        // The user had not seen the rescind yet and opens anyway: no trap, no message.
        #expect(pair.guest.open(channel: relid, ringGpadl: gpadl, downstreamPageOffset: 4)
            == [.opened(channel: relid, status: .unsuccessful)])
        #expect(pair.guest.open(channel: 999, ringGpadl: gpadl, downstreamPageOffset: 4)
            == [.opened(channel: 999, status: .unsuccessful)])
    }

    @Test func ringsSmallerThanTwoPagesAreRefused() throws {
        var pair = ControlPair()
        let relid = pair.host.addOffer(deviceOffer(1)).relid
        try pair.connect()
        let gpadl = try pair.createGpadl(channel: relid, pages: 8)
        for offset: UInt32 in [1, 7] {
            try pair.guestDid(pair.guest.open(channel: relid, ringGpadl: gpadl, downstreamPageOffset: offset))
            try pair.run()
            #expect(pair.guestEvents.last == .opened(channel: relid, status: .unsuccessful), "offset \(offset)")
        }
    }
}
