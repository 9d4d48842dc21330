import Testing
import VMBusChannel
import VMBusGuest
import VMBusHost
import VMBusLoopback
import VMBusMemory
import VMBusNetwork
import VMBusWire

/// A hand-written host answers a real netvsc's set-up and then misbehaves (11 §8): bring-up
/// fails with a typed error, a bad packet is completed with status 2 (or, where Linux does,
/// ignored), nothing is delivered from a bad range, and the NIC goes on.
@Suite struct NetvscHostileTests {
    static func receive(_ sections: [NVSPReceiveSection]) -> FakeNetHost.Answers {
        var answers = FakeNetHost.Answers()
        answers.receiveBuffer = { _ in .receiveBufferComplete(status: .success, sections: sections) }
        return answers
    }

    static func sendSection(_ size: UInt32) -> FakeNetHost.Answers {
        var answers = FakeNetHost.Answers()
        answers.sendBuffer = { _ in .sendBufferComplete(status: .success, sectionSize: size) }
        return answers
    }

    static let good = NVSPReceiveSection(subAllocationSize: 1806, subAllocationCount: 500)

    @Test(arguments: [
        ("no section", receive([])),
        ("two sections", receive([good, good])),
        ("sub-allocation below 68", receive([NVSPReceiveSection(subAllocationSize: 67, subAllocationCount: 100)])),
        ("size × count past the buffer", receive([NVSPReceiveSection(subAllocationSize: 1806, subAllocationCount: 581)])),
        ("size × count past 32 bits", receive([NVSPReceiveSection(subAllocationSize: 0x1_0000, subAllocationCount: 0x1_0001)])),
        ("offset not 0", receive([NVSPReceiveSection(offset: 4096, subAllocationSize: 1806, subAllocationCount: 10)])),
        ("send section 0", sendSection(0)),
        ("send section 67", sendSection(67)),
        ("send section past the buffer", sendSection(2 << 20)),
    ])
    func malformedSetUpAnswersFailBringUp(_ what: String, _ answers: FakeNetHost.Answers) async throws {
        let guest = try await GuestUnderTest.make(answers: answers)
        guard case .failure(let error) = try await guest.probeResult() else {
            Issue.record("\(what): bring-up succeeded")
            return
        }
        guard case .malformed(let why) = error, !why.hasPrefix("untyped") else {
            Issue.record("\(what): \(error)")
            return
        }
    }

    @Test func refusedAndTruncatedSetUpAnswersFailBringUp() async throws {
        var refused = FakeNetHost.Answers()
        refused.sendBuffer = { _ in .sendBufferComplete(status: .failure, sectionSize: 6144) }
        var truncated = FakeNetHost.Answers()
        truncated.receiveBuffer = { _ in .other(NVSPMessageType(rawValue: 102), body: []) }
        var otherType = FakeNetHost.Answers()
        otherType.receiveBuffer = { _ in .sendBufferComplete(status: .success, sectionSize: 6144) }
        for answers in [refused, truncated, otherType] {
            let guest = try await GuestUnderTest.make(answers: answers)
            let result = try await guest.probeResult()
            guard case .failure(let error) = result else {
                Issue.record("bring-up succeeded")
                continue
            }
            switch error {
            case .refused, .malformed("receive buffer sections []"): break
            case .malformed(let why): #expect(!why.hasPrefix("untyped"))
            default: Issue.record("\(error)")
            }
        }
    }

    // MARK: After a good bring-up

    /// A good frame lent in slot 100: delivered, completed with success.
    func expectStillReceiving(_ guest: GuestUnderTest, skipping: Int = 0) async throws {
        let frame = flowFrame(flow: 5, n: 5)
        var header = WireWriter()
        RNDISPacketHeader.write(frameLength: frame.count, to: &header)
        try await guest.host.lend(header.bytes + frame, slot: 100)
        var completion = try await guest.host.completions.take()
        for _ in 0..<skipping where completion.id != 100 { completion = try await guest.host.completions.take() }
        #expect(completion.id == 100 && completion.status == .success)
        #expect(try await guest.delivered.take() == frame)
    }

