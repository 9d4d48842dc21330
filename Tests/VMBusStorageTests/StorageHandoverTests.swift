import Foundation
import Testing
import VMBusChannel
import VMBusGuest
import VMBusHost
import VMBusLocal
import VMBusMemory
import VMBusWire

@testable import VMBusStorage

/// A storage controller handed to a new `LocalHost` in the same process (what a takeover does
/// between two processes, with the descriptors duplicated as SCM_RIGHTS would) while the guest
/// writes and reads on two queues: every request succeeds, every sector holds what was written
/// last, and the new host serves the controller at the protocol the guest negotiated.
@Suite(.serialized) struct StorageHandoverTests {
    static func host(_ path: String, disk: any DiskBackend, devices: Locked<[StorvspDevice]>) -> @Sendable (HostBus) -> [any HostDevice] {
        { bus in
            var configuration = StorvspDevice.Configuration()
            configuration.maximumSubChannels = 1
            let device = StorvspDevice(instance: StoragePair.instance, disks: [0: disk], configuration: configuration)
            device.attach(to: bus)
            devices.withLock { $0.append(device) }
            return [device]
        }
    }

    static func socketPath() -> String { "/tmp/vmbus-storage-handover-\(UInt64.random(in: 0...UInt64.max)).sock" }

    @Test func aControllerIsHandedOverUnderIOWithNothingLost() async throws {
        let file = TemporaryPath("handover")
        let disk = try FileDisk.create(path: file.path, byteCount: 8 << 20)
        let path = Self.socketPath()
        let devices = Locked<[StorvspDevice]>([])
        let makeDevices = Self.host(path, disk: disk, devices: devices)
        let old = try LocalHost(path: path, devices: makeDevices)
        old.start()
        var guestConfiguration = StorvscDriver.Configuration()
        guestConfiguration.subChannels = 1
        let driver = StorvscDriver(configuration: guestConfiguration)
        let guest = try LocalGuest.connect(path: path, memoryBytes: 16 << 20)
        guest.bus.register(driver)
        _ = try await guest.bus.connect()
        await guest.bus.settle()
        let target = await driver.firstDisk()
        let controller = try #require(driver.allControllers.first)
        try #require(await controller.waitUntil(timeout: .seconds(10)) { $0.queueCount == 2 })

        // Eight writers, each owning its own 64 sectors, rewriting them round after round and
        // reading each round back: a lost, repeated or failed request shows as an error or a
        // sector that is not the last round's.
        let progress = Locked(0)
        let started = AsyncStream<Void>.makeStream()
        let rounds = 60
        let io = Task {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for lane in 0..<8 {
                    group.addTask {
                        var good = 0
                        for round in 0..<rounds {
                            let data = pattern(lane * 1000 + round, bytes: 32 << 10)
                            try await target.write(lba: UInt64(lane * 64), data)
                            if try await target.read(lba: UInt64(lane * 64), count: 64) == data { good += 1 }
                            if progress.withLock({ count in
                                count += 1
                                return count
                            }) == 40 { started.continuation.yield() }
                        }
                        return good
                    }
                }
                return try await group.reduce(0, +)
            }
        }
        // A lost completion would leave its request waiting for ever: hang up instead, so
        // the test fails rather than hangs.
        let watchdog = Task {
            try await Task.sleep(for: .seconds(120))
            guest.hangUp()
        }
        defer { watchdog.cancel() }
        for await _ in started.stream { break }

        let new = try await old.handOverInProcess(path: path, devices: makeDevices)

        let good = try await io.value
        #expect(good == 8 * rounds)
        for lane in 0..<8 {
            #expect(try disk.read(at: UInt64(lane * 64 * 512), count: 32 << 10) == pattern(lane * 1000 + rounds - 1, bytes: 32 << 10))
        }
        let successor = try #require(devices.withLock { $0.last })
        #expect(devices.withLock { $0.count } == 2)
        #expect(successor.isReady && successor.version == .blue)
        #expect(successor.statistics.values.reduce(0) { $0 + $1.requests } > 0, "the new host served some of the I/O")
        guest.disconnect()
        new.stop()
        old.stop()
    }

    /// A memory disk lives only in this process: the hand-over is refused with the reason and
    /// the old host serves on.
    @Test func aMemoryDiskRefusesTheHandover() async throws {
        let disk = try MemoryDisk(sectorCount: 2048)
        let path = Self.socketPath()
        let devices = Locked<[StorvspDevice]>([])
        let old = try LocalHost(path: path, devices: Self.host(path, disk: disk, devices: devices))
        old.start()
        let driver = StorvscDriver()
        let guest = try LocalGuest.connect(path: path, memoryBytes: 16 << 20)
        guest.bus.register(driver)
        _ = try await guest.bus.connect()
        await guest.bus.settle()
        let target = await driver.firstDisk()
        do {
            _ = try await old.prepareHandover(timeout: .seconds(5))
            Issue.record("a memory disk was handed over")
        } catch {
            #expect(error.description.contains("the disk at LUN 0 lives only in this process's memory"), "\(error)")
        }
        try await target.write(lba: 0, pattern(9, bytes: 4096))
        #expect(try await target.read(lba: 0, count: 8) == pattern(9, bytes: 4096))
        guest.disconnect()
        old.stop()
    }
}
