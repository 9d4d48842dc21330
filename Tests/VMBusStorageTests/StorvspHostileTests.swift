import Testing
import VMBusChannel
import VMBusGuest
import VMBusHost
import VMBusLoopback
import VMBusMemory
import VMBusWire

@testable import VMBusStorage

/// Two storvsp controllers, each with a memory disk holding a known pattern, and a guest that
/// opens their channels by hand and writes whatever a test wants (10 §8).
struct RawStorageHost {
    let bus: LoopbackBus
    let devices: [StorvspDevice]
    let disks: [MemoryDisk]
    let channels: [Channel]
    static let contents = pattern(77, bytes: 1 << 20)

    static func instance(_ n: Int) -> GUID { GUID(data1: 0x5700_0000 | UInt32(n), data2: 0, data3: 0, data4: 0) }

    static func make(initialise: Bool = true) async throws -> RawStorageHost {
        let bus = try LoopbackBus()
        var devices: [StorvspDevice] = []
        var disks: [MemoryDisk] = []
        for n in 0..<2 {
            let disk = try MemoryDisk(contents: Self.contents)
            let device = StorvspDevice(instance: Self.instance(n), disks: [0: disk])
            device.attach(to: bus.host)
            bus.host.register(device)
            devices.append(device)
            disks.append(disk)
        }
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        var channels: [Channel] = []
        for n in 0..<2 {
            let device = try #require(bus.guest.device(instance: Self.instance(n)))
            var options = ChannelOptions()
            options.rejectUnknownCompletions = false
            let channel = try await bus.guest.open(device.relid, pages: RingPages(each: 8), options: options)
            let reader = try channel.reader()
            // Completions reach their requests through the reader; nothing else is expected.
            Task { while await reader.next() != nil {} }
            channels.append(channel)
        }
        let host = RawStorageHost(bus: bus, devices: devices, disks: disks, channels: channels)
        if initialise {
            for channel in channels { try await host.initialise(channel) }
        }
        return host
    }

    /// Linux's set-up, by hand.
    func initialise(_ channel: Channel) async throws {
        for packet in [
            StoragePacket.request(.beginInitialization), .request(.queryProtocolVersion, body: .version(.blue, revision: 0)),
            .request(.queryProperties), .request(.endInitialization),
        ] {
            let reply = try await self.request(packet.encode(), on: channel)
            guard reply.status == .success else { throw TimedOut() }
        }
    }

    /// An in-band request and its completion, parsed (its body as an SRB's).
    func request(_ payload: [UInt8], on channel: Channel) async throws -> StoragePacket {
        guard let answer = try await within({ try await channel.request(payload[...]) }) else { throw TimedOut() }
        return try StoragePacket(parsing: answer[...], completing: .executeSRB)
    }

    /// An EXECUTE_SRB with data ranges, and the SCSI request its completion carries.
    func execute(_ request: SCSIRequest, ranges: [GpaRange], on channel: Channel) async throws -> SCSIRequest {
        let payload = StoragePacket.request(.executeSRB, body: .request(request)).encode()
        guard let answer = try await within({ try await channel.request(gpaDirect: ranges, payload: payload[...]) }) else { throw TimedOut() }
        guard case .request(let completion) = try StoragePacket(parsing: answer[...], completing: .executeSRB).body else { throw TimedOut() }
        return completion
    }

    /// The host stopped device `n`'s channel: its end closed, the fault counted and kept.
    func stopped(_ n: Int) async throws -> String? {
        let hostChannel = try #require(self.bus.host.channel(self.channels[n].relid))
        _ = try await closeReason(of: hostChannel)
        return self.devices[n].statistics[0]?.lastFault
    }

    /// Device `n` still serves: a READ of sector 0 returns the disk's bytes.
    func serves(_ n: Int) async throws -> Bool {
        let buffer = try self.bus.memory.allocate(pages: 1)
        defer { self.bus.memory.release(buffer) }
        let read = SCSIRequest.request(
            cdb: SCSICommand.read(SCSIBlockCommand(linuxLBA: 0, blockCount: 8)).encode(), direction: .read, transferLength: 4096)
        let done = try await self.execute(read, ranges: [try buffer.range()], on: self.channels[n])
        var bytes = [UInt8](repeating: 0, count: 4096)
        try self.bus.memory.memory.read(at: buffer.offset, count: 4096, into: &bytes)
        return done.srbStatus == .success && bytes == Array(Self.contents.prefix(4096))
    }

