import Testing
import VMBusChannel
import VMBusGuest
import VMBusHost
import VMBusLoopback
import VMBusMemory
import VMBusNetwork
import VMBusWire

/// A raw guest writes what Linux never would at a real netvsp (11 §8): the host stops only the
/// channel that broke the protocol, fails (status 2) and counts a malformed data packet and
/// goes on, and never disturbs its other devices.
@Suite struct NetvspHostileTests {
    /// Device 0 stopped its channel, counted it, and device 1 still serves.
    func expectStopped(_ host: HostUnderTest, _ raw: RawNetChannel, queue: UInt16 = 0) async throws {
        let reason = try await closeReason(of: host.hostChannel(raw))
        #expect(reason == .closedLocally)
        #expect((host.devices[0].statistics[queue]?.malformed ?? 0) >= 1)
        #expect(host.devices[0].statistics[queue]?.lastFault != nil, "the reason is kept for net stat")
        #expect(try await host.stillServes(1))
    }

    /// A valid frame sent after a refused one reaches the wire byte-exact.
    func expectServing(_ host: HostUnderTest, _ raw: RawNetChannel, _ buffers: RawNetBuffers) async throws {
        let frame = flowFrame(flow: 1, n: 99)
        #expect(try await buffers.send(rndisPacket(frame), section: 5, on: raw) == .success)
        #expect(try await host.frames[0].take() == frame)
    }

    @Test(arguments: [
        NVSPMessage.ndisVersion(major: 6, minor: 30), .ndisConfig(mtu: 1514, capabilities: []), .receiveBuffer(gpadl: 1, id: 0xCAFE),
        .sendBuffer(gpadl: 1, id: 0), .rndisPacket(channelType: 0, sectionIndex: 0, sectionBytes: 60), .subchannel(operationOrStatus: 1, count: 1),
    ])
    func messagesBeforeInitStopTheChannel(_ message: NVSPMessage) async throws {
        let host = try await HostUnderTest.make()
        let raw = host.channel(0)
        try await raw.channel.send(inBand: message.encode()[...], transactionID: 7, completionRequested: true)
        try await self.expectStopped(host, raw)
        #expect(host.devices[0].version == nil)
    }

    @Test func setUpOnASubChannelStopsThatSubChannelOnly() async throws {
        let host = try await HostUnderTest.make(queues: 2)
        let raw = host.channel(0)
        let buffers = try await RawNetBuffers.setUp(raw)
        #expect(try await raw.request(.subchannel(operationOrStatus: 1, count: 1)) == .subchannel(operationOrStatus: 1, count: 1))
        let sub = try await host.guest.channels.wait { $0.sub[netInstance(0)]?.first }
        try await sub.channel.send(inBand: NVSPMessage.initialize(minimum: .v61, maximum: .v61).encode()[...], transactionID: 3, completionRequested: true)
        #expect(try await closeReason(of: host.hostChannel(sub)) == .closedLocally)
        #expect(host.devices[0].statistics[1]?.malformed == 1)
        // The primary goes on.
        #expect(host.hostChannel(raw).closeReason == nil)
        try await self.expectServing(host, raw, buffers)
    }

    @Test func rndisControlOnASubChannelStopsIt() async throws {
        let host = try await HostUnderTest.make(queues: 2)
        let raw = host.channel(0)
        let buffers = try await RawNetBuffers.setUp(raw)
        _ = try await raw.request(.subchannel(operationOrStatus: 1, count: 1))
        let sub = try await host.guest.channels.wait { $0.sub[netInstance(0)]?.first }
        try buffers.write(RNDISMessage.keepalive(requestID: 1).encode(), section: 2)
        let message = NVSPMessage.rndisPacket(channelType: NVSP.controlChannel, sectionIndex: 2, sectionBytes: 12)
        try await sub.channel.send(inBand: message.encode()[...], transactionID: 3, completionRequested: true)
        #expect(try await closeReason(of: host.hostChannel(sub)) == .closedLocally)
        try await self.expectServing(host, raw, buffers)
    }

