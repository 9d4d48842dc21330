import Foundation
import Testing
import VMBusChannel
import VMBusHost
import VMBusMemory
import VMBusNetwork
import VMBusUio
import VMBusWire

/// A host NIC exported as `uio_hv_generic` would show it (`vmbus host --uio-export …
/// --uio-device net`), with an in-memory wire the test holds.
struct ExportedNIC {
    let directory: String
    let export: UioExport
    let device: NetvspDevice
    let wire: MemoryNetworkPort
    let uio: UioDevice
    /// Frames the host passed to its wire.
    let frames = Inbox<[UInt8]>()

    /// Small buffers (the defaults are uio_hv_generic's 31 + 16 MiB): 2 MiB to receive, 64
    /// send sections.
    static let buffers = UioNICBuffers(receiveBytes: 2 << 20, sendBytes: 64 * 6144)

    init() throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-uionet-\(UInt32.random(in: 0...UInt32.max))").path
        self.export = try UioExport(directory: self.directory)
        let (hostEnd, wire) = MemoryNetworkPort.pair(macAddresses: (MACAddress("00:15:5d:12:34:56")!, .hyperV(seed: 9)))
        self.wire = wire
        // With a monitor id, as uio_hv_generic's NIC has on Hyper-V: the program signals through it.
        self.device = NetvspDevice(instance: GUID(data1: 0x4E1C_0100, data2: 0x5EED, data3: 0, data4: 0), backend: hostEnd, wantsMonitor: true)
        let bus = try self.export.export(self.device, relid: 5, index: 0, ringSize: 256 << 10, buffers: Self.buffers)
        self.device.attach(to: bus)
        self.uio = try UioDevice.find(root: self.export.sysfsRoot, classID: DeviceClass.network.classID)
        let frames = self.frames
        Task {
            for await frame in wire.frames() { frames.put(frame) }
            frames.end()
        }
    }

    func finish() {
        self.export.stop()
        try? FileManager.default.removeItem(atPath: self.directory)
    }
}

/// A uio program that writes every NVSP message itself (as DPDK's PMD does), over the node.
final class RawUioProgram: Sendable {
    let uio: UioChannel
    let inbox = Inbox<ChannelPacket>()

    init(_ device: UioDevice) throws {
        var options = ChannelOptions()
        options.rejectUnknownCompletions = false
        self.uio = try UioChannel(device, options: options)
        let reader = try self.uio.channel.reader()
        Task { [inbox] in
            while let packet = await reader.next() { inbox.put(packet) }
            inbox.end()
        }
    }

    func request(_ message: NVSPMessage) async throws -> NVSPMessage {
        try await self.request(payload: message.encode(), ranges: [])
    }

    /// A request, GPA-direct when `ranges` are given; the host's answer.
    func request(payload: [UInt8], ranges: [GpaRange]) async throws -> NVSPMessage {
        let channel = self.uio.channel
        let answer = try await within(seconds: 60) {
            ranges.isEmpty ? try await channel.request(payload[...]) : try await channel.request(gpaDirect: ranges, payload: payload[...])
        }
        guard let answer else { throw TimedOut() }
        return try NVSPMessage(parsing: answer[...])
    }

    /// INIT 6.1, NDIS_CONFIG, NDIS_VER and both buffers by the handles the maps are named with.
    func setUp() async throws {
        guard case .initializeComplete(_, _, .success) = try await self.request(.initialize(minimum: .v61, maximum: .v61)) else {
            throw TimedOut()
        }
        let channel = self.uio.channel
        try await channel.send(inBand: NVSPMessage.ndisConfig(mtu: 1514, capabilities: .ieee8021q).encode()[...], transactionID: NVSP.noCompletionID)
        try await channel.send(inBand: NVSPMessage.ndisVersion(major: 6, minor: 30).encode()[...], transactionID: NVSP.noCompletionID)
        let receive = try self.uio.bufferMap("recv")
        let send = try self.uio.bufferMap("send")
        guard case .receiveBufferComplete(.success, _) = try await self.request(.receiveBuffer(gpadl: receive.gpadl, id: NVSP.receiveBufferID)),
            case .sendBufferComplete(.success, _) = try await self.request(.sendBuffer(gpadl: send.gpadl, id: NVSP.sendBufferID))
        else { throw TimedOut() }
    }

    static let rndisData = NVSPMessage.rndisPacket(channelType: NVSP.dataChannel, sectionIndex: NVSP.noSection, sectionBytes: 0).encode()
}

