import Testing
import VMBusGuest
import VMBusHost
import VMBusWire

/// Sub-channels (05 §5) and monitored notification (01 §1.3, 05 §4.3), host against guest.
@Suite struct SubChannelTests {
    /// A pair with one device allowing `maximum` sub-channels, its primary open.
    func openPrimary(maximum: UInt16) throws -> (ControlPair, UInt32) {
        var pair = ControlPair()
        var offer = deviceOffer(7)
        offer.maximumSubChannels = maximum
        let relid = pair.host.addOffer(offer).relid
        try pair.connect()
        let gpadl = try pair.createGpadl(channel: relid, pages: 8)
        try pair.guestDid(pair.guest.open(channel: relid, ringGpadl: gpadl, downstreamPageOffset: 4))
        try pair.run()
        #expect(pair.guest.isOpen(relid))
        return (pair, relid)
    }

    var subOffers: (ControlPair) -> [(OfferChannel, UInt32)] {
        { pair in
            pair.guestEvents.compactMap { if case .subChannelOffered(let o, let p) = $0 { return (o, p) } else { return nil } }
        }
    }

    @Test func subChannelsAreOfferedOnlyWhenTheDeviceAsksAndAfterThePrimary() throws {
        var (pair, primary) = try self.openPrimary(maximum: 4)
        #expect(self.subOffers(pair).isEmpty)  // never eagerly with the primary
        let (relids, actions) = pair.host.enableSubChannels(primary: primary, count: 3)
        #expect(relids.count == 3)
        try pair.hostDid(actions)
        try pair.run()
        let subs = self.subOffers(pair)
        #expect(subs.map(\.0.subChannelIndex) == [1, 2, 3])
        #expect(subs.allSatisfy { $0.1 == primary && $0.0.interfaceInstance == pair.guest.offer(primary)?.interfaceInstance })
        #expect(pair.guest.subChannels(of: primary) == relids)
        #expect(relids.allSatisfy { pair.host.primary(of: $0) == primary && pair.guest.primary(of: $0) == primary })
        // Asking for fewer changes nothing; asking for more is capped at the device's maximum.
        #expect(pair.host.enableSubChannels(primary: primary, count: 1).actions.isEmpty)
        let more = pair.host.enableSubChannels(primary: primary, count: 10)
        #expect(more.relids.count == 4 && more.actions.count == 1)
    }

    @Test func aClosedPrimaryGetsNoSubChannels() throws {
        var pair = ControlPair()
        var offer = deviceOffer(7)
        offer.maximumSubChannels = 2
        let relid = pair.host.addOffer(offer).relid
        try pair.connect()
        #expect(pair.host.enableSubChannels(primary: relid, count: 2) == ([], []))
    }

    @Test func subChannelsOpenOnTheirOwnRingsAndCloseBeforeThePrimary() throws {
        var (pair, primary) = try self.openPrimary(maximum: 2)
        let subs = pair.host.enableSubChannels(primary: primary, count: 2)
        try pair.hostDid(subs.actions)
        try pair.run()
        for (i, sub) in subs.relids.enumerated() {
            let gpadl = try pair.createGpadl(channel: sub, pages: 4, first: 0x1000 + UInt64(i) * 16)
            try pair.guestDid(pair.guest.open(channel: sub, ringGpadl: gpadl, downstreamPageOffset: 2))
        }
        try pair.run()
        #expect(subs.relids.allSatisfy { pair.host.isOpen($0) })
        pair.hostWork = []
        try pair.guestDid(pair.guest.close(channel: primary))
        try pair.run()
        #expect(pair.hostWork == subs.relids.map { .closeChannel($0) } + [.closeChannel(primary)])
    }

    @Test func rescindingAPrimaryRescindsItsSubChannelsFirst() throws {
        var (pair, primary) = try self.openPrimary(maximum: 2)
        let subs = pair.host.enableSubChannels(primary: primary, count: 2)
        try pair.hostDid(subs.actions)
        try pair.run()
        pair.guestEvents = []
        try pair.hostDid(pair.host.rescind(primary))
        try pair.run()
        #expect(pair.guestEvents == subs.relids.map { .rescinded($0) } + [.rescinded(primary)])
        // Released sub-channels and primary free their relids.
        for relid in subs.relids + [primary] { try pair.guestDid(pair.guest.release(channel: relid)) }
        try pair.run()
        #expect(pair.host.relids.isEmpty)
    }

