import Testing
import VMBusWire

func hexBytes(_ text: String) -> [UInt8] {
    text.split(separator: " ").map { UInt8($0, radix: 16)! }
}

@Suite struct NVSPWireTests {
    /// 11 §10.1: Linux's INIT for 6.1, the 40-byte message after the packet header.
    @Test func initFor61MatchesLinux() throws {
        let bytes = NVSPMessage.initialize(minimum: .v61, maximum: .v61).encode()
        #expect(bytes.count == 40)
        #expect(Array(bytes.prefix(12)) == hexBytes("01 00 00 00 01 00 06 00 01 00 06 00"))
        #expect(bytes.dropFirst(12).allSatisfy { $0 == 0 })
        #expect(try NVSPMessage(parsing: bytes[...]) == .initialize(minimum: .v61, maximum: .v61))
    }

    /// 11 §10.1: OpenVMM's INIT_COMPLETE payload (32 bytes in its ring).
    @Test func initCompleteAsOpenVMMSendsIt() throws {
        let payload = hexBytes("02 00 00 00 ff ff ff ff 22 00 00 00 01 00 00 00") + [UInt8](repeating: 0, count: 16)
        #expect(try NVSPMessage(parsing: payload[...]) == .initializeComplete(negotiated: 0xFFFF_FFFF, maximumMDLChainLength: 34, status: .success))
        // Zero-extended: only the fields read must be there.
        #expect(throws: WireError.self) { try NVSPMessage(parsing: payload.prefix(15)) }
    }

    /// 11 §10.2: SEND_RNDIS_PKT of 104 bytes in section 3.
    @Test func sendRNDISPacketInSection3() throws {
        let bytes = NVSPMessage.rndisPacket(channelType: 0, sectionIndex: 3, sectionBytes: 104).encode()
        #expect(Array(bytes.prefix(16)) == hexBytes("6b 00 00 00 00 00 00 00 03 00 00 00 68 00 00 00"))
        #expect(try NVSPMessage(parsing: bytes[...]) == .rndisPacket(channelType: 0, sectionIndex: 3, sectionBytes: 104))
    }

    @Test func everyMessageRoundTrips() throws {
        let messages: [NVSPMessage] = [
            .initialize(minimum: .v1, maximum: .v61),
            .initializeComplete(negotiated: 2, maximumMDLChainLength: 34, status: .success),
            .ndisVersion(major: 6, minor: 30), .ndisConfig(mtu: 1514, capabilities: [.ieee8021q, .teaming, .rsc]),
            .receiveBuffer(gpadl: 9, id: NVSP.receiveBufferID), .sendBuffer(gpadl: 10, id: 0),
            .receiveBufferComplete(status: .success, sections: [NVSPReceiveSection(subAllocationSize: 1806, subAllocationCount: 9000)]),
            .revokeReceiveBuffer(id: 0xCAFE), .revokeSendBuffer(id: 0), .sendBufferComplete(status: .success, sectionSize: 6144),
            .rndisPacketComplete(status: .failure), .subchannel(operationOrStatus: 1, count: 3),
            .indirectionTable((0..<16).map { UInt32($0 % 4) }), .vfAssociation(allocated: 1, serial: 7), .switchDataPath(1),
            .oidQueryEx(header: 1, oid: 2), .oidQueryExComplete(status: 3, bytes: 0),
            .other(NVSPMessageType(rawValue: 500), body: [1, 2, 3, 4]),
        ]
        for message in messages {
            let bytes = message.encode(size: 28)
            #expect(try NVSPMessage(parsing: bytes[...]).encode(size: 28) == bytes, "\(message)")
            #expect(try NVSPMessage(parsing: bytes[...]).type == message.type)
        }
        // The host's send table: 104 bytes, table at 40 — what Linux reads at every version.
        #expect(NVSPMessage.indirectionTable(Array(repeating: 1, count: 16)).encode().count == 104)
    }

    @Test func hostileMessagesAreRefusedBeforeAllocating() {
        // A section count of 2^32 − 1 in 40 bytes.
        let sections = NVSPMessage.receiveBufferComplete(status: .success, sections: []).encode()
        var huge = sections
        huge[8...11] = [0xFF, 0xFF, 0xFF, 0xFF][...]
        #expect(throws: WireError.self) { try NVSPMessage(parsing: huge[...]) }
        // A send table with count 15, or an offset past the payload.
        var table = NVSPMessage.indirectionTable(Array(repeating: 0, count: 16)).encode()
        table[4] = 15
        #expect(throws: WireError.self) { try NVSPMessage(parsing: table[...]) }
        table[4] = 16
        table[8] = 60
        #expect(throws: WireError.self) { try NVSPMessage(parsing: table[...]) }
        #expect(throws: WireError.self) { try NVSPMessage(parsing: [1, 0, 0][...]) }
    }
}