    /// Section index or byte count outside the send buffer (64 pages: 42 sections of 6144 and
    /// 4096 bytes of a 43rd).
    @Test(arguments: [(UInt32(43), UInt32(60)), (42, 4097), (0, 6145), (0, 0), (0xFFFF_FFFE, 60), (0x8000_0000, 6144)])
    func sectionsOutsideTheSendBufferStopTheChannel(_ index: UInt32, _ bytes: UInt32) async throws {
        let host = try await HostUnderTest.make()
        let raw = host.channel(0)
        _ = try await RawNetBuffers.setUp(raw)
        let message = NVSPMessage.rndisPacket(channelType: NVSP.dataChannel, sectionIndex: index, sectionBytes: bytes)
        try await raw.channel.send(inBand: message.encode()[...], transactionID: 3, completionRequested: true)
        try await self.expectStopped(host, raw)
    }

    @Test func aSectionWithoutASendBufferStopsTheChannel() async throws {
        let host = try await HostUnderTest.make()
        let raw = host.channel(0)
        _ = try await RawNetBuffers.setUp(raw, sendBuffer: false)
        let message = NVSPMessage.rndisPacket(channelType: NVSP.dataChannel, sectionIndex: 0, sectionBytes: 60)
        try await raw.channel.send(inBand: message.encode()[...], transactionID: 3, completionRequested: true)
        try await self.expectStopped(host, raw)
    }

    @Test func gpaDirectRangesOutsideGuestMemoryFailThePacket() async throws {
        let host = try await HostUnderTest.make()
        let raw = host.channel(0)
        let buffers = try await RawNetBuffers.setUp(raw)
        let payload = NVSPMessage.rndisPacket(channelType: NVSP.dataChannel, sectionIndex: NVSP.noSection, sectionBytes: 0).encode()
        // 64 MiB of guest memory: PFN 0x4000 is the first page past it; the last one ends past it too.
        for range in [try GpaRange(byteCount: 104, byteOffset: 0, pfns: [0x4000]), try GpaRange(byteCount: 8000, byteOffset: 0, pfns: [0x3FFF, 0x4000]),
                      try GpaRange(byteCount: 104, byteOffset: 0, pfns: [UInt64.max >> 12])] {
            let answer = try await within { try await raw.channel.request(gpaDirect: [range], payload: payload[...]) }
            #expect(try answer.map { raw.rndisStatus(try NVSPMessage(parsing: $0[...])) } == .failure)
        }
        #expect(host.devices[0].statistics[0]?.malformed == 3)
        try await self.expectServing(host, raw, buffers)
    }

    static let frame = flowFrame(flow: 3, n: 1, length: 60)

    /// PACKETs that lie: each completed with status 2 and counted, nothing reaches the wire.
    @Test(arguments: [
        ("data offset below 36", rndisPacket(frame, patch: [(8, 20)])),
        ("data offset past msg_len", rndisPacket(frame, patch: [(8, 0xFFFF_FFF0)])),
        ("data length past msg_len", rndisPacket(frame, patch: [(12, 61)])),
        ("data length huge", rndisPacket(frame, patch: [(12, 0xFFFF_FFFF)])),
        ("length 0", rndisPacket(frame, patch: [(12, 0)])),
        ("msg_len past the section bytes", rndisPacket(frame, patch: [(4, 200)])),
        ("msg_len below the header", rndisPacket(frame, patch: [(4, 12)])),
        ("OOB length", rndisPacket(frame, patch: [(20, 8)])),
        ("OOB count", rndisPacket(frame, patch: [(24, 1)])),
        ("VC handle", rndisPacket(frame, patch: [(36, 1)])),
        ("PPI area past msg_len", rndisPacket(frame, patch: [(32, 200)])),
        ("PPI size 0", rndisPacket(frame, ppis: ppi(size: 0, offset: 12))),
        ("PPI size past the area", rndisPacket(frame, ppis: ppi(size: 32, offset: 12))),
        ("PPI data offset past its size", rndisPacket(frame, ppis: ppi(size: 16, offset: 20))),
        ("PPI shorter than its header", rndisPacket(frame, ppis: ppi(size: 8, offset: 12))),
        ("second message not a PACKET", rndisPacket(frame) + RNDISMessage.keepalive(requestID: 1).encode()),
        ("second message truncated", rndisPacket(frame) + [1, 0, 0, 0, 200, 0, 0, 0]),
    ])
    func malformedPacketsFailAndTheChannelGoesOn(_ what: String, _ message: [UInt8]) async throws {
        let host = try await HostUnderTest.make(devices: 1)
        let raw = host.channel(0)
        let buffers = try await RawNetBuffers.setUp(raw)
        #expect(try await buffers.send(message, section: 1, on: raw) == .failure, "\(what)")
        #expect(host.devices[0].statistics[0]?.malformed == 1, "\(what)")
        // Still serving: the next good frame is the first (and only) thing on the wire, unless
        // the bad one was a batch whose first frame was good.
        let frame = flowFrame(flow: 1, n: 99)
        #expect(try await buffers.send(rndisPacket(frame), section: 5, on: raw) == .success)
        var first = try await host.frames[0].take()
        if what.hasPrefix("second message") {
            #expect(first == Self.frame)
            first = try await host.frames[0].take()
        }
        #expect(first == frame, "\(what)")
        #expect(host.hostChannel(raw).closeReason == nil)
    }

