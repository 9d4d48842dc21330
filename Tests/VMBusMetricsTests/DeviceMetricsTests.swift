import Testing
import VMBusHost
import VMBusLoopback
import VMBusMemory
import VMBusMetrics
import VMBusStorage
import VMBusWire

/// A device's own counters beside its channels'.
@Suite struct DeviceMetricsTests {
    @Test func aDisksQueueCountersFollowItsIO() async throws {
        let bus = try LoopbackBus()
        let device = StorvspDevice(instance: GUID(data1: 0x5C51, data2: 1, data3: 2, data4: 3), disks: [0: try MemoryDisk(sectorCount: 2048)])
        device.attach(to: bus.host)
        bus.host.register(device)
        let driver = StorvscDriver()
        bus.guest.register(driver)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        let disk = await driver.firstDisk()
        let host = bus.host
        let exporter = MetricsExporter(sources: [HostMetrics { [("1", host)] }, StorageMetrics { [("1", device)] }])

        let before = exporter.collect()
        let queue = ["1", "\(device.offer.interfaceInstance)", "0"]
        let requestsBefore = try #require(before.value(.storageRequests, queue))
        try await disk.write(lba: 8, [UInt8](repeating: 0xA5, count: 4096), fua: false)
        #expect(try await disk.read(lba: 8, count: 8) == [UInt8](repeating: 0xA5, count: 4096))

        // The queue's counters are updated as each command completes, maybe just after its
        // answer went out.
        var after = exporter.collect()
        #expect(await pollUntil(timeout: .seconds(10)) {
            after = exporter.collect()
            return after.value(.storageRequests, queue) == requestsBefore + 2
        })
        #expect(after.value(.storageOperations, queue + ["write"]) == 1)
        #expect((after.value(.storageOperations, queue + ["read"]) ?? 0) >= 1)
        #expect(after.value(.storageBytes, queue + ["write"]) == 4096)
        #expect(after.value(.storageMalformed, queue) == 0)
        // The controller's channel is there too, by its class name.
        let scsi = after.samples.filter { $0.family == .channelPackets && $0.labelValues[2] == "scsi" && $0.labelValues[5] == "in" }
        #expect(scsi.count == 1 && scsi[0].value >= 2)

        let text = String(decoding: exporter.scrape(), as: UTF8.self)
        #expect(text.contains("# TYPE vmbus_storage_operations_total counter"))
        #expect(text.contains(#"vmbus_storage_bytes_total{guest="1",instance=""# + "\(device.offer.interfaceInstance)" + #"",queue="0",direction="write"} 4096"#), "\(text)")
    }
}
