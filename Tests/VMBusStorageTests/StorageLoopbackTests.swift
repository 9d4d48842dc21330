import Glibc
import Testing
import VMBusChannel
import VMBusGuest
import VMBusHost
import VMBusLoopback
import VMBusMemory
import VMBusWire

@testable import VMBusStorage

/// A storvsp with its disks and a storvsc on one loopback bus.
struct StoragePair {
    let bus: LoopbackBus
    let device: StorvspDevice
    let driver: StorvscDriver
    let disk: StorvscDisk

    static let instance = GUID(data1: 0x5C51, data2: 1, data3: 2, data4: 3)

    static func make(
        disks: [UInt8: any DiskBackend], configuration: StorvspDevice.Configuration = StorvspDevice.Configuration(),
        guest: StorvscDriver.Configuration = StorvscDriver.Configuration()
    ) async throws -> StoragePair {
        let bus = try LoopbackBus()
        let device = StorvspDevice(instance: Self.instance, disks: disks, configuration: configuration)
        device.attach(to: bus.host)
        bus.host.register(device)
        let driver = StorvscDriver(configuration: guest)
        bus.guest.register(driver)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        let disk = await driver.firstDisk()
        return StoragePair(bus: bus, device: device, driver: driver, disk: disk)
    }
}

/// A pattern that differs per sector and per call.
func pattern(_ seed: Int, bytes: Int) -> [UInt8] {
    (0..<bytes).map { UInt8(truncatingIfNeeded: ($0 &* 31) ^ ($0 >> 9) &+ seed &* 7) }
}

@Suite struct StorageLoopbackTests {
    @Test func theGuestNegotiatesAndFindsTheDisk() async throws {
        let backend = try MemoryDisk(sectorCount: 2048)
        let pair = try await StoragePair.make(disks: [0: backend])
        // Linux offers 6.2 first; a host that accepts what OpenVMM does settles on 6.0.
        #expect(pair.device.version == .blue)
        #expect(pair.device.isReady)
        #expect(pair.disk.lun == 0)
        #expect(pair.disk.sectorSize == 512 && pair.disk.sectorCount == 2048)
        #expect(!pair.disk.isReadOnly && pair.disk.supportsDiscard)
        #expect(pair.disk.maximumTransferSectors == 512)
    }

    @Test(arguments: [512, 4096])
    func writesAndReadsAreByteExactOnTheHostDisk(sectorSize: Int) async throws {
        let backend = try MemoryDisk(sectorCount: UInt64(4 << 20 / sectorSize), sectorSize: sectorSize)
        let pair = try await StoragePair.make(disks: [0: backend])
        let disk = pair.disk
        let data = pattern(1, bytes: 64 * 1024)
        try await disk.write(lba: 3, data)
        #expect(try backend.read(at: UInt64(3 * sectorSize), count: data.count) == data)
        #expect(try await disk.read(lba: 3, count: data.count / sectorSize) == data)
        // A sector written on the host is what the guest reads.
        try backend.write(at: 0, from: pattern(2, bytes: sectorSize))
        #expect(try await disk.read(lba: 0, count: 1) == pattern(2, bytes: sectorSize))
    }
}

/// A temporary file path, removed when the value goes.
final class TemporaryPath: Sendable {
    let path: String
    init(_ name: String = "disk") {
        self.path = "/tmp/vmbus-storage-test-\(name)-\(UInt64.random(in: 0...UInt64.max)).img"
    }
    deinit { try? FileSystem.remove(self.path) }
}