    static func packet(_ frame: [UInt8], ppis: [UInt8] = [], patch: [(Int, UInt32)] = []) -> [UInt8] { rndisPacket(frame, ppis: ppis, patch: patch) }
    static let frame = flowFrame(flow: 9, n: 9, length: 100)
    static let size = UInt32(FakeNetHost.subAllocationSize)

    /// Lent packets the guest must complete with status 2 and deliver nothing from.
    @Test(arguments: [
        ("range past the buffer", packet(frame), [TransferPageRange(byteCount: 144, byteOffset: 1 << 20)]),
        ("range ending past the buffer", packet(frame), [TransferPageRange(byteCount: 4096, byteOffset: (1 << 20) - 100)]),
        ("range offset near 4 GiB", packet(frame), [TransferPageRange(byteCount: 144, byteOffset: 0xFFFF_FFF0)]),
        ("range longer than a sub-allocation", packet(frame), [TransferPageRange(byteCount: size + 1, byteOffset: 20 * size)]),
        ("range shorter than 8", packet(frame), [TransferPageRange(byteCount: 4, byteOffset: 20 * size)]),
        ("msg_len past the range", packet(frame, patch: [(4, 400)]), nil),
        ("msg_len below 8", packet(frame, patch: [(4, 4)]), nil),
        ("data offset past the message", packet(frame, patch: [(8, 0xFFFF_FF00)]), nil),
        ("data length past the message", packet(frame, patch: [(12, 101)]), nil),
        ("data length 0", packet(frame, patch: [(12, 0)]), nil),
        ("PPI area past the message", packet(frame, patch: [(32, 0x7FFF_FFFF)]), nil),
        ("PPI of size 0", packet(frame, ppis: ppi(size: 0, offset: 12)), nil),
        ("PPI past its area", packet(frame, ppis: ppi(size: 64, offset: 12)), nil),
        ("PPI data offset past its size", packet(frame, ppis: ppi(size: 16, offset: 17)), nil),
        ("control message cut short", Array(RNDISMessage.queryComplete(requestID: 1, status: .success, information: [1, 2, 3, 4]).encode().prefix(20)) + [0, 0, 0, 0], nil),
        ("query answer outside itself", RNDISMessage.queryComplete(requestID: 1, status: .success, information: [1, 2, 3, 4]).encode().enumerated().map { $0.offset == 20 ? 0xF0 : $0.element }, nil),
    ] as [(String, [UInt8], [TransferPageRange]?)])
    func badLentPacketsAreFailedAndDeliverNothing(_ what: String, _ bytes: [UInt8], _ ranges: [TransferPageRange]?) async throws {
        let guest = try await GuestUnderTest.make()
        guard case .success = try await guest.probeResult() else { throw TimedOut() }
        try await guest.host.lend(bytes, slot: 20, ranges: ranges)
        let completion = try await guest.host.completions.take()
        #expect(completion.id == 20 && completion.status == .failure, "\(what)")
        #expect((guest.nic.statistics[0]?.malformed ?? 0) >= 1, "\(what)")
        try await self.expectStillReceiving(guest)
    }

    @Test func aBadRangeFailsThePacketButNotItsGoodRanges() async throws {
        let guest = try await GuestUnderTest.make()
        guard case .success = try await guest.probeResult() else { throw TimedOut() }
        let message = Self.packet(Self.frame)
        try guest.host.receiveBuffer.write(message[...], at: 30 * FakeNetHost.subAllocationSize)
        let ranges = [
            TransferPageRange(byteCount: Self.size + 8, byteOffset: 20 * Self.size),
            TransferPageRange(byteCount: UInt32(message.count), byteOffset: 30 * Self.size),
        ]
        try await guest.host.lend(message, slot: 20, ranges: ranges)
        let completion = try await guest.host.completions.take()
        #expect(completion.id == 20 && completion.status == .failure)
        #expect(try await guest.delivered.take() == Self.frame)
    }

