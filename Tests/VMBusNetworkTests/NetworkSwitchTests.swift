import Foundation
import Testing
import VMBusGuest
import VMBusHost
import VMBusLocal
import VMBusMemory
import VMBusNetwork
import VMBusWire

/// `vmbus host --net switch`: two guest processes' NICs joined by the host's learning switch,
/// over the two-process substrate (socket, memfd, eventfd doorbells).
@Suite struct NetworkSwitchTests {
    /// A guest on the host at `path` whose NIC's operating-system side the test holds.
    static func guest(_ path: String) async throws -> (LocalGuest, MemoryNetworkPort, MACAddress) {
        let guest = try LocalGuest.connect(path: path, memoryBytes: 32 << 20)
        let (driver, systems) = NetvscDriver.inMemory()
        guest.bus.register(driver)
        _ = try await guest.bus.connect()
        await guest.bus.settle()
        let nic = await driver.firstNIC()
        let system = try #require(systems.first)
        return (guest, system, try #require(nic.macAddress))
    }

    /// An Ethernet frame from `source` to `destination` with a numbered body.
    static func frame(from source: MACAddress, to destination: MACAddress, _ n: Int) -> [UInt8] {
        destination.bytes + source.bytes + [0x88, 0xB5] + (0..<100).map { UInt8(truncatingIfNeeded: $0 + n) }
    }

    @Test func twoGuestsTalkThroughTheHostsSwitch() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-switch-\(UInt32.random(in: 0...UInt32.max)).sock").path
        let fabric = NetworkSwitch()
        let guests = Locked(0)
        let host = try LocalHost(path: path) { bus in
            let number = guests.withLock { count in
                count += 1
                return count
            }
            let mac = MACAddress.hyperV(seed: UInt32(number))
            let device = NetvspDevice(
                instance: GUID(data1: 0x4E1C_0000 | UInt32(number), data2: 0, data3: 0, data4: 0), backend: fabric.makePort(macAddress: mac),
                macAddress: mac)
            device.attach(to: bus)
            return [device]
        }
        host.start()
        defer { host.stop() }
        let (first, one, oneMAC) = try await Self.guest(path)
        let (second, two, twoMAC) = try await Self.guest(path)
        defer {
            first.disconnect()
            second.disconnect()
        }
        #expect(oneMAC != twoMAC)
        var atOne = one.frames().makeAsyncIterator()
        var atTwo = two.frames().makeAsyncIterator()
        // A broadcast teaches the switch where the first guest is; then unicast both ways.
        let broadcast = Self.frame(from: oneMAC, to: MACAddress([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]), 0)
        one.send(broadcast[...])
        #expect(await atTwo.next() == broadcast)
        for n in 1...200 {
            let ping = Self.frame(from: twoMAC, to: oneMAC, n)
            two.send(ping[...])
            #expect(await atOne.next() == ping)
            let pong = Self.frame(from: oneMAC, to: twoMAC, n)
            one.send(pong[...])
            #expect(await atTwo.next() == pong)
        }
    }
}