    @Test func controlMessagesThatAreMalformedFail() async throws {
        let host = try await HostUnderTest.make(devices: 1)
        let raw = host.channel(0)
        let buffers = try await RawNetBuffers.setUp(raw)
        let query = RNDISMessage.query(requestID: 5, oid: .maximumFrameSize, information: [1, 2, 3, 4]).encode()
        var badOffset = query
        badOffset[20] = 0xF0  // information offset far past msg_len
        var shortLength = query
        shortLength[4] = 4  // msg_len < 8
        var longLength = query
        longLength[4] = 0xFF  // msg_len past the bytes sent
        for message in [badOffset, shortLength, longLength, [2, 0, 0, 0]] {
            #expect(try await buffers.send(message, section: 1, channelType: NVSP.controlChannel, on: raw) == .failure)
        }
        // No reply was lent for any of them; a good query is answered.
        #expect(host.devices[0].freeReceiveSlots > 0)
        #expect(try await buffers.send(query, section: 1, channelType: NVSP.controlChannel, on: raw) == .success)
        guard case .queryComplete(5, .success, let data) = try await buffers.receiveControl(on: raw) else {
            Issue.record("no answer to the good query")
            return
        }
        #expect(data == [0xDC, 0x05, 0, 0])
        #expect(raw.inbox.pending.isEmpty)
        try await self.expectServing(host, raw, buffers)
    }

    /// Control messages only a host sends: refused with status 2, no answer, the channel goes on.
    @Test(arguments: [
        RNDISMessage.initializeComplete(RNDISInitializeComplete(requestID: 1)), .queryComplete(requestID: 1, status: .success, information: [1]),
        .setComplete(requestID: 1, status: .success), .keepaliveComplete(requestID: 1, status: .success),
        .resetComplete(status: .success, addressingReset: 0), .packet, .other(RNDISMessageType(rawValue: 9), body: [0, 0, 0, 0]),
    ])
    func hostOnlyControlMessagesFail(_ message: RNDISMessage) async throws {
        let host = try await HostUnderTest.make(devices: 1)
        let raw = host.channel(0)
        let buffers = try await RawNetBuffers.setUp(raw)
        #expect(try await buffers.send(message.encode(), section: 1, channelType: NVSP.controlChannel, on: raw) == .failure)
        #expect(raw.inbox.pending.isEmpty)
        try await self.expectServing(host, raw, buffers)
    }

    /// RESET, a guest's INDICATE_STATUS and a second INITIALIZE break RNDIS (11 §5.1): fatal.
    @Test(arguments: [RNDISMessage.reset, .indicateStatus(status: .mediaConnect, buffer: []), .initialize(requestID: 9, major: 1, minor: 0, maximumTransferSize: 0x4000)])
    func controlMessagesAGuestMustNotSendStopTheChannel(_ message: RNDISMessage) async throws {
        let host = try await HostUnderTest.make()
        let raw = host.channel(0)
        let buffers = try await RawNetBuffers.setUp(raw)
        let initialize = RNDISMessage.initialize(requestID: 1, major: 1, minor: 0, maximumTransferSize: 0x4000).encode()
        #expect(try await buffers.send(initialize, section: 0, channelType: NVSP.controlChannel, on: raw) == .success)
        guard case .initializeComplete = try await buffers.receiveControl(on: raw) else { throw TimedOut() }
        try buffers.write(message.encode(), section: 1)
        let nvsp = NVSPMessage.rndisPacket(channelType: NVSP.controlChannel, sectionIndex: 1, sectionBytes: UInt32(message.encode().count))
        try await raw.channel.send(inBand: nvsp.encode()[...], transactionID: 3, completionRequested: true)
        try await self.expectStopped(host, raw)
    }