    /// Every disk still holds exactly what it started with.
    var disksUntouched: Bool { self.disks.allSatisfy { (try? $0.read(at: 0, count: Self.contents.count)) == Self.contents } }
}

func closeReason(of channel: Channel) async throws -> CloseReason {
    guard let reason = try await within({ await channel.closed() }) else { throw TimedOut() }
    return reason
}

@Suite struct StorvspHostileTests {
    /// Each breach stops the offending channel only: the other controller still serves, and
    /// nothing reached a disk.
    enum Breach: String, CaseIterable, CustomTestStringConvertible {
        case completionFromGuest, noCompletionFlag, shortPayload, setUpWithBuffer, unknownOperation, hostOnlyOperation
        case transferLongerThanBuffer, transferWithoutBuffer, twoRanges
        var testDescription: String { self.rawValue }
    }

    @Test(arguments: Breach.allCases)
    func aBreachStopsThatChannelOnly(_ breach: Breach) async throws {
        let host = try await RawStorageHost.make()
        let channel = host.channels[0]
        let buffer = try host.bus.memory.allocate(pages: 2)
        // A WRITE of 8 sectors of 0xEE: if any of it reached the disk, the disk would show it.
        try host.bus.memory.memory.write([UInt8](repeating: 0xEE, count: 8192)[...], at: buffer.offset)
        func write(length: UInt32) -> [UInt8] {
            let cdb = SCSICommand.write(SCSIBlockCommand(linuxLBA: 0, blockCount: 16)).encode()
            return StoragePacket.request(.executeSRB, body: .request(SCSIRequest.request(cdb: cdb, direction: .write, transferLength: length))).encode()
        }
        let page0 = try GpaRange(gpa: UInt64(buffer.offset), length: 4096)
        let page1 = try GpaRange(gpa: UInt64(buffer.offset + 4096), length: 4096)
        switch breach {
        case .completionFromGuest:
            try await channel.send(completion: StoragePacket.completion().encode()[...], transactionID: 9)
        case .noCompletionFlag:
            try await channel.send(inBand: StoragePacket.request(.beginInitialization).encode()[...], transactionID: 3)
        case .shortPayload:
            try await channel.send(inBand: [7, 0, 0, 0, 1, 0, 0, 0][...], transactionID: 3, completionRequested: true)
        case .setUpWithBuffer:
            // (Payloads are padded to 8 bytes, so a "short" version or count cannot be told
            // from a whole one: a payload under the 12-byte header is the short case.)
            let packet = StoragePacket.request(.queryProperties).encode()
            try await channel.send(encoded: try PacketEncoder.gpaDirect(ranges: [page0], payload: packet[...], flags: .completionRequested, transactionID: 3))
        case .unknownOperation:
            try await channel.send(inBand: StoragePacket.request(StorageOperation(rawValue: 99)).encode()[...], transactionID: 3, completionRequested: true)
        case .hostOnlyOperation:
            try await channel.send(inBand: StoragePacket.request(.enumerateBus).encode()[...], transactionID: 3, completionRequested: true)
        case .transferLongerThanBuffer:
            // 8 KiB asked, a 4 KiB buffer given.
            try await channel.send(encoded: try PacketEncoder.gpaDirect(ranges: [page0], payload: write(length: 8192)[...], flags: .completionRequested, transactionID: 3))
        case .transferWithoutBuffer:
            try await channel.send(inBand: write(length: 8192)[...], transactionID: 3, completionRequested: true)
        case .twoRanges:
            try await channel.send(encoded: try PacketEncoder.gpaDirect(ranges: [page0, page1], payload: write(length: 8192)[...], flags: .completionRequested, transactionID: 3))
        }
        let fault = try await host.stopped(0)
        #expect(fault != nil)
        #expect(host.devices[0].statistics[0]?.malformed == 1)
        #expect(try await host.serves(1))
        #expect(host.disksUntouched)
    }

