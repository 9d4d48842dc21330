import Testing
import VMBusWire

@Suite struct HvSockTests {
    @Test func port5000MapsToTheTemplateGUID() throws {
        let guid = GUID.vsockService(port: 5000)
        #expect(guid.description == "00001388-facb-11e6-bd58-64006a7986d3")
        #expect(guid.wireBytes == [0x88, 0x13, 0x00, 0x00, 0xcb, 0xfa, 0xe6, 0x11,
                                   0xbd, 0x58, 0x64, 0x00, 0x6a, 0x79, 0x86, 0xd3])
        #expect(guid.vsockPort == 5000)
        #expect(DeviceClass.network.classID.vsockPort == nil)
        var almost = guid
        almost.data4 ^= 1
        #expect(almost.vsockPort == nil)
    }

    @Test func sizesMatchLinuxConstants() {
        #expect(HvSock.headerLength == 24)
        #expect(HvSock.maximumPacketSize == 16416)
        #expect(HvSock.pendingSendSize == 4120)
        #expect(HvSock.finPacketLength == 32)
        #expect(HvSock.sendReserve == 72)
        // 07 §4: 100 bytes → 136 ring bytes.
        #expect(HvSock.packetLength(100) == 136)
    }

    @Test func hundredBytesOfDataMatchSpec07WorkedExample() throws {
        let packet = try HvSockData.packet([UInt8](repeating: 7, count: 100))
        #expect(packet.count == 128)
        let parsed = try VMBusPacket.parse(packet)
        #expect(parsed.descriptor.len8 == 16 && parsed.descriptor.offset8 == 2 && parsed.descriptor.transactionID == 0)
        guard case .inBand(_, let payload) = parsed else {
            Issue.record("not in-band")
            return
        }
        let data = try HvSockData(payload: payload)
        #expect(data.data.count == 100 && !data.isFIN)
        let fin = try VMBusPacket.parse(HvSockData.finPacket())
        #expect(fin.descriptor.ringBytes == HvSock.finPacketLength)
        guard case .inBand(_, let finPayload) = fin else { return }
        #expect(try HvSockData(payload: finPayload).isFIN)
    }

    @Test func receiveValidationFollowsSpec07() throws {
        var header = WireWriter()
        PipeHeader(type: .data, length: 9).write(to: &header)
        #expect(throws: WireError.truncated(needed: 9, available: 8)) {
            try HvSockData(payload: (header.bytes + [UInt8](repeating: 0, count: 8))[...])
        }
        var big = WireWriter()
        PipeHeader(type: .data, length: 16385).write(to: &big)
        #expect(throws: WireError.limitExceeded(name: "hvsock data_size", value: 16385, limit: 16384)) {
            try HvSockData(payload: (big.bytes + [UInt8](repeating: 0, count: 16392))[...])
        }
        var partial = WireWriter()
        PipeHeader(type: .partial, length: 0).write(to: &partial)
        #expect(throws: WireError.invalidField(name: "hvsock pipe packet type", value: 2)) {
            try HvSockData(payload: partial.bytes[...])
        }
        #expect(throws: WireError.self) { try HvSockData.packet([UInt8](repeating: 0, count: 16385)) }
    }

    @Test func ringSizesFollowTheVersionRules() {
        #expect(HvSock.ringSize(version: .win10_4_1, hint: 1 << 20) == 24 * 1024)
        #expect(HvSock.ringSize(version: .win10_5_0, hint: 1000) == 24 * 1024)
        #expect(HvSock.ringSize(version: .win10_5_3, hint: 1 << 20) == 256 * 1024)
        #expect(HvSock.ringSize(version: .copper, hint: 100_001) == 102_400)
        #expect(HvSock.sendableBytes(free: 72) == 0)
        #expect(HvSock.sendableBytes(free: 90) == 16)
        #expect(HvSock.sendableBytes(free: 1 << 20) == 4088)
    }

    @Test func offerParametersSitAtTheirOfferOffsets() throws {
        let silo = GUID.vsockService(port: 77)
        let area = HvSockOfferParameters(isForGuestAccept: true, isForGuestContainer: false, version: 1, siloID: silo).area
        // Area byte n is offer byte 60 + n.
        #expect(Array(area.bytes[0..<10]) == [0, 0, 0, 0, 1, 0, 1, 0, 0, 0])
        #expect(Array(area.bytes[10..<26]) == silo.wireBytes)
        #expect(area.pipeMode == PipeOfferParameters.byteMode)
        #expect(HvSockOfferParameters(area) == HvSockOfferParameters(isForGuestAccept: true, version: 1, siloID: silo))
        let pipe = PipeOfferParameters(pipeMode: PipeOfferParameters.messageMode, userDefined: [9, 9])
        let pipeArea = try pipe.area()
        #expect(Array(pipeArea.bytes[0..<6]) == [4, 0, 0, 0, 9, 9])
        #expect(PipeOfferParameters(pipeArea).pipeMode == 4)
        #expect(throws: WireError.self) { try PipeOfferParameters(pipeMode: 0, userDefined: [UInt8](repeating: 1, count: 117)).area() }
    }
}