    @Test(arguments: [UInt64(15), 16, 17, 5000, UInt64.max])
    func aCompletionForASlotNeverLentStopsTheChannel(_ id: UInt64) async throws {
        let host = try await HostUnderTest.make()
        let raw = host.channel(0)
        _ = try await RawNetBuffers.setUp(raw)
        try await raw.channel.send(completion: NVSPMessage.rndisPacketComplete(status: .success).encode(size: 8)[...], transactionID: id)
        try await self.expectStopped(host, raw)
    }

    @Test func aSlotCompletedTwiceStopsTheChannel() async throws {
        let host = try await HostUnderTest.make()
        let raw = host.channel(0)
        let buffers = try await RawNetBuffers.setUp(raw)
        let keepalive = RNDISMessage.keepalive(requestID: 4).encode()
        #expect(try await buffers.send(keepalive, section: 0, channelType: NVSP.controlChannel, on: raw) == .success)
        let packet = try await raw.inbox.take()
        let id = packet.descriptor.transactionID
        let completion = NVSPMessage.rndisPacketComplete(status: .success).encode(size: 8)
        try await raw.channel.send(completion: completion[...], transactionID: id)
        // The first completion freed the slot: a keepalive is answered again.
        #expect(try await buffers.send(keepalive, section: 0, channelType: NVSP.controlChannel, on: raw) == .success)
        guard case .keepaliveComplete(4, .success) = try await buffers.receiveControl(on: raw) else { throw TimedOut() }
        try await raw.channel.send(completion: completion[...], transactionID: id)
        try await self.expectStopped(host, raw)
    }

    @Test func aCompletionOfAnotherTypeStopsTheChannel() async throws {
        let host = try await HostUnderTest.make()
        let raw = host.channel(0)
        let buffers = try await RawNetBuffers.setUp(raw)
        #expect(try await buffers.send(RNDISMessage.keepalive(requestID: 4).encode(), section: 0, channelType: NVSP.controlChannel, on: raw) == .success)
        let packet = try await raw.inbox.take()
        try await raw.channel.send(
            completion: NVSPMessage.sendBufferComplete(status: .success, sectionSize: 1).encode()[...], transactionID: packet.descriptor.transactionID)
        try await self.expectStopped(host, raw)
    }

    @Test(arguments: [UInt32(0), 3, 109, 130, 777, 0xFFFF_FFFF, 2, 102, 105, 108, 132, 134, 128])
    func unknownOrHostOnlyNVSPTypesStopTheChannel(_ type: UInt32) async throws {
        let host = try await HostUnderTest.make()
        let raw = host.channel(0)
        _ = try await RawNetBuffers.setUp(raw)
        var payload = NVSPMessage.other(NVSPMessageType(rawValue: type), body: []).encode()
        if type == 134 { payload = NVSPMessage.indirectionTable(Array(repeating: 0, count: 16)).encode() }
        try await raw.channel.send(inBand: payload[...], transactionID: 3, completionRequested: true)
        try await self.expectStopped(host, raw)
    }

    /// Each message cut short of the fields its type needs (in whole 8-byte units: the ring
    /// pads every packet, so a payload's last bytes up to 8 read as zeros).
    @Test(arguments: [
        NVSPMessage.initialize(minimum: .v61, maximum: .v61).encode(size: 0).prefix(8), NVSPMessage.rndisPacket(channelType: 0, sectionIndex: 1, sectionBytes: 60).encode(size: 0).prefix(12),
        NVSPMessage.receiveBuffer(gpadl: 9, id: 0xCAFE).encode(size: 0).prefix(8), NVSPMessage.subchannel(operationOrStatus: 1, count: 1).encode(size: 0).prefix(8),
        [1, 0], [],
    ] as [ArraySlice<UInt8>])
    func truncatedNVSPMessagesStopTheChannel(_ payload: ArraySlice<UInt8>) async throws {
        let host = try await HostUnderTest.make()
        let raw = host.channel(0)
        if payload.first != 1 { _ = try await RawNetBuffers.setUp(raw) }
        try await raw.channel.send(inBand: payload, transactionID: 3, completionRequested: true)
        try await self.expectStopped(host, raw)
    }
}

/// A PPI header {size, type 0, data offset} and four data bytes.
func ppi(size: UInt32, offset: UInt32) -> [UInt8] {
    var writer = WireWriter()
    writer.writeUInt32(size)
    writer.writeUInt32(0)
    writer.writeUInt32(offset)
    writer.writeUInt32(0)
    return writer.bytes
}