    /// A data buffer outside guest memory fails the command (5/24); the channel lives on.
    @Test func aBufferOutsideGuestMemoryFailsTheCommandOnly() async throws {
        let host = try await RawStorageHost.make()
        let outside = try GpaRange(gpa: 1 << 40, length: 4096)
        let cdb = SCSICommand.read(SCSIBlockCommand(linuxLBA: 0, blockCount: 8)).encode()
        let done = try await host.execute(SCSIRequest.request(cdb: cdb, direction: .read, transferLength: 4096), ranges: [outside], on: host.channels[0])
        #expect(done.srbStatus.code == .invalidRequest && done.srbStatus.isAutosenseValid)
        #expect(done.scsiStatus == .checkCondition && done.dataTransferLength == 0)
        let sense = try FixedSenseData(parsing: done.senseData)
        #expect(sense.senseKey == .illegalRequest && sense.additionalSense == .invalidFieldInCDB)
        #expect(try await host.serves(0))
    }

    /// A WRITE whose direction says "read" must not let the disk take the guest's bytes, nor
    /// a READ let it write guest memory the guest did not offer for it.
    @Test func theDirectionFieldIsEnforced() async throws {
        let host = try await RawStorageHost.make()
        let buffer = try host.bus.memory.allocate(pages: 1)
        try host.bus.memory.memory.write([UInt8](repeating: 0xEE, count: 4096)[...], at: buffer.offset)
        let cdb = SCSICommand.write(SCSIBlockCommand(linuxLBA: 0, blockCount: 8)).encode()
        let done = try await host.execute(SCSIRequest.request(cdb: cdb, direction: .read, transferLength: 4096), ranges: [try buffer.range()], on: host.channels[0])
        #expect(done.srbStatus.code == .invalidRequest)
        #expect(host.disksUntouched)
        let read = SCSICommand.read(SCSIBlockCommand(linuxLBA: 0, blockCount: 8)).encode()
        let refused = try await host.execute(SCSIRequest.request(cdb: read, direction: .write, transferLength: 4096), ranges: [try buffer.range()], on: host.channels[0])
        #expect(refused.srbStatus.code == .invalidRequest)
        var bytes = [UInt8](repeating: 0, count: 4096)
        try host.bus.memory.memory.read(at: buffer.offset, count: 4096, into: &bytes)
        #expect(bytes == [UInt8](repeating: 0xEE, count: 4096))
    }

    /// Set-up out of order, I/O before set-up, a refused version, too many sub-channels:
    /// answered with OpenVMM's statuses, the channel open (10 §3).
    @Test func setUpMistakesAreAnsweredNotFatal() async throws {
        let host = try await RawStorageHost.make(initialise: false)
        let channel = host.channels[0]
        let cdb = SCSICommand.testUnitReady.encode()
        let early = try await host.request(StoragePacket.request(.executeSRB, body: .request(SCSIRequest.request(cdb: cdb, direction: .none, transferLength: 0))).encode(), on: channel)
        #expect(early.status == .invalidDeviceState)
        #expect(try await host.request(StoragePacket.request(.endInitialization).encode(), on: channel).status == .invalidDeviceState)
        #expect(try await host.request(StoragePacket.request(.beginInitialization).encode(), on: channel).status == .success)
        let old = try await host.request(StoragePacket.request(.queryProtocolVersion, body: .version(.threshold, revision: 0)).encode(), on: channel)
        #expect(old.status == .revisionMismatch)
        #expect(try await host.request(StoragePacket.request(.queryProtocolVersion, body: .version(.win8, revision: 0)).encode(), on: channel).status == .success)
        #expect(try await host.request(StoragePacket.request(.queryProperties).encode(), on: channel).status == .success)
        let many = try await host.request(StoragePacket.request(.createSubChannels, body: .subChannelCount(5)).encode(), on: channel)
        #expect(many.status == .invalidParameter)
        #expect(try await host.request(StoragePacket.request(.endInitialization).encode(), on: channel).status == .success)
        #expect(try await host.request(StoragePacket.request(.beginInitialization).encode(), on: channel).status == .invalidDeviceState)
        #expect(host.devices[0].isReady && host.devices[0].version == .win8)
        #expect(try await host.serves(0))
    }

    /// A pre-Win8 guest's 48-byte packets are answered with 48 bytes (10 §2.1).
    @Test func repliesEchoTheRequestSize() async throws {
        let host = try await RawStorageHost.make(initialise: false)
        let payload = StoragePacket.request(.beginInitialization).encode(size: StorageProtocol.legacyPacketSize)
        guard let answer = try await within({ try await host.channels[0].request(payload[...]) }) else { throw TimedOut() }
        #expect(answer.count == 48)
        #expect(try StoragePacket(parsing: answer[...]).operation == .completeIO)
    }
}