    /// Packets Linux ignores without a completion (11 §8): a wrong set id, a payload that is
    /// not SEND_RNDIS_PKT. Nothing is delivered; the next good packet is.
    @Test(arguments: [
        (UInt16(0xCAFD), NVSPMessage.rndisPacket(channelType: 0, sectionIndex: NVSP.noSection, sectionBytes: 0).encode()),
        (0, NVSPMessage.rndisPacket(channelType: 0, sectionIndex: NVSP.noSection, sectionBytes: 0).encode()),
        (NVSP.receiveBufferID, NVSPMessage.rndisPacketComplete(status: .success).encode()),
        (NVSP.receiveBufferID, [107, 0]),
    ] as [(UInt16, [UInt8])])
    func packetsLinuxIgnoresGetNoCompletion(_ setID: UInt16, _ payload: [UInt8]) async throws {
        let guest = try await GuestUnderTest.make()
        guard case .success = try await guest.probeResult() else { throw TimedOut() }
        try await guest.host.lend(Self.packet(Self.frame), slot: 20, setID: setID, payload: payload)
        try await self.expectStillReceiving(guest)
        #expect(guest.host.completions.pending.isEmpty)
    }

    /// Completions of sends never made: ignored, no send section freed twice.
    @Test func completionsWithIdsNeverSentAreIgnored() async throws {
        let guest = try await GuestUnderTest.make()
        guard case .success = try await guest.probeResult() else { throw TimedOut() }
        let free = guest.nic.freeSections
        let completion = NVSPMessage.rndisPacketComplete(status: .success).encode()
        for id: UInt64 in [1 << 40 | 5, 2 << 40 | 3, 1 << 40 | 0xFFFF_FFFF, 3 << 40 | 1, 12345, 0, .max] {
            try await guest.host.channel.send(completion: completion[...], transactionID: id)
        }
        try await guest.host.channel.send(completion: [][...], transactionID: 2 << 40 | 4)
        // Processed in order: once the next frame is through, so were they.
        try await self.expectStillReceiving(guest)
        #expect(guest.nic.freeSections == free)
        // Sends still work, each in a section of its own.
        let system = try #require(guest.system.withLock { $0 })
        let sent = (0..<64).map { flowFrame(flow: $0, n: $0) }
        for frame in sent { system.send(frame[...]) }
        var got: [[UInt8]] = []
        for _ in sent { got.append(try await guest.host.frames.take()) }
        #expect(got == sent)
    }

    /// Send tables that lie, unknown NVSP, garbage in-band and other packet types: ignored.
    @Test func garbageFromTheHostIsIgnored() async throws {
        let guest = try await GuestUnderTest.make()
        guard case .success = try await guest.probeResult() else { throw TimedOut() }
        var shortTable = NVSPMessage.indirectionTable(Array(repeating: 9, count: 16)).encode()
        shortTable[4] = 8  // count 8
        var farTable = NVSPMessage.indirectionTable(Array(repeating: 9, count: 16)).encode()
        farTable[8] = 0xF0  // offset past the payload
        let channel = guest.host.channel
        for payload in [shortTable, farTable, [134, 0, 0, 0], [0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4], [1, 2, 3], [], RNDISMessage.keepalive(requestID: 1).encode()] {
            try await channel.send(inBand: payload[...], transactionID: 77, completionRequested: true)
        }
        try await channel.send(gpaDirect: [try GpaRange(gpa: 0x1000, length: 64)], payload: [107, 0, 0, 0][...])
        try await channel.send(encoded: PacketEncoder.simple(PacketType(rawValue: 0x55), payload: [1, 2, 3, 4], flags: [], transactionID: 1))
        try await self.expectStillReceiving(guest)
        #expect(guest.host.completions.pending.isEmpty)
        // A lying table left sends on queue 0.
        let system = try #require(guest.system.withLock { $0 })
        let frame = flowFrame(flow: 1, n: 1)
        system.send(frame[...])
        #expect(try await guest.host.frames.take() == frame)
    }
}