    @Test func aReconnectForgetsSubChannelsButKeepsTheDevice() throws {
        var (pair, primary) = try self.openPrimary(maximum: 2)
        try pair.hostDid(pair.host.enableSubChannels(primary: primary, count: 2).actions)
        try pair.run()
        try pair.guestDid(pair.guest.unload())
        try pair.run()
        #expect(pair.host.relids == [primary])
    }

    @Test func aSecondPrimaryForALiveDeviceIsRejectedByTheGuest() throws {
        var pair = ControlPair()
        _ = pair.host.addOffer(deviceOffer(7))
        try pair.connect()
        var copy = try #require(pair.offers.first)
        copy.childRelID = 9
        #expect(throws: HostMisbehaviour.self) { try pair.guest.receive(.offerChannel(copy)) }
        copy.subChannelIndex = 1
        _ = try pair.guest.receive(.offerChannel(copy))
        copy.childRelID = 10
        #expect(throws: HostMisbehaviour.self) { try pair.guest.receive(.offerChannel(copy)) }
    }
}

@Suite struct MonitorTests {
    func pair(monitorPages: Bool, devices: Int = 1) throws -> ControlPair {
        var guest = GuestConfiguration()
        if monitorPages { guest.monitorPages = (0x10_0000, 0x10_1000) }
        var pair = ControlPair(guest: guest)
        for n in 0..<devices {
            var offer = deviceOffer(UInt32(n))
            offer.wantsMonitor = true
            _ = pair.host.addOffer(offer)
        }
        try pair.connect()
        return pair
    }

    @Test func monitoredChannelsSignalThroughTheMonitorPageUnlessLowLatency() throws {
        var pair = try self.pair(monitorPages: true, devices: 2)
        let offers = pair.offers
        #expect(offers.map(\.monitorAllocated) == [true, true])
        #expect(offers.map(\.monitorID) == [0, 1])
        let relid = offers[1].childRelID
        #expect(pair.host.channel(monitorID: 1) == relid)
        let monitored = try #require(pair.guest.signalling(for: relid))
        #expect(monitored.monitorID == 1 && monitored.setsInterruptPageBit)
        #expect(monitored.connectionID == offers[1].connectionID)
        pair.guest.setLowLatency(channel: relid, true)
        #expect(pair.guest.signalling(for: relid) == Signalling(connectionID: offers[1].connectionID ?? 0, monitorID: nil, setsInterruptPageBit: false))
    }

    @Test func withoutMonitorPagesEveryChannelUsesEvents() throws {
        let pair = try self.pair(monitorPages: false)
        let offer = try #require(pair.offers.first)
        #expect(!offer.monitorAllocated && offer.monitorID == MonitorPage.noMonitorID)
        #expect(pair.guest.signalling(for: offer.childRelID)?.monitorID == nil)
        #expect(pair.host.channel(monitorID: 0) == nil)
    }

    @Test func monitorIDsRunOutAfter128AndThenChannelsUseEvents() throws {
        let pair = try self.pair(monitorPages: true, devices: 130)
        let allocated = pair.offers.filter(\.monitorAllocated)
        #expect(allocated.count == 128)
        #expect(Set(allocated.map(\.monitorID)).count == 128)
    }

    @Test func aHostileMonitorIDIsNotUsed() throws {
        var pair = try self.pair(monitorPages: true)
        var offer = try #require(pair.offers.first)
        offer.childRelID = 50
        offer.interfaceInstance = GUID(data1: 99, data2: 0, data3: 0, data4: 0)
        offer.monitorID = 200
        _ = try pair.guest.receive(.offerChannel(offer))
        #expect(pair.guest.signalling(for: 50)?.monitorID == nil)
    }
}