@Suite struct NetworkUioTests {
    @Test func theNICExportLooksLikeUioHvGeneric() throws {
        let nic = try ExportedNIC()
        defer { nic.finish() }
        let path = nic.uio.sysfs.path
        let text = { (name: String) in (try? String(contentsOfFile: path + "/" + name, encoding: .utf8)) ?? "" }
        #expect(text("class_id") == "{\(DeviceClass.network.classID)}\n")
        #expect(text("id") == "5\n" && text("monitor_id") == "5\n" && text("channels/5/monitor_id") == "5\n")
        let uio = try #require(nic.uio.sysfs.uio)
        let names = (0..<5).map { text("uio/\(uio)/maps/map\($0)/name") }
        #expect(names == ["txrx_rings\n", "int_page\n", "monitor_page\n", "recv:\(0xE1E10 + 10)\n", "send:\(0xE1E10 + 11)\n"])
        let sizes = (0..<5).map { text("uio/\(uio)/maps/map\($0)/size") }
        #expect(sizes == ["0x80000\n", "0x1000\n", "0x1000\n", "0x200000\n", "0x60000\n"])
        // Each map is a file the preload library maps for mmap(/dev/uio0, K × 4096).
        #expect(FileManager.default.fileExists(atPath: nic.export.directory + "/dev/uio0.map0"))
        for map in 1..<5 {
            let attributes = try FileManager.default.attributesOfItem(atPath: nic.export.directory + "/dev/uio0.map\(map)")
            #expect((attributes[.size] as? Int) == [0x80000, 0x1000, 0x1000, 0x200000, 0x60000][map])
        }
    }

    /// Our netvsc, on the uio substrate, against the exported netvsp: bring-up on the export's
    /// buffers and handles, then frames both ways, byte for byte, more than the receive
    /// buffer has slots (so completions recycle them). The guest signals only through the
    /// monitor page, which the export watches.
    @Test func ourNetvscOverUioMovesFramesBothWays() async throws {
        let nic = try ExportedNIC()
        defer { nic.finish() }
        let (driver, ports) = NetvscDriver.inMemory()
        let uio = nic.uio
        let guest = try #require(try await within(seconds: 90) { try await driver.bringUp(uio: uio) })
        #expect(guest.nic.version == .v61 && guest.nic.macAddress == MACAddress("00:15:5d:12:34:56"))
        #expect(nic.device.isReady)
        let system = try #require(ports.first)
        let toGuest = Inbox<[UInt8]>()
        Task {
            for await frame in system.frames() { toGuest.put(frame) }
            toGuest.end()
        }
        let slots = nic.device.freeReceiveSlots
        let sizes = [14, 60, 128, 1000, 1514]
        let round = 200
        let rounds = slots / round + 2
        for r in 0..<rounds {
            let sent = (0..<round).map { testFrame(r * round + $0, length: sizes[$0 % sizes.count]) }
            // A NIC drops what it has no room for, as a wire does: each burst fits. The host
            // hears of completions only through the monitor page, so wait for them to be back.
            #expect(await nic.device.waitForSlotsReturned())
            for frame in sent { nic.wire.send(frame[...]) }
            var got: [[UInt8]] = []
            for _ in 0..<round { got.append(try await toGuest.take()) }
            #expect(got == sent, "host → guest, round \(r)")
            for chunk in stride(from: 0, to: round, by: 32) {
                #expect(await guest.nic.waitForSendsCompleted())
                for frame in sent[chunk..<min(round, chunk + 32)] { system.send(frame[...]) }
            }
            got = []
            for _ in 0..<round { got.append(try await nic.frames.take()) }
            #expect(got == sent, "guest → host, round \(r)")
        }
        #expect(UInt64(round * rounds) > UInt64(slots))
        #expect(nic.device.statistics[0]?.malformed == 0)
        await guest.close()
    }