@Suite struct StorageIOTests {
    /// Many requests at once on a file disk (disk threads complete them in any order): every
    /// one lands where it was asked, and every read returns its own sectors.
    @Test func manyRequestsInFlightOnAFileLandExactly() async throws {
        let file = TemporaryPath()
        let backend = try FileDisk.create(path: file.path, byteCount: 8 << 20)
        let pair = try await StoragePair.make(disks: [0: backend])
        let disk = pair.disk
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 0..<128 {
                group.addTask { try await disk.write(lba: UInt64(n * 16), pattern(n, bytes: 8192)) }
            }
            try await group.waitForAll()
        }
        for n in 0..<128 { #expect(try backend.read(at: UInt64(n * 8192), count: 8192) == pattern(n, bytes: 8192)) }
        let reads = try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
            for n in 0..<128 { group.addTask { (n, try await disk.read(lba: UInt64(n * 16), count: 16)) } }
            var all: [Int: [UInt8]] = [:]
            for try await (n, bytes) in group { all[n] = bytes }
            return all
        }
        for n in 0..<128 { #expect(reads[n] == pattern(n, bytes: 8192)) }
        let stats = pair.device.statistics[0]
        #expect(stats?.writes == 128 && stats?.reads == 128 + 0)
        #expect(stats?.bytesWritten == 128 * 8192)
    }

    /// Largest transfers (the host's 256 KiB) and an unaligned-in-memory-free path: 1 MiB in
    /// four requests, read back in one pass of four.
    @Test func largestTransfersCrossWhole() async throws {
        let backend = try MemoryDisk(sectorCount: 8192)
        let pair = try await StoragePair.make(disks: [0: backend])
        let big = pattern(7, bytes: 256 * 1024)
        try await pair.disk.write(lba: 100, big)
        let same = try await pair.disk.read(lba: 100, count: 512) == big
        #expect(same)
        // One sector more than a request may carry is refused before anything is sent.
        await #expect(throws: BlockDeviceError.self) { try await pair.disk.read(lba: 0, count: 513) }
    }

    @Test func flushDiscardAndFUAReachTheBackend() async throws {
        let file = TemporaryPath()
        let backend = try FileDisk.create(path: file.path, byteCount: 4 << 20)
        let pair = try await StoragePair.make(disks: [0: backend])
        try await pair.disk.write(lba: 0, pattern(3, bytes: 65536), fua: true)
        try await pair.disk.flush()
        try await pair.disk.discard(lba: 8, count: 64)
        #expect(try backend.read(at: 0, count: 4096) == Array(pattern(3, bytes: 65536).prefix(4096)))
        #expect(try backend.read(at: 4096, count: 32768) == [UInt8](repeating: 0, count: 32768))
        #expect(try await pair.disk.read(lba: 8, count: 64) == [UInt8](repeating: 0, count: 32768))
        let stats = try #require(pair.device.statistics[0])
        #expect(stats.flushes == 1 && stats.discards == 1 && stats.writes == 1)
    }

    @Test func aReadOnlyDiskRefusesWritesAndKeepsItsBytes() async throws {
        let contents = pattern(5, bytes: 1 << 20)
        let backend = try MemoryDisk(contents: contents, readOnly: true)
        let pair = try await StoragePair.make(disks: [0: backend])
        #expect(pair.disk.isReadOnly && !pair.disk.supportsDiscard)
        await #expect(throws: BlockDeviceError.readOnly) { try await pair.disk.write(lba: 0, [UInt8](repeating: 1, count: 512)) }
        // Sent anyway (as a guest that ignores write protection would): DATA PROTECT.
        let cdb = SCSICommand.write(SCSIBlockCommand(linuxLBA: 0, blockCount: 1)).encode()
        let controller = try #require(pair.driver.allControllers.first)
        let (outcome, _) = try await controller.command(lun: 0, cdb: cdb, direction: .write, data: [UInt8](repeating: 1, count: 512)[...])
        #expect(outcome.sense?.senseKey == .dataProtect && outcome.sense?.additionalSense == .writeProtected)
        #expect(outcome.srbStatus.code == .error && outcome.scsiStatus == .checkCondition)
        let unchanged = try backend.read(at: 0, count: contents.count) == contents
        #expect(unchanged)
        #expect(try await pair.disk.read(lba: 10, count: 8) == Array(contents[5120..<9216]))
    }

