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

    static func make(queues: Int = 1, configuration: NetvscDriver.Configuration = NetvscDriver.Configuration()) async throws -> NetworkPair {
        let bus = try LoopbackBus()
        let (hostEnd, wire) = MemoryNetworkPort.pair(macAddresses: (MACAddress("00:15:5d:12:34:56")!, .hyperV(seed: 9)))
        let device = NetvspDevice(instance: GUID(data1: 0x4E1C, data2: 0, data3: 0, data4: 0), backend: hostEnd, maximumQueues: queues)
        device.attach(to: bus.host)
        bus.host.register(device)
        let systems = Locked<[MemoryNetworkPort]>([])
        let driver = NetvscDriver(configuration: configuration) { mac, mtu in
            let (nicEnd, system) = MemoryNetworkPort.pair(macAddresses: (mac, mac), mtu: mtu)
            systems.withLock { $0.append(system) }
            return nicEnd
        }
        bus.guest.register(driver)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        let nic = await driver.firstNIC()
        let system = try #require(systems.withLock { $0.first })
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

    @Test func framesCrossBothWaysByteExact() async throws {
        let pair = try await NetworkPair.make()
        let sizes = [14, 60, 64, 128, 512, 1000, 1514]
        let count = 300
        let sent = (0..<count).map { testFrame($0, length: sizes[$0 % sizes.count]) }
        // Host → guest: the wire sends, the guest's system receives.
        let toGuest = Task {
            var got: [[UInt8]] = []
            for await frame in pair.system.frames() {
                got.append(frame)
                if got.count == count { break }
            }
            return got
        }
        for frame in sent { pair.wire.send(frame[...]) }
        #expect(await toGuest.value == sent)
        // Guest → host.
        let toHost = Task {
            var got: [[UInt8]] = []
            for await frame in pair.wire.frames() {
                got.append(frame)
                if got.count == count { break }
            }
            return got
        }
        for frame in sent { pair.system.send(frame[...]) }
        #expect(await toHost.value == sent)
        #expect(pair.device.statistics[0]?.rxPackets == UInt64(count) && pair.device.statistics[0]?.txPackets == UInt64(count))
        #expect(pair.nic.statistics[0]?.rxPackets == UInt64(count) && pair.nic.statistics[0]?.txPackets == UInt64(count))
    }
}
