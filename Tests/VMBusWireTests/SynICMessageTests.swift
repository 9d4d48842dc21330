import Testing
import VMBusWire

@Suite struct SynICMessageTests {
    @Test func slotRoundTripsAndKeepsOnlyTheValidPayload() throws {
        let payload = try ChannelMessage.rescindChannelOffer(RescindChannelOffer(childRelID: 7)).encode()
        let message = try SynICMessage(messageType: 1, messagePending: true, senderPortID: 0x55, payload: payload)
        var writer = WireWriter()
        message.write(to: &writer)
        #expect(writer.count == 256)
        #expect(Array(writer.bytes[0..<8]) == [1, 0, 0, 0, 12, 1, 0, 0])
        var reader = WireReader(writer.bytes)
        let parsed = try SynICMessage(from: &reader)
        #expect(parsed == message)
        #expect(try ChannelMessage.parse(parsed.payload, version: .win8) == .rescindChannelOffer(.init(childRelID: 7)))
    }

    @Test func oversizePayloadSizeIsRejected() {
        var bytes = [UInt8](repeating: 0, count: 256)
        bytes[0] = 1
        bytes[4] = 241
        var reader = WireReader(bytes)
        #expect(throws: WireError.limitExceeded(name: "SynIC payload size", value: 241, limit: 240)) {
            try SynICMessage(from: &reader)
        }
        #expect(throws: WireError.self) { try SynICMessage(messageType: 1, payload: [UInt8](repeating: 0, count: 241)) }
    }

    @Test func postMessageInputLayoutFollowsSpec01() throws {
        let input = try PostMessageInput(connectionID: 0xFF00_0004, payload: [9, 9])
        var writer = WireWriter()
        input.write(to: &writer)
        #expect(Array(writer.bytes[0..<18]) == [4, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 9, 9])
        var reader = WireReader(writer.bytes)
        #expect(try PostMessageInput(from: &reader).connectionID == 4)
    }

    @Test func signalEventPacksConnectionAndFlag() throws {
        let signal = SignalEventInput(connectionID: 0x2005, flagNumber: 3)
        #expect(signal.rawValue == 0x0003_0000_2005)
        #expect(try SignalEventInput(rawValue: signal.rawValue) == signal)
        #expect(throws: WireError.self) { try SignalEventInput(rawValue: 1 << 48) }
    }
}

@Suite struct SharedPageLayoutTests {
    @Test func monitorPageCellsSitWhereSpec02Says() {
        #expect(MonitorPage.pendingOffset(monitorID: 0) == 8)
        #expect(MonitorPage.pendingOffset(monitorID: 33) == 16 && MonitorPage.pendingBit(monitorID: 33) == 2)
        #expect(MonitorPage.pendingOffset(monitorID: 127) == 32)
        #expect(MonitorPage.nextCheckTimeOffset(monitorID: 127) == 64 + 508)
        #expect(MonitorPage.latencyOffset(monitorID: 0) == 576 && MonitorPage.latencyOffset(monitorID: 127) == 830)
        #expect(MonitorPage.parameterOffset(monitorID: 127) == 1088 + 1016)
    }

    @Test func ringTrailerCarriesTheStartOffsetInItsHighHalf() {
        // 02 §5.1: a packet started at 12224 has the trailer bytes 00 00 00 00 c0 2f 00 00.
        var writer = WireWriter()
        writer.writeUInt64(RingControlPage.trailer(startOffset: 12224))
        #expect(writer.bytes == [0, 0, 0, 0, 0xc0, 0x2f, 0, 0])
    }
}
