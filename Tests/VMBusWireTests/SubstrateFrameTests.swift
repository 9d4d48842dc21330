import Testing
import VMBusWire

@Suite struct SubstrateFrameTests {
    static let frames: [SubstrateFrame] = [
        .hello(version: 1, pageSize: 4096, memoryBytes: 256 << 20),
        .welcome(version: 1),
        .refuse(.hostFull, text: "at most 16 guests"),
        .message(connectionID: 4, messageType: 1, payload: Array(0..<240)),
        .message(connectionID: 2, messageType: 1, payload: []),
        .doorbells(relid: 7, connectionID: 0x2007),
        .goodbye(.protocolError),
    ]

    @Test(arguments: frames)
    func framesRoundTripWithTheirDescriptors(_ frame: SubstrateFrame) throws {
        let bytes = frame.encode()
        #expect(try SubstrateFrame.parse(bytes[...], descriptors: SubstrateFrame.descriptorCount(frame.kind)) == frame)
        // Every proper prefix is refused, as is the wrong number of descriptors.
        for cut in 0..<bytes.count {
            #expect(throws: WireError.self) { try SubstrateFrame.parse(bytes[..<cut], descriptors: 0) }
        }
        #expect(throws: WireError.self) { try SubstrateFrame.parse(bytes[...], descriptors: SubstrateFrame.descriptorCount(frame.kind) + 1) }
    }

    @Test func helloIsByteExact() {
        #expect(SubstrateFrame.hello(version: 1, pageSize: 4096, memoryBytes: 0x1000_0000).encode() == [
            1, 0, 0, 0, 24, 0, 0, 0,  // kind 1, flags 0, body 24
            1, 0, 0, 0, 0, 0x10, 0, 0,  // version 1, page size 4096
            0, 0, 0, 0x10, 0, 0, 0, 0,  // 256 MiB
            0, 0, 0, 0, 0, 0, 0, 0,  // reserved
        ])
    }

    @Test func malformedFramesAreProtocolErrors() {
        var flagged = SubstrateFrame.welcome(version: 1).encode()
        flagged[2] = 1
        #expect(throws: WireError.invalidField(name: "flags", value: 1)) { try SubstrateFrame.parse(flagged[...], descriptors: 0) }
        var longer = SubstrateFrame.goodbye(.normal).encode() + [0]
        #expect(throws: WireError.self) { try SubstrateFrame.parse(longer[...], descriptors: 0) }
        longer[4] = 5  // body_length agrees now, but GOODBYE's body is 4 bytes
        #expect(throws: WireError.trailingBytes(count: 1)) { try SubstrateFrame.parse(longer[...], descriptors: 0) }
        #expect(throws: WireError.unknownType(9)) { try SubstrateFrame.parse([9, 0, 0, 0, 0, 0, 0, 0][...], descriptors: 0) }
        var oversize = SubstrateFrame.message(connectionID: 1, messageType: 1, payload: []).encode()
        oversize += [UInt8](repeating: 0, count: 241)
        oversize[4] = UInt8((12 + 241) & 0xFF)
        oversize[5] = UInt8((12 + 241) >> 8)
        oversize[16] = 241
        #expect(throws: WireError.limitExceeded(name: "payload_size", value: 241, limit: 240)) {
            try SubstrateFrame.parse(oversize[...], descriptors: 0)
        }
        #expect(throws: WireError.self) { try SubstrateFrame.parse([UInt8](repeating: 0, count: 4097)[...], descriptors: 0) }
    }
}