    /// GPA-direct pages name the program's own addresses: ones it has not mapped fail the
    /// packet (completed with a failure, counted), ones it has are read from its memory.
    @Test func gpaDirectPagesAreReadFromTheProgramsMemory() async throws {
        let nic = try ExportedNIC()
        defer { nic.finish() }
        let program = try RawUioProgram(nic.uio)
        defer { program.uio.close() }
        try await program.setUp()
        let page = UInt64(MappedMemory.pageSize)
        // Page 0, an address no pread reaches, one past user space, and one never mapped.
        for pfn in [0, UInt64.max >> 12, (UInt64(1) << 47) / page, 1] {
            let range = try GpaRange(byteCount: 104, byteOffset: 0, pfns: [pfn])
            let answer = try await program.request(payload: RawUioProgram.rndisData, ranges: [range])
            #expect(answer == .rndisPacketComplete(status: .failure), "pfn \(pfn)")
        }
        #expect(nic.device.statistics[0]?.malformed == 4)
        // A frame in this process's own memory, straddling a page boundary.
        let memory = try MappedMemory.anonymous(size: 4 * MappedMemory.pageSize)
        let frame = flowFrame(flow: 2, n: 7, length: 1000)
        let message = rndisPacket(frame)
        let start = MappedMemory.pageSize - 100
        try memory.write(message[...], at: start)
        let first = memory.processAddress / page
        let range = try GpaRange(byteCount: UInt32(message.count), byteOffset: UInt32(start), pfns: [first, first + 1])
        #expect(try await program.request(payload: RawUioProgram.rndisData, ranges: [range]) == .rndisPacketComplete(status: .success))
        #expect(try await nic.frames.take() == frame)
    }

    /// Bits in the monitor page that belong to no channel of the device are cleared and
    /// ignored; the device's own bit still works (every request here signals through it).
    @Test func monitorBitsOfOtherChannelsAreIgnored() async throws {
        let nic = try ExportedNIC()
        defer { nic.finish() }
        let program = try RawUioProgram(nic.uio)
        defer { program.uio.close() }
        let monitor = try MappedMemory.file(path: nic.export.directory + "/dev/uio0.map2", size: MonitorPage.size)
        for id in 0..<UInt8(MonitorPage.monitorIDCount) where id != 5 {
            try monitor.orUInt32(MonitorPage.pendingBit(monitorID: id), at: MonitorPage.pendingOffset(monitorID: id))
        }
        // Garbage elsewhere in the page (trigger state, latencies) means nothing either.
        try monitor.storeUInt32(0xFFFF_FFFF, at: MonitorPage.triggerStateOffset)
        try monitor.write([UInt8](repeating: 0xA5, count: 1024)[...], at: 2048)
        try await program.setUp()
        #expect(nic.device.version == .v61)
        // And data still flows: a frame in send section 3.
        let send = try program.uio.buffer("send")
        let frame = flowFrame(flow: 4, n: 2)
        let message = rndisPacket(frame)
        try send.memory.write(message[...], at: 3 * 6144)
        let answer = try await program.request(.rndisPacket(channelType: NVSP.dataChannel, sectionIndex: 3, sectionBytes: UInt32(message.count)))
        #expect(answer == .rndisPacketComplete(status: .success))
        #expect(try await nic.frames.take() == frame)
    }

    /// A program that connects, sets up and goes away leaves nothing behind: the next one
    /// brings the NIC up again from scratch on the same buffers.
    @Test func aSecondProgramBringsTheNICUpAgain() async throws {
        let nic = try ExportedNIC()
        defer { nic.finish() }
        let first = try RawUioProgram(nic.uio)
        try await first.setUp()
        first.uio.close()
        let (driver, ports) = NetvscDriver.inMemory()
        let uio = nic.uio
        let guest = try #require(try await within(seconds: 90) { try await driver.bringUp(uio: uio) })
        let system = try #require(ports.first)
        let frame = flowFrame(flow: 1, n: 1)
        system.send(frame[...])
        #expect(try await nic.frames.take() == frame)
        await guest.close()
    }

    /// A program opens the node again while it holds it (DPDK opens it once per map): the
    /// open returns at once and shares the channel; closing it leaves the channel working.
    @Test func theHolderMayOpenTheNodeAgain() async throws {
        let nic = try ExportedNIC()
        defer { nic.finish() }
        let program = try RawUioProgram(nic.uio)
        defer { program.uio.close() }
        let path = nic.uio.nodePath
        let again = try await within(seconds: 60) {
            try await withCheckedThrowingContinuation { (done: CheckedContinuation<UioNotifier, any Error>) in
                // open() blocks until the export answers: on a thread of its own, not the pool's.
                Thread { done.resume(with: Result { try UioNotifier(path: path) }) }.start()
            }
        }
        let second = try #require(again, "a second open by the holder must not wait for the first to close")
        second.shutdown()
        try await program.setUp()
        #expect(nic.device.version == .v61)
    }
}
