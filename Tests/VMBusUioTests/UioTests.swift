import Foundation
import Testing
import VMBusChannel
import VMBusDevices
import VMBusHost
import VMBusMemory
import VMBusUio
import VMBusWire

/// A fresh directory under the temporary directory.
func scratchDirectory(_ name: String) -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-\(name)-\(UInt32.random(in: 0...UInt32.max))").path
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// An exported fcopy device and a guest fcopy service on its uio channel, as the daemon runs.
struct FcopyOverUio {
    let directory: String
    let export: UioExport
    let host: FileCopyHost
    let uio: UioChannel
    let served: Task<CloseReason, Never>
    let root: String

    init() throws {
        self.directory = scratchDirectory("uio")
        self.root = self.directory + "/guest-files"
        try FileManager.default.createDirectory(atPath: self.root, withIntermediateDirectories: true)
        self.export = try UioExport(directory: self.directory + "/export")
        self.host = FileCopyHost(instance: WellKnownInstance.fileCopy)
        try self.export.export(self.host.device, relid: 7, index: 0, ringSize: 16384)
        let device = try UioDevice.find(root: self.export.sysfsRoot, instance: WellKnownInstance.fileCopy)
        self.uio = try UioChannel(device)
        let driver = ICGuestDriver(FileCopyGuest(root: self.root))
        let channel = self.uio.channel
        self.served = Task { await driver.serve(channel) }
    }

    /// Waits until the host side is open and negotiated (the export opens it on connect).
    /// The bounds are safety nets only: with the whole suite on two cores the daemon's answer
    /// can come after the device's own 10 s negotiation timeout, and a late answer still
    /// completes the negotiation (what Linux's kernel allows a daemon that starts late).
    func ready() async throws {
        #expect(await self.host.device.waitForOpen(timeout: .seconds(90)))
        #expect(await self.host.device.waitForNegotiation(timeout: .seconds(90)))
        _ = try await self.host.device.ready()
    }

    func finish() {
        self.uio.close()
        self.export.stop()
        try? FileManager.default.removeItem(atPath: self.directory)
    }
}

@Suite struct UioTests {
    @Test func theExportLooksLikeAUioDeviceInSysfs() throws {
        let pair = try FcopyOverUio()
        defer { pair.finish() }
        let devices = VMBusSysfs.devices(root: pair.export.sysfsRoot)
        let device = try #require(devices.first)
        #expect(devices.count == 1)
        #expect(device.classID == DeviceClass.fileCopy.classID && device.instance == WellKnownInstance.fileCopy)
        #expect(device.relid == 7 && device.driver == "uio_hv_generic" && device.uio == "uio0")
        #expect(device.ringMapBytes == 32768)
        #expect(device.channels.map(\.relid) == [7] && device.channels.first?.ringBytes == 32768)
        #expect(pair.uio.channel.ringSizes == (16384, 16384))
    }

    @Test func aLargeFileCopiesByteExactOverUio() async throws {
        let pair = try FcopyOverUio()
        defer { pair.finish() }
        try await pair.ready()
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let data = (0..<(3 << 20) + 123).map { _ in
            state = state &* 6364136223846793005 &+ 1
            return UInt8(truncatingIfNeeded: state >> 40)
        }
        try await pair.host.copy(data, name: "big.bin", directory: "in", flags: [.createPath])
        let written = try #require(FileManager.default.contents(atPath: pair.root + "/in/big.bin"))
        #expect([UInt8](written) == data)
    }

