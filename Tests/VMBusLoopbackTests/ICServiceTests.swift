import Synchronization
import Testing
import VMBusChannel
import VMBusDevices
import VMBusGuest
import VMBusHost
import VMBusLoopback
import VMBusMemory
import VMBusWire

/// A loopback bus with the host sides of the services registered and the guest drivers bound.
func icBus(host devices: [ICHostDevice], guest services: [any ICGuestService]) async throws -> (LoopbackBus, [ICGuestDriver]) {
    let bus = try LoopbackBus()
    for device in devices { bus.host.register(device) }
    let drivers = services.map { ICGuestDriver($0) }
    for driver in drivers { bus.guest.register(driver) }
    _ = try await bus.guest.connect()
    await bus.guest.settle()
    return (bus, drivers)
}

@Suite struct ICServiceTests {
    @Test func heartbeatsAreAnsweredAndHealthIsTracked() async throws {
        let host = HeartbeatHost()
        #expect(host.health == .notRunning)
        let guest = HeartbeatGuest()
        let (bus, drivers) = try await icBus(host: [host.device], guest: [guest])
        defer { withExtendedLifetime(bus) {} }
        for n: UInt64 in 1...5 { #expect(try await host.beat() == n + 1) }
        #expect(guest.count == 5)
        guard case .healthy = host.health else {
            Issue.record("not healthy: \(host.health)")
            return
        }
        // Negotiated by guest preference: framework 3.0 (Linux's first), heartbeat 3.0.
        #expect(host.device.negotiated?.framework == ICVersion(3, 0) && host.device.negotiated?.service == ICVersion(3, 0))
        #expect(drivers[0].negotiated?.service == ICVersion(3, 0))
    }

    @Test func shutdownIsAnsweredThenActedOn() async throws {
        let actions = Mutex<[ShutdownMessage.Action]>([])
        let host = ShutdownHost()
        let guest = ShutdownGuest { action, _ in actions.withLock { $0.append(action) } }
        let (bus, _) = try await icBus(host: [host.device], guest: [guest])
        #expect(try await host.request([], message: "bye") == .ok)
        #expect(try await host.request([.restart, .force]) == .ok)
        #expect(try await host.request(.hibernate) == .fail)  // this guest cannot hibernate
        #expect(try await host.request(ShutdownFlags(rawValue: 8)) == .fail)
        await bus.guest.settle()
        #expect(actions.withLock { $0 } == [.powerOff, .reboot])
        #expect(host.device.negotiated?.service == ICVersion(3, 2))
    }

    @Test(arguments: [[ICVersion(4, 0)], [ICVersion(1, 0), ICVersion(3, 0)]])
    func timeSyncTracksHostTimeInBothFormats(_ versions: [ICVersion]) async throws {
        let synced = Mutex<[UInt64]>([])
        let host = TimeSyncHost(versions: versions)
        let guest = TimeSyncGuest { time in synced.withLock { $0.append(time) } }
        let (bus, _) = try await icBus(host: [host.device], guest: [guest])
        defer { withExtendedLifetime(bus) {} }
        try await host.send(.sync)
        try await host.send(.sample)
        #expect(guest.samples == 2)
        #expect(host.device.negotiated?.service == versions.max())
        // Same machine: the host's time as tracked is this clock, within a second.
        let offset = try #require(guest.offset)
        #expect(abs(offset) < 10_000_000)
        #expect(synced.withLock { $0.count } == 1)
    }

    @Test func noCommonVersionMakesTheServiceUnusable() async throws {
        let host = ICHostDevice(
            classID: DeviceClass.heartbeat.classID, instance: .zero, serviceVersions: [ICVersion(9, 0)])
        let (bus, drivers) = try await icBus(host: [host], guest: [HeartbeatGuest()])
        defer { withExtendedLifetime(bus) {} }
        await #expect(throws: ICError.noCommonVersion) { try await host.ready() }
        #expect(drivers[0].negotiated == nil)
        await #expect(throws: ICError.noCommonVersion) { try await host.transact(.heartbeat, body: [0, 0, 0, 0, 0, 0, 0, 0]) }
    }

    /// Host lists × guest lists: the choice follows the guest's preference, or fails cleanly.
    @Test func negotiationMatrix() async throws {
        let hostLists: [[ICVersion]] = [[ICVersion(1, 0)], [ICVersion(1, 0), ICVersion(3, 0)], [ICVersion(3, 0), ICVersion(1, 0)], [ICVersion(5, 0)]]
        for list in hostLists {
            let host = ICHostDevice(classID: DeviceClass.heartbeat.classID, instance: .zero, serviceVersions: list)
            let (bus, _) = try await icBus(host: [host], guest: [HeartbeatGuest()])
            defer { withExtendedLifetime(bus) {} }
            let expected = ICVersions.linuxHeartbeat.first { list.contains($0) }
            if let expected {
                #expect(try await host.ready().service == expected)
            } else {
                await #expect(throws: ICError.noCommonVersion) { try await host.ready() }
            }
        }
    }

    @Test func malformedRequestsAreDroppedOrFailedAndCounted() async throws {
        let guest = HeartbeatGuest()
        let host = HeartbeatHost(timeout: .milliseconds(200))
        let (bus, drivers) = try await icBus(host: [host.device], guest: [guest])
        _ = try await host.beat()
        // A heartbeat too short for its sequence number: dropped without an answer.
        await #expect(throws: ICError.timedOut) { try await host.device.transact(.heartbeat, body: [1, 2, 3]) }
        // An unknown message type: answered with HV_E_FAIL.
        #expect(try await host.device.transact(ICMessageType(rawValue: 42), body: [0]).header.status == .fail)
        // Raw garbage on the channel: dropped and counted, the service carries on.
        let relid = try #require(bus.guest.devices.first?.relid)
        let hostChannel = try #require(bus.host.channel(relid))
        try await hostChannel.send(inBand: [0xFF, 0xFF, 0xFF][...])
        try await hostChannel.send(inBand: [UInt8](repeating: 0xEE, count: 3000)[...])
        #expect(try await host.beat() > 0)
        #expect(drivers[0].statistics.dropped >= 3)
        guard case .healthy = host.health else {
            Issue.record("not healthy after garbage: \(host.health)")
            return
        }
    }
}
