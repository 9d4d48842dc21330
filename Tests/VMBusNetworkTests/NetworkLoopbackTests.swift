import Testing
import VMBusChannel
import VMBusGuest
import VMBusHost
import VMBusLoopback
import VMBusMemory
import VMBusNetwork
import VMBusWire

/// A host NIC and a guest NIC on one loopback bus, each joined to an in-memory port the test
/// holds: the test is the wire on the host side and the operating system on the guest side.
struct NetworkPair {
    let bus: LoopbackBus
    let device: NetvspDevice
    let nic: NetvscNIC
    /// The host side's network (frames the guest sends arrive here).
    let wire: MemoryNetworkPort
    /// The guest's operating system (frames from the host arrive here).
    let system: MemoryNetworkPort

    static func make(
        queues: Int = 1, configuration: NetvscDriver.Configuration = NetvscDriver.Configuration(), capture: (any CaptureRecorder)? = nil
    ) async throws -> NetworkPair {
        let bus = try LoopbackBus(capture: capture)
        let (hostEnd, wire) = MemoryNetworkPort.pair(macAddresses: (MACAddress("00:15:5d:12:34:56")!, .hyperV(seed: 9)))
        let device = NetvspDevice(instance: GUID(data1: 0x4E1C, data2: 0, data3: 0, data4: 0), backend: hostEnd, maximumQueues: queues)
        device.attach(to: bus.host)
        bus.host.register(device)
        let (driver, systems) = NetvscDriver.inMemory(configuration: configuration)
        bus.guest.register(driver)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        let nic = await driver.firstNIC()
        let system = try #require(systems.first)
        return NetworkPair(bus: bus, device: device, nic: nic, wire: wire, system: system)
    }
}

/// Test frames: Ethernet header (broadcast, from a fixed MAC, IPv4 type) and a numbered body.
func testFrame(_ n: Int, length: Int) -> [UInt8] {
    var frame: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]
    frame += (0..<(length - 14)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ n) }
    return frame
}

@Suite struct NetworkLoopbackTests {
    @Test func theGuestComesUpAsLinuxWould() async throws {
        let pair = try await NetworkPair.make()
        #expect(pair.nic.version == .v61)
        #expect(pair.device.version == .v61)
        #expect(pair.nic.macAddress == MACAddress("00:15:5d:12:34:56"))
        #expect(pair.nic.mtu == 1500 && pair.nic.linkUp)
        #expect(pair.device.isReady)
    }

    /// More frames than the guest's receive buffer has slots: the host gets every slot back
    /// through the guest's completions. Sent in rounds of 500 (a burst larger than the slots
    /// would be dropped, as a NIC drops), each round checked byte for byte.
    @Test func framesCrossBothWaysByteExact() async throws {
        let pair = try await NetworkPair.make()
        let slots = pair.device.freeReceiveSlots
        let sizes = [14, 60, 64, 128, 512, 1000, 1514]
        let round = 500
        let rounds = slots / round + 2
        let toGuest = pair.system.frames().makeAsyncIterator()
        let toHost = pair.wire.frames().makeAsyncIterator()
        var guestSide = toGuest
        var hostSide = toHost
        for r in 0..<rounds {
            let sent = (0..<round).map { testFrame(r * round + $0, length: sizes[$0 % sizes.count]) }
            for frame in sent { pair.wire.send(frame[...]) }
            var got: [[UInt8]] = []
            while got.count < round, let frame = await guestSide.next() { got.append(frame) }
            #expect(got == sent, "host → guest, round \(r)")
            for frame in sent { pair.system.send(frame[...]) }
            got = []
            while got.count < round, let frame = await hostSide.next() { got.append(frame) }
            #expect(got == sent, "guest → host, round \(r)")
        }
        let total = UInt64(round * rounds)
        #expect(total > UInt64(slots))
        #expect(pair.device.statistics[0]?.rxPackets == total && pair.device.statistics[0]?.txPackets == total)
        #expect(pair.nic.statistics[0]?.rxPackets == total && pair.nic.statistics[0]?.txPackets == total)
        #expect(await pair.device.waitForSlotsReturned(), "every receive slot came back")
        #expect(pair.device.freeReceiveSlots == slots)
        #expect(await pair.nic.waitForSendsCompleted(), "every send section came back")
    }
}

@Suite struct NetvscLifetimeTests {
    /// Unbinding a NIC gives its receive, send and large-send buffers back once its channel
    /// closed and its GPADLs are torn down: binding and unbinding again and again leaves guest
    /// memory as it was, and each new binding carries frames.
    @Test func unbindingGivesTheBuffersBack() async throws {
        let bus = try LoopbackBus()
        let (hostEnd, wire) = MemoryNetworkPort.pair(offloads: .all)
        let instance = GUID(data1: 0x4E1C, data2: 0, data3: 0, data4: 0)
        let device = NetvspDevice(instance: instance, backend: hostEnd)
        device.attach(to: bus.host)
        bus.host.register(device)
        let (driver, systems) = NetvscDriver.inMemory(offloads: .all)
        bus.guest.register(driver)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        var nic = await driver.firstNIC()
        let guestDevice = try #require(bus.guest.device(instance: instance))
        await bus.guest.unbind(nic.relid)
        await nic.waitUntilReleased()
        let free = bus.guest.memory.freePages
        for round in 1...3 {
            await bus.guest.bind(guestDevice)
            nic = await driver.firstNIC()
            let system = try #require(systems.last)
            var toGuest = system.frames().makeAsyncIterator()
            let frame = testFrame(round, length: 200)
            wire.send(frame[...])
            #expect(await toGuest.next() == frame)
            await bus.guest.unbind(nic.relid)
            await nic.waitUntilReleased()
            #expect(bus.guest.memory.freePages == free, "round \(round)")
        }
    }
}