@Suite struct RNDISWireTests {
    /// 11 §10.2: a 60-byte frame, no PPI: 104 bytes, data offset 36, PPI offset 36 length 0.
    @Test func packetHeaderMatchesLinux() throws {
        var writer = WireWriter()
        RNDISPacketHeader.write(frameLength: 60, to: &writer)
        #expect(writer.bytes == hexBytes("01 00 00 00 68 00 00 00 24 00 00 00 3c 00 00 00") + [UInt8](repeating: 0, count: 12)
            + hexBytes("24 00 00 00 00 00 00 00") + [UInt8](repeating: 0, count: 8))
        let message = writer.bytes + [UInt8](repeating: 0xAB, count: 60)
        let header = try RNDISPacketHeader(parsing: message[...])
        #expect(header.frameOffset == 44 && header.frameLength == 60 && header.ppiLength == 0 && header.messageLength == 104)
    }

    @Test func ppisAreWalkedAndChecked() throws {
        var writer = WireWriter()
        let ppis = [PerPacketInfo(type: .hashValue, value: 0x1234), PerPacketInfo(type: .vlan, value: 0x64D)]
        RNDISPacketHeader.write(frameLength: 14, ppis: ppis, to: &writer)
        writer.writeZeros(14)
        let message = writer.bytes
        let header = try RNDISPacketHeader(parsing: message[...])
        var seen: [PerPacketInfo] = []
        try PerPacketInfo.walk(message[header.ppiOffset..<(header.ppiOffset + header.ppiLength)]) { type, data in
            seen.append(PerPacketInfo(type: type, value: PerPacketInfo.value(of: data) ?? 0))
        }
        #expect(seen == ppis)
        // A PPI whose size is 0 (Linux would spin on it) or runs past the area.
        var broken = message
        broken[header.ppiOffset] = 0
        #expect(throws: WireError.self) {
            try PerPacketInfo.walk(broken[header.ppiOffset..<(header.ppiOffset + header.ppiLength)]) { _, _ in }
        }
        broken[header.ppiOffset] = 200
        #expect(throws: WireError.self) {
            try PerPacketInfo.walk(broken[header.ppiOffset..<(header.ppiOffset + header.ppiLength)]) { _, _ in }
        }
    }

    @Test func hostilePacketHeadersAreRefused() {
        var writer = WireWriter()
        RNDISPacketHeader.write(frameLength: 60, to: &writer)
        let good = writer.bytes + [UInt8](repeating: 0, count: 60)
        func mutated(_ offset: Int, _ value: UInt32) -> [UInt8] {
            var bytes = good
            for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
            return bytes
        }
        for (offset, value) in [(4, 200), (4, 7), (8, 30), (8, 0xFFFF_FFF0), (12, 61), (12, 0), (20, 4), (24, 1), (32, 8), (36, 1)]
            as [(Int, UInt32)]
        {
            #expect(throws: WireError.self, "field at \(offset) = \(value)") { try RNDISPacketHeader(parsing: mutated(offset, value)[...]) }
        }
        #expect(throws: WireError.self) { try RNDISPacketHeader(parsing: good.prefix(43)) }
    }

    @Test func controlMessagesRoundTrip() throws {
        let messages: [RNDISMessage] = [
            .initialize(requestID: 1, major: 1, minor: 0, maximumTransferSize: 0x4000),
            .initializeComplete(RNDISInitializeComplete(requestID: 1)), .halt(requestID: 9),
            .query(requestID: 2, oid: .maximumFrameSize, information: []),
            .query(requestID: 3, oid: .offloadHardwareCapabilities, information: [0xA7, 3, 156, 0]),
            .set(requestID: 4, oid: .currentPacketFilter, information: [0x0D, 0, 0, 0]),
            .queryComplete(requestID: 2, status: .success, information: [0xDC, 5, 0, 0]),
            .setComplete(requestID: 4, status: .success), .reset, .resetComplete(status: .success, addressingReset: 0),
            .indicateStatus(status: .mediaConnect, buffer: []), .indicateStatus(status: .linkSpeedChange, buffer: [1, 2, 3, 4]),
            .keepalive(requestID: 5), .keepaliveComplete(requestID: 5, status: .success),
        ]
        for message in messages {
            let bytes = message.encode()
            #expect(try RNDISMessage(parsing: bytes[...]) == message, "\(message)")
            #expect(try RNDISMessage.messageLength(in: bytes[...]) == bytes.count)
        }
        #expect(RNDISMessage.initializeComplete(RNDISInitializeComplete(requestID: 1)).encode().count == 52)
        #expect(RNDISMessage.query(requestID: 1, oid: .linkSpeed, information: []).encode().count == 28)
        #expect(RNDISMessage.indicateStatus(status: .mediaConnect, buffer: []).encode().count == 20)
    }

    @Test func informationOutsideTheMessageIsRefused() {
        var bytes = RNDISMessage.query(requestID: 2, oid: .linkSpeed, information: [1, 2, 3, 4]).encode()
        bytes[16] = 5  // length 5 > the 4 bytes there
        #expect(throws: WireError.self) { try RNDISMessage(parsing: bytes[...]) }
        bytes[16] = 4
        bytes[20] = 0xF0  // offset far past the end
        #expect(throws: WireError.self) { try RNDISMessage(parsing: bytes[...]) }
        bytes[4] = 7  // msg_len below 8
        #expect(throws: WireError.self) { try RNDISMessage(parsing: bytes[...]) }
    }

    @Test func ndisObjectsHaveTheirSizes() throws {
        for (revision, size) in [(1, 112), (2, 144), (3, 156)] as [(UInt8, Int)] {
            let bytes = NDISOffload().encode(revision: revision)
            #expect(bytes.count == size && bytes[0] == 0xA7 && bytes[1] == revision && Int(bytes[2]) | Int(bytes[3]) << 8 == size)
        }
        let caps = RSSCapabilities(receiveQueues: 4)
        #expect(caps.encode().count == 18)
        #expect(try RSSCapabilities(parsing: caps.encode()[...]) == caps)
        let parameters = RSSParameters(
            flags: 0x0001, hashInformation: 0x1701, indirectionTable: (0..<128).map { UInt32($0 % 4) }, key: Array(0..<40))
        let encoded = parameters.encode()
        #expect(encoded.count == 592)  // Linux's object size (11 §6)
        #expect(try RSSParameters(parsing: encoded[...]) == parameters)
    }
}