extension HvSockTests {
    @Test func templateShapeIsBytesFourToFifteen() throws {
        #expect(HvSock.serviceTemplate.description == "00000000-facb-11e6-bd58-64006a7986d3")
        #expect(GUID.vsockService(port: 0xFFFF_FFFF).vsockPort == 0xFFFF_FFFF)
        let fromWire = try GUID(wireBytes: [0x88, 0x13, 0x00, 0x00, 0xcb, 0xfa, 0xe6, 0x11,
                                            0xbd, 0x58, 0x64, 0x00, 0x6a, 0x79, 0x86, 0xd3])
        #expect(fromWire.vsockPort == 5000 && fromWire.isVsockTemplate)
        var otherData2 = fromWire
        otherData2.data2 ^= 0x100
        #expect(!otherData2.isVsockTemplate && otherData2.vsockPort == nil)
    }

    @Test func dataPayloadsAndLinuxValidation() throws {
        let payload = try HvSockData.payload([1, 2, 3])
        #expect(payload == [1, 0, 0, 0, 3, 0, 0, 0, 1, 2, 3])
        // The packet pads the payload to 8: 16 + 11 + 5 = 32 bytes, len8 = 4.
        let data = try HvSockData(payload: (payload + [0, 0, 0, 0, 0])[...], packetLength: 32)
        #expect(data.data == [1, 2, 3] && !data.isFIN)
        #expect(try HvSockData(payload: HvSockData.finPayload[...], packetLength: 24).isFIN)
        #expect(HvSockData.finPacket().count == 24 && HvSock.finPacketLength == 32)
        #expect(throws: WireError.truncated(needed: 3, available: 0)) {
            try HvSockData(payload: payload[...], packetLength: 24)
        }
        #expect(HvSock.minimumVersion == .win10 && HvSock.offerFlags.rawValue == 0x2011)
    }

    @Test func offerAreasParseFromExactlyOneHundredTwentyBytes() throws {
        var area = [UInt8](repeating: 0, count: 120)
        area[4] = 2  // Linux tests the byte as a boolean
        area[6] = 1
        let parsed = try HvSockOfferParameters(area: area[...])
        #expect(parsed == HvSockOfferParameters(isForGuestAccept: true, version: 1))
        #expect(parsed.areaBytes[4] == 1 && parsed.areaBytes.count == 120)
        let pipe = try PipeOfferParameters(area: area[...])
        #expect(pipe.pipeMode == PipeOfferParameters.byteMode && pipe.userDefined.count == 116)
        #expect(try pipe.areaBytes() == area)
        var flagged = area
        flagged[116] = 1
        #expect(try PipeOfferParameters(area: flagged[...]).openVMMPipeFlags == 1)
        // The offer's UserDefinedBytes view gives the same values.
        let offerArea = try UserDefinedBytes(area)
        #expect(HvSockOfferParameters(offerArea) == parsed && PipeOfferParameters(offerArea) == pipe)
    }
}