    @Test func readsBeyondTheDiskAreRefused() async throws {
        let pair = try await StoragePair.make(disks: [0: try MemoryDisk(sectorCount: 100)])
        await #expect(throws: BlockDeviceError.self) { try await pair.disk.read(lba: 99, count: 2) }
        // The host checks too: a READ past the end, sent raw, is 5/21.
        let controller = try #require(pair.driver.allControllers.first)
        let cdb = SCSICommand.read(SCSIBlockCommand(linuxLBA: 99, blockCount: 2)).encode()
        let (outcome, _) = try await controller.command(lun: 0, cdb: cdb, direction: .read, readCount: 1024)
        #expect(outcome.sense?.senseKey == .illegalRequest && outcome.sense?.additionalSense == .lbaOutOfRange)
        #expect(outcome.transferred == 0)
    }
}

@Suite struct StorageBusTests {
    @Test func severalLUNsAreFoundAndKeptApart() async throws {
        let disks: [UInt8: any DiskBackend] = [0: try MemoryDisk(sectorCount: 100), 3: try MemoryDisk(sectorCount: 200, sectorSize: 4096)]
        let pair = try await StoragePair.make(disks: disks)
        let controller = try #require(pair.driver.allControllers.first)
        let found = controller.disks
        #expect(found.map(\.lun) == [0, 3])
        #expect(found.map(\.sectorCount) == [100, 200])
        #expect(found.map(\.sectorSize) == [512, 4096])
        try await found[1].write(lba: 5, pattern(9, bytes: 4096))
        #expect(try disks[3]!.read(at: 5 * 4096, count: 4096) == pattern(9, bytes: 4096))
        #expect(try disks[0]!.read(at: 0, count: 51200) == [UInt8](repeating: 0, count: 51200))
    }

    /// Hot plug (10 §5): the host adds and removes disks; ENUMERATE_BUS makes the guest rescan.
    @Test func disksComeAndGoWhileTheGuestRuns() async throws {
        let pair = try await StoragePair.make(disks: [0: try MemoryDisk(sectorCount: 100)])
        let controller = try #require(pair.driver.allControllers.first)
        let added = try MemoryDisk(sectorCount: 300)
        pair.device.addDisk(added, lun: 2)
        #expect(await controller.waitUntil(timeout: .seconds(10)) { $0.disks.map(\.lun) == [0, 2] })
        let disks = controller.disks
        try #require(disks.count == 2)
        try await disks[1].write(lba: 0, pattern(4, bytes: 512))
        #expect(try added.read(at: 0, count: 512) == pattern(4, bytes: 512))
        let old = disks[0]
        pair.device.removeDisk(lun: 0)
        #expect(await controller.waitUntil(timeout: .seconds(10)) { $0.disks.map(\.lun) == [2] })
        #expect(controller.disks.map(\.lun) == [2])
        #expect(old.goneReason != nil)
        await #expect(throws: BlockDeviceError.self) { try await old.read(lba: 0, count: 1) }
    }

    /// Sub-channels (10 §1): the host offers three, the guest opens them all and spreads its
    /// requests; each queue serves some.
    @Test func subChannelsCarryRequests() async throws {
        var host = StorvspDevice.Configuration()
        host.maximumSubChannels = 3
        var guest = StorvscDriver.Configuration()
        guest.subChannels = 3
        let backend = try MemoryDisk(sectorCount: 4096)
        let pair = try await StoragePair.make(disks: [0: backend], configuration: host, guest: guest)
        let controller = try #require(pair.driver.allControllers.first)
        try #require(await controller.waitUntil(timeout: .seconds(10)) { $0.queueCount == 4 })
        try #require(controller.queueCount == 4)
        for n in 0..<16 { try await pair.disk.write(lba: UInt64(n * 8), pattern(n, bytes: 4096)) }
        for n in 0..<16 { #expect(try await pair.disk.read(lba: UInt64(n * 8), count: 8) == pattern(n, bytes: 4096)) }
        let stats = pair.device.statistics
        #expect(stats.count == 4)
        #expect(stats.values.allSatisfy { $0.requests > 0 })
    }
}
