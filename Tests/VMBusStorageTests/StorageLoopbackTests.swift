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
