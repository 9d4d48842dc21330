import Foundation
import Testing
import VMBusChannel
import VMBusGuest
import VMBusHost
import VMBusLocal
import VMBusMemory
import VMBusWire

@testable import VMBusNetwork

/// A synthetic NIC handed to a new `LocalHost` in the same process (what a takeover does
/// between two processes, with the descriptors duplicated as SCM_RIGHTS would) while frames
/// stream both ways. The host side's wire keeps what the NIC did not take and offers it again,
/// as a TAP's kernel queue does: every frame arrives, once, in order.
@Suite(.serialized) struct NetworkHandoverTests {
    static func socketPath() -> String { "/tmp/vmbus-net-handover-\(UInt64.random(in: 0...UInt64.max)).sock" }

    static func frame(_ n: Int) -> [UInt8] {
        var frame: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]
        frame += (0..<4).map { UInt8(truncatingIfNeeded: n >> (8 * $0)) }
        frame += (0..<(60 + n % 900)).map { UInt8(truncatingIfNeeded: $0 &+ n) }
        return frame
    }

    static func number(_ frame: [UInt8]) -> Int? {
        guard frame.count >= 18 else { return nil }
        return Int(UInt32(frame[14]) | UInt32(frame[15]) << 8 | UInt32(frame[16]) << 16 | UInt32(frame[17]) << 24)
    }

    @Test func aNICIsHandedOverWhileFramesFlowBothWays() async throws {
        let (hostEnd, wire) = MemoryNetworkPort.pair(macAddresses: (MACAddress("00:15:5d:12:34:56")!, .hyperV(seed: 9)))
        let devices = Locked<[NetvspDevice]>([])
        let makeDevices: @Sendable (HostBus) -> [any HostDevice] = { bus in
            let device = NetvspDevice(instance: GUID(data1: 0x4E1C, data2: 1, data3: 0, data4: 0), backend: hostEnd, maximumQueues: 2)
            device.attach(to: bus)
            devices.withLock { $0.append(device) }
            return [device]
        }
        let path = Self.socketPath()
        let old = try LocalHost(path: path, devices: makeDevices)
        old.start()
        var configuration = NetvscDriver.Configuration()
        configuration.queues = 2
        let (driver, systems) = NetvscDriver.inMemory(configuration: configuration)
        let guest = try LocalGuest.connect(path: path, memoryBytes: 32 << 20)
        guest.bus.register(driver)
        _ = try await guest.bus.connect()
        await guest.bus.settle()
        let nic = await driver.firstNIC()
        let system = try #require(systems.first)
        try #require(devices.withLock { $0[0] }.isReady)
        let watchdogFired = Locked(false)
        // A lost frame or a stopped channel must fail the test, not hang it: the streams end.
        let watchdog = Task {
            try await Task.sleep(for: .seconds(60))
            watchdogFired.withLock { $0 = true }
            guest.hangUp()
            wire.close()
            system.close()
        }
        defer { watchdog.cancel() }

        let total = 3000
        var toGuest = system.frames().makeAsyncIterator()
        var toHost = wire.frames().makeAsyncIterator()
        let (halfway, halfwayContinuation) = AsyncStream<Void>.makeStream()
        // Host → guest: what the NIC does not take now is offered again, in order.
        let inbound = Task {
            var next = 0
            while next < total {
                if next == total / 2 { halfwayContinuation.yield() }
                let frame = Self.frame(next)
                if wire.send(batch: FrameBatch(frame[...])) == 1 {
                    next += 1
                } else {
                    if watchdogFired.withLock({ $0 }) { return }
                    try await Task.sleep(for: .milliseconds(1))
                }
                if next % 16 == 0 { await Task.yield() }
            }
        }
        // Guest → host, paced below what the rings hold during a pause.
        let outbound = Task {
            for n in 0..<total {
                system.send(Self.frame(n)[...])
                if n % 8 == 7 { try await Task.sleep(for: .milliseconds(1)) }
            }
        }
        for await _ in halfway { break }
        let new = try await old.handOverInProcess(path: path, devices: makeDevices)

        var inOrder = true
        for n in 0..<total {
            guard let frame = await toGuest.next() else {
                inOrder = false
                break
            }
            if Self.number(frame) != n || frame != Self.frame(n) {
                inOrder = false
                Issue.record("host → guest: frame \(n) is \(Self.number(frame) ?? -1)")
                break
            }
        }
        #expect(inOrder)
        for n in 0..<total {
            guard let frame = await toHost.next() else {
                Issue.record("guest → host: the stream ended at frame \(n)")
                break
            }
            if Self.number(frame) != n || frame != Self.frame(n) {
                Issue.record("guest → host: frame \(n) is \(Self.number(frame) ?? -1)")
                break
            }
        }
        try await inbound.value
        try await outbound.value
        let successor = try #require(devices.withLock { $0.last })
        #expect(devices.withLock { $0.count } == 2)
        #expect(successor.isReady && successor.version == .v61)
        #expect((successor.statistics.values.reduce(0) { $0 + $1.rxPackets }) > 0, "the new host delivered frames")
        #expect(await successor.waitForSlotsReturned(), "every receive slot lent by either host came back to the new one")
        #expect(await nic.waitForSendsCompleted(), "every send section came back")
        guest.disconnect()
        new.stop()
    }
}