    @Test func cancelAndErrorsComeBackAsTheDaemonsStatuses() async throws {
        let pair = try FcopyOverUio()
        defer { pair.finish() }
        try await pair.ready()
        let data = [UInt8](repeating: 7, count: 100_000)
        try await pair.host.copy(data, name: "half.bin", directory: "", cancelAfter: 50_000)
        #expect(!FileManager.default.fileExists(atPath: pair.root + "/half.bin"))
        try await pair.host.copy([1, 2, 3], name: "once.txt", directory: "")
        await #expect(throws: FileCopyHost.CopyError.refused(step: "start", .alreadyExists)) {
            try await pair.host.copy([4], name: "once.txt", directory: "")
        }
        await #expect(throws: FileCopyHost.CopyError.self) {
            try await pair.host.copy([4], name: "x.txt", directory: "no/such/dir")
        }
    }

    @Test func aRescindEndsTheServiceAndTheDeviceDisappears() async throws {
        let pair = try FcopyOverUio()
        defer { pair.finish() }
        try await pair.ready()
        try await pair.host.copy([1], name: "before.txt", directory: "")
        pair.export.rescind(relid: 7)
        #expect(await pair.served.value == .rescinded)
        #expect(VMBusSysfs.devices(root: pair.export.sysfsRoot).isEmpty)
        #expect(throws: UioError.self) { try UioDevice.find(root: pair.export.sysfsRoot, instance: WellKnownInstance.fileCopy) }
    }

    @Test func missingUnboundAndNonHyperVAreClearErrors() throws {
        let directory = scratchDirectory("sysfs")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(throws: UioError.noVMBus(root: directory)) { try UioDevice.find(root: directory, instance: WellKnownInstance.fileCopy) }
        // A recorded fcopy device still bound to nothing.
        let device = directory + "/bus/vmbus/devices/\(WellKnownInstance.fileCopy)"
        try FileManager.default.createDirectory(atPath: device, withIntermediateDirectories: true)
        try Data("{\(DeviceClass.fileCopy.classID)}\n".utf8).write(to: URL(fileURLWithPath: device + "/class_id"))
        try Data("{\(WellKnownInstance.fileCopy)}\n".utf8).write(to: URL(fileURLWithPath: device + "/device_id"))
        do {
            _ = try UioDevice.find(root: directory, instance: WellKnownInstance.fileCopy)
            Issue.record("an unbound device was accepted")
        } catch {
            guard case .notBoundToUio(_, let driver, let steps) = error else { throw error }
            #expect(driver == nil)
            #expect(steps.contains("echo \(DeviceClass.fileCopy.classID) > \(directory)/bus/vmbus/drivers/uio_hv_generic/new_id"))
            #expect(error.description.contains("not bound to any driver"))
        }
        #expect(throws: UioError.notFound("with instance \(WellKnownInstance.kvp)")) {
            try UioDevice.find(root: directory, instance: WellKnownInstance.kvp)
        }
    }

    @Test func subChannelsOpenThroughSysfsAndCarryTraffic() async throws {
        let directory = scratchDirectory("uio-sub")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let export = try UioExport(directory: directory)
        defer { export.stop() }
        let echo = EchoDevice(instance: GUID(data1: 0xEC40_0100, data2: 0x5EED, data3: 0, data4: 0), maximumSubChannels: 0)
        try export.export(echo, relid: 3, index: 2, ringSize: 32768, subChannels: 2)
        let device = try UioDevice.find(root: export.sysfsRoot, classID: Echo.classID)
        #expect(device.nodePath == directory + "/dev/uio2")
        #expect(device.sysfs.channels.map(\.relid) == [3, 4, 5])
        #expect(device.sysfs.channels.map(\.subChannelIndex) == [0, 1, 2])
        let uio = try UioChannel(device)
        defer { uio.close() }
        // Readers route the echo device's completions to the requests.
        var channels = [uio.channel]
        for relid: UInt32 in [4, 5] { channels.append(try uio.openSubChannel(relid)) }
        let readers = channels.map { channel in Task { _ = try? await channel.receive { _ in } } }
        defer { for reader in readers { reader.cancel() } }
        for (n, channel) in channels.enumerated() {
            for round in 0..<50 {
                let payload = [UInt8](repeating: UInt8(n * 50 + round), count: 100 + round * 37)
                // The echo answers the packet's payload, padding to 8 bytes included.
                let answer = try await channel.request(payload[...])
                #expect(Array(answer.prefix(payload.count)) == payload && answer.count == (payload.count + 7) / 8 * 8)
            }
        }
        #expect(throws: UioError.self) { try uio.openSubChannel(3) }
        #expect(throws: UioError.self) { try uio.buffer("recv") }
    }

    /// The host is hostile: a read index outside the ring in the rings the daemon writes. The
    /// channel fails with a typed reason, the service ends, the process lives on.
    @Test func aCorruptRingFromTheHostEndsTheChannelNotTheProcess() async throws {
        let pair = try FcopyOverUio()
        defer { pair.finish() }
        try await pair.ready()
        let ringPath = try #require(pair.uio.device.sysfs.channels.first?.ringPath)
        let file = try RingPairFile.open(path: ringPath)
        try file.ring(.outbound).store(.readIndex, 0xFFFF_FFF0, ordering: .releasing)
        // The next answer the daemon writes meets the bogus index.
        let copy = Task { try await pair.host.copy([1, 2, 3], name: "never.txt", directory: "") }
        let reason = await pair.served.value
        guard case .ringCorrupted = reason else {
            Issue.record("expected a ring corruption, got \(reason)")
            return
        }
        #expect(pair.uio.channel.closeReason == reason)
        pair.export.stop()
        _ = await copy.result
    }
}
