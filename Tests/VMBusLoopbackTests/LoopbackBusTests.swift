import Testing
import VMBusChannel
import VMBusDevices
import VMBusGuest
import VMBusHost
import VMBusLoopback
import VMBusMemory
import VMBusWire

@Suite struct LoopbackBusTests {
    @Test func connectOffersBindsAndEchoes() async throws {
        let (bus, _, client) = try echoBus(devices: 3)
        let version = try await bus.guest.connect()
        #expect(version == .copper)
        await bus.guest.settle()
        #expect(client.devices.count == 3)
        #expect(bus.guest.devices.allSatisfy { bus.guest.boundDriver($0.relid) == "echo" })
        for device in client.devices {
            let bytes = (0..<100).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(device.relid)) }
            #expect(try await client.echo(bytes, device: device.relid) == bytes)
        }
        #expect(bus.host.violations.isEmpty && bus.guest.misbehaviours.isEmpty)
    }

    @Test func everyVersionFromWin8WorksEndToEnd() async throws {
        for version in VMBusVersion.known where version >= .win8 {
            var config = GuestConfiguration()
            config.versions = [version]
            let (bus, _, client) = try echoBus(guest: config)
            #expect(try await bus.guest.connect() == version)
            await bus.guest.settle()
            #expect(try await client.echo([1, 2, 3]) == [1, 2, 3])
        }
    }

    @Test func hotAddAndRescindBindAndUnbind() async throws {
        let (bus, _, client) = try echoBus(devices: 1)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        let late = EchoDevice(instance: instance(99))
        let relid = bus.host.register(late)
        await bus.guest.settle()
        #expect(client.devices.map(\.relid).contains(relid))
        let channel = try #require(client.channel(relid))
        #expect(try await client.echo([9, 9], device: relid) == [9, 9])
        bus.host.rescind(relid)
        await bus.guest.settle()
        #expect(await channel.closed() == .rescinded)
        #expect(!client.devices.map(\.relid).contains(relid))
        // RelIdReleased reached the host: the relid is free again.
        #expect(!bus.host.relids.contains(relid))
        #expect(try await client.echo([1]) == [1])
    }

    @Test func subChannelsAreRequestedOfferedOpenedAndRescindedFirst() async throws {
        let (bus, _, client) = try echoBus(devices: 1, maximumSubChannels: 4)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        let primary = try #require(client.devices.first?.relid)
        #expect(bus.guest.subChannels(of: primary).isEmpty)
        #expect(try await client.requestSubChannels(2, device: primary) == 2)
        await bus.guest.settle()
        let subs = bus.guest.subChannels(of: primary)
        #expect(subs.count == 2 && client.subChannels(of: primary) == subs)
        // A sub-channel opens like any channel and serves the same device.
        let sub = try await bus.guest.open(subs[0], pages: RingPages(each: 2))
        let reader = Task { _ = try? await sub.receive { _ in } }
        #expect(try await sub.request([5, 6, 7][...]).prefix(3) == [5, 6, 7])
        bus.host.rescind(primary)
        await bus.guest.settle()
        #expect(await sub.closed() == .rescinded)
        await reader.value
        #expect(bus.host.relids.isEmpty)
    }

    @Test func aGpadlOutsideGuestMemoryIsRefusedAndNothingElseBreaks() async throws {
        let (bus, _, client) = try echoBus()
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        let relid = try #require(client.devices.first?.relid)
        let beyond = UInt64(bus.memory.pageCount + 10)
        let range = try GpaRange(byteCount: 8192, byteOffset: 0, pfns: [beyond, beyond + 1])
        await #expect(throws: BusError.refused(HostConnection.failure)) {
            try await bus.guest.createGpadl(channel: relid, ranges: [range])
        }
        #expect(try await client.echo([4, 2]) == [4, 2])
    }

    @Test func aHostileGuestMessageDropsTheConnectionNotTheHost() async throws {
        let (bus, _, _) = try echoBus()
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        // A GPADL body for a handle nobody is building: connection scope.
        let body = try ChannelMessage.gpadlBody(GpadlBody(messageNumber: 1, gpadl: 0xDEAD, words: [1])).encode()
        bus.injectToHost(body)
        #expect(bus.host.violations.map(\.scope) == [.connection])
        #expect(bus.host.negotiated == nil)
        // Truncated garbage is a violation too, never a trap.
        bus.injectToHost([0x0E, 0, 0])
        #expect(bus.host.violations.count == 2)
    }

    @Test func aHostileHostMessageIsDroppedAndTheGuestCarriesOn() async throws {
        let (bus, _, client) = try echoBus()
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        bus.injectToGuest(try ChannelMessage.openResult(OpenResult(childRelID: 77, openID: 77, status: .success)).encode())
        bus.injectToGuest([1, 0, 0, 0, 0])
        #expect(bus.guest.misbehaviours.count == 2)
        #expect(try await client.echo([3]) == [3])
    }

    @Test func unloadThenReconnectRebindsEverything() async throws {
        let (bus, _, client) = try echoBus(devices: 2)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        let before = client.devices.count
        try await bus.guest.unload()
        #expect(client.devices.isEmpty && bus.host.negotiated == nil)
        await #expect(throws: BusError.self) { try await client.echo([1]) }
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        #expect(client.devices.count == before)
        #expect(try await client.echo([8]) == [8])
    }

    @Test func manualModeDeliversOnlyWhenStepped() async throws {
        let (bus, _, _) = try echoBus(mode: .manual)
        let guest = bus.guest
        let connecting = Task { try await guest.connect() }
        // Nothing moves by itself: wait (yielding) for the InitiateContact to be posted.
        while bus.pending == 0 { await Task.yield() }
        #expect(bus.messageCounts == (0, 0))
        #expect(bus.step())
        #expect(bus.messageCounts == (1, 0))  // InitiateContact delivered, VersionResponse queued
        #expect(bus.pending == 1)
        bus.run()
        // RequestOffers is posted by the connecting task once it resumes.
        while bus.pending == 0 { await Task.yield() }
        bus.run()
        #expect(try await connecting.value == .copper)
        #expect(bus.messageCounts == (2, 3))  // contact + request; version + offer + all delivered
    }

    @Test func postsRefusedByAFullQueueAreRetried() async throws {
        let (bus, _, client) = try echoBus()
        bus.failNextPosts(3)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        #expect(bus.rejectedPosts == 3)
        #expect(try await client.echo([1, 2]) == [1, 2])
    }

    @Test func monitoredChannelsSignalThroughTheMonitorPage() async throws {
        let (bus, _, client) = try echoBus(wantsMonitor: true, monitorPages: true)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        let relid = try #require(client.devices.first?.relid)
        #expect(bus.guest.devices.first?.offer.monitorAllocated == true)
        for n in 0..<20 { #expect(try await client.echo([UInt8(n)]) == [UInt8(n)]) }
        let hostChannel = try #require(bus.host.channel(relid))
        #expect(hostChannel.statistics.incoming.interrupts >= 1)
        let doorbells = bus.doorbellCounts
        #expect(doorbells.events == 0 && doorbells.monitor >= 1)
        // In low-latency mode the guest would signal events instead; without monitor pages
        // every channel does.
        let (plain, _, plainClient) = try echoBus(wantsMonitor: true, monitorPages: false)
        _ = try await plain.guest.connect()
        await plain.guest.settle()
        #expect(try await plainClient.echo([1]) == [1])
        #expect(plain.doorbellCounts.monitor == 0 && plain.doorbellCounts.events >= 1)
    }

    @Test func driverOverrideAndFailedProbes() async throws {
        let bus = try LoopbackBus()
        let classID = GUID("11111111-2222-3333-4444-555555555555") ?? .zero
        bus.host.register(PlainDevice(classID: classID, instance: instance(1)))
        bus.host.register(PlainDevice(classID: classID, instance: instance(2)))
        let first = RecordingDriver(name: "first", classes: [classID])
        let second = RecordingDriver(name: "second", classes: [], failProbe: true)
        bus.guest.setDriverOverride(instance: instance(2), driver: "second")
        bus.guest.register(first)
        bus.guest.register(second)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        let relid1 = try #require(bus.guest.device(instance: instance(1))?.relid)
        let relid2 = try #require(bus.guest.device(instance: instance(2))?.relid)
        #expect(bus.guest.boundDriver(relid1) == "first")
        // The override wins over class matching; its probe failed, so the device is unbound.
        #expect(second.log == ["probe \(relid2)"])
        #expect(bus.guest.boundDriver(relid2) == nil)
        #expect(!first.log.contains("probe \(relid2)"))
        await bus.guest.unbind(relid1)
        #expect(first.log == ["probe \(relid1)", "remove \(relid1)"])
    }

    @Test func aCorruptRingFromTheHostClosesThatChannelOnly() async throws {
        let (bus, _, client) = try echoBus(devices: 2)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        let relids = client.devices.map(\.relid)
        let victim = try #require(client.channel(relids[0]))
        // The host writes an impossible write index into the ring the guest reads.
        let ring = try #require(bus.guest.ringLocation(relids[0]))
        try bus.memory.memory.storeUInt32(0xFFFF_FFF0, at: ring.incomingControl + RingControlPage.writeIndexOffset)
        bus.guest.signal(relid: relids[0])
        guard case .ringCorrupted = await victim.closed() else {
            Issue.record("the channel did not close as corrupted")
            return
        }
        await bus.guest.settle()
        // The guest closed it towards the host too.
        #expect(bus.host.channel(relids[0]) == nil)
        #expect(try await client.echo([2], device: relids[1]) == [2])
    }
}
