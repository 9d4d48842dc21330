import Testing
import VMBusWire

/// 06 §2.4: OpenVMM's timesync negotiate request, 48 bytes.
let negotiateRequest: [UInt8] = [
    0x01, 0, 0, 0, 0x28, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x14, 0, 0, 0, 0, 0, 0, 0x03, 0, 0,
    0x02, 0, 0x01, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0x03, 0, 0, 0, 0x04, 0, 0, 0,
]

/// 06 §2.4: Linux's answer to it.
let negotiateResponse: [UInt8] = [
    0x01, 0, 0, 0, 0x28, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0x05, 0, 0,
    0x01, 0, 0x01, 0, 0, 0, 0, 0, 0x03, 0, 0, 0, 0x04, 0, 0, 0, 0x04, 0, 0, 0,
]

@Suite struct ICNegotiationTests {
    @Test func hostRequestIsTheWorkedExampleByteForByte() throws {
        let request = try ICNegotiation.request(framework: ICVersions.openVMMFramework, service: ICVersions.openVMMTimeSync)
        #expect(request.encode() == negotiateRequest)
        // 16-byte descriptor + 48 bytes = 64; 72 ring bytes with the trailer.
        let packet = try request.packet(transactionID: 0)
        #expect(packet.count == 64 && PacketSize.ringBytes(length: packet.count) == 72)
    }

    @Test func guestResponseIsLinuxsByteForByte() throws {
        let (response, chosen) = try ICNegotiation.respond(
            to: negotiateRequest[...], framework: ICVersions.linuxFramework, service: ICVersions.linuxTimeSync)
        #expect(response == negotiateResponse)
        #expect(chosen?.framework == ICVersion(3, 0) && chosen?.service == ICVersion(4, 0))
        let parsed = try ICMessage(payload: response[...])
        #expect(parsed.header.flags == .guestResponse && parsed.header.messageSize == 16)
        let host = try ICNegotiation.chosen(in: parsed)
        #expect(host?.framework == ICVersion(3, 0) && host?.service == ICVersion(4, 0))
    }

    @Test func guestPreferenceWinsOverHostOrder() throws {
        let request = try ICNegotiation.request(framework: [ICVersion(1, 0), ICVersion(3, 0)],
                                                service: ICVersions.openVMMShutdown).encode()
        let (_, chosen) = try ICNegotiation.respond(to: request[...], framework: ICVersions.linuxFramework,
                                                    service: ICVersions.linuxShutdown)
        #expect(chosen?.framework == ICVersion(3, 0) && chosen?.service == ICVersion(3, 2))
    }

    @Test func noCommonVersionAnswersZeroCounts() throws {
        let request = try ICNegotiation.request(framework: [ICVersion(1, 0)], service: [ICVersion(9, 9)]).encode()
        let (response, chosen) = try ICNegotiation.respond(to: request[...], framework: ICVersions.linuxFramework,
                                                           service: ICVersions.linuxTimeSync)
        #expect(chosen == nil)
        #expect(Array(response[28..<32]) == [0, 0, 0, 0])
        #expect(try ICNegotiation.chosen(in: try ICMessage(payload: response[...])) == nil)
    }

    @Test func hostileNegotiationsAreRejected() throws {
        var counts = negotiateRequest
        counts[28] = 0xFF
        counts[29] = 0xFF
        #expect(throws: WireError.limitExceeded(name: "framework version count", value: 0xFFFF, limit: 100)) {
            try ICNegotiation.respond(to: counts[...], framework: ICVersions.linuxFramework, service: ICVersions.linuxKVP)
        }
        var long = negotiateRequest
        long[30] = 3  // four versions claimed, three present
        #expect(throws: WireError.truncated(needed: 20, available: 12)) {
            try ICNegotiation.respond(to: long[...], framework: ICVersions.linuxFramework, service: ICVersions.linuxKVP)
        }
        var heartbeat = negotiateRequest
        heartbeat[12] = 1
        #expect(throws: WireError.invalidField(name: "icmsgtype", value: 1)) {
            try ICNegotiation.respond(to: heartbeat[...], framework: ICVersions.linuxFramework, service: ICVersions.linuxKVP)
        }
    }
}

extension ICNegotiationTests {
    @Test func failedNegotiationLeavesWhatLinuxLeaves() throws {
        // No common framework: entries hold the request's counts as major versions (Linux reuses
        // its count variables), counts 0/0, everything else echoed.
        let noFramework = try ICNegotiation.request(framework: [ICVersion(2, 0)], service: [ICVersion(4, 0)]).encode()
        let (response, chosen) = try ICNegotiation.respond(
            to: noFramework[...], framework: ICVersions.linuxFramework, service: ICVersions.linuxTimeSync)
        #expect(chosen == nil && response.count == noFramework.count)
        #expect(Array(response[28...]) == [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0])
        #expect(response[18] == 16 && response[25] == 0x05)
        // A common framework but no common service: entry 0 is the framework choice.
        let noService = try ICNegotiation.request(framework: [ICVersion(3, 0)], service: [ICVersion(9, 0), ICVersion(8, 0)])
            .encode()
        let (answer, none) = try ICNegotiation.respond(
            to: noService[...], framework: ICVersions.linuxFramework, service: ICVersions.linuxTimeSync)
        #expect(none == nil)
        #expect(Array(answer[28..<44]) == [0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0])
        #expect(Array(answer[44...]) == [8, 0, 0, 0])  // the third entry is left as sent
    }

    @Test func answersEchoTheRequestAroundTheRewrittenFields() throws {
        // Status, transaction id, reserved words and ring padding come back unchanged.
        var request = negotiateRequest
        request.replaceSubrange(20..<24, with: [0x11, 0x22, 0x33, 0x44])
        request[24] = 0x7E
        request.replaceSubrange(32..<36, with: [0xAA, 0xBB, 0xCC, 0xDD])
        request += [0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE]
        let (response, chosen) = try ICNegotiation.respond(
            to: request[...], framework: ICVersions.linuxFramework, service: ICVersions.linuxTimeSync)
        #expect(chosen?.framework == ICVersion(3, 0) && chosen?.service == ICVersion(4, 0))
        var expected = request
        expected[18] = 0x10
        expected[25] = 0x05
        expected.replaceSubrange(28..<32, with: [1, 0, 1, 0])
        expected.replaceSubrange(36..<44, with: [3, 0, 0, 0, 4, 0, 0, 0])
        #expect(response == expected)
    }

    @Test func shortListsAreAnsweredWithRoomForBothEntries() throws {
        let empty = try ICNegotiation.request(framework: [], service: []).encode()
        #expect(empty.count == 36)
        let (response, chosen) = try ICNegotiation.respond(
            to: empty[...], framework: ICVersions.linuxFramework, service: ICVersions.linuxKVP)
        #expect(chosen == nil && response.count == 44)
        let parsed = try ICMessage(payload: response[...])
        #expect(try ICNegotiation.chosen(in: parsed) == nil)
        let failure = try ICNegotiation.failureResponse(to: negotiateRequest[...])
        #expect(failure.count == 48 && Array(failure[28..<44]) == [UInt8](repeating: 0, count: 16))
        #expect(throws: WireError.truncated(needed: 28, available: 27)) {
            try ICNegotiation.failureResponse(to: negotiateRequest[..<27])
        }
    }

    @Test func everyServiceNegotiatesAgainstOpenVMMAsTheTableSays() throws {
        let cases: [([ICVersion], [ICVersion], ICVersion)] = [
            (ICVersions.openVMMShutdown, ICVersions.linuxShutdown, ICVersion(3, 2)),
            (ICVersions.openVMMTimeSync, ICVersions.linuxTimeSync, ICVersion(4, 0)),
            (ICVersions.openVMMKVP, ICVersions.linuxKVP, ICVersion(4, 0)),
            (ICVersions.windowsVSS, ICVersions.linuxVSS, ICVersion(5, 0)),
        ]
        for (host, guest, expected) in cases {
            let request = try ICNegotiation.request(framework: ICVersions.openVMMFramework, service: host).encode()
            let (_, chosen) = try ICNegotiation.respond(to: request[...], framework: ICVersions.linuxFramework, service: guest)
            #expect(chosen?.framework == ICVersion(3, 0) && chosen?.service == expected)
        }
        #expect(ICNegotiation.choose(offered: ICVersions.openVMMFramework, preferred: ICVersions.linuxFrameworkV3Only)
                == ICVersion(3, 0))
        #expect(ICNegotiation.choose(offered: [ICVersion(1, 0)], preferred: ICVersions.linuxFrameworkV3Only) == nil)
    }

    @Test func hostRejectsAnswersWithOtherCounts() throws {
        var response = negotiateResponse
        response[28] = 2
        response[18] = 20  // icmsgsize covers the three entries claimed
        #expect(throws: WireError.invalidField(name: "negotiated version counts", value: 2 << 16 | 1)) {
            try ICNegotiation.chosen(in: try ICMessage(payload: response[...]))
        }
    }
}

@Suite struct ICMessageTests {
    @Test func framingChecksEveryLength() throws {
        for length in 0..<ICMessage.bodyOffset {
            let error = wireError { () throws(WireError) in try ICMessage(payload: negotiateRequest[0..<length]) }
            #expect(isTruncated(error), "prefix \(length)")
        }
        var sizeTooBig = negotiateRequest
        sizeTooBig[18] = 21
        #expect(throws: WireError.truncated(needed: 21, available: 20)) { try ICMessage(payload: sizeTooBig[...]) }
        var pipeTooBig = negotiateRequest
        pipeTooBig[4] = 41
        #expect(throws: WireError.truncated(needed: 41, available: 40)) { try ICMessage(payload: pipeTooBig[...]) }
        #expect(throws: WireError.limitExceeded(name: "IC message size", value: 13313, limit: 13312)) {
            try ICMessage(payload: negotiateRequest[...] + [UInt8](repeating: 0, count: 13313 - 48))
        }
    }

    @Test func paddingAfterTheBodyIsKeptButNotPartOfIt() throws {
        let message = try ICMessage(payload: negotiateRequest[...] + [0, 0, 0, 0])
        #expect(message.body.count == 20 && message.remainder.count == 24)
        #expect(message.encode() == negotiateRequest + [0, 0, 0, 0])
    }

    @Test func unknownTypesFlagsAndStatusesSurviveARoundTrip() throws {
        let header = ICMessageHeader(
            frameworkVersion: ICVersion(3, 0), messageType: ICMessageType(rawValue: 0x99),
            messageVersion: ICVersion(7, 1), messageSize: 0, status: ICStatus(rawValue: 0x8765_4321),
            transactionID: 0x42, flags: ICFlags(rawValue: 0xF0), reserved: 0x1234)
        let message = try ICMessage(header: header, body: [1, 2, 3])
        let parsed = try ICMessage(payload: message.encode()[...])
        #expect(parsed == message && parsed.header.messageSize == 3 && parsed.pipe.length == 23)
        #expect(ICMessageHeader.wireSize == 20 && ICMessage.bodyOffset == 28)
    }
}

extension ICMessageTests {
    @Test func builderWritesPipeDataAndTheBodySize() throws {
        // A heartbeat request as a host sends it after negotiating 3.0/3.0.
        var body = WireWriter()
        HeartbeatMessage(sequenceNumber: 5, applicationState: .unknown).write(to: &body)
        let header = ICMessageHeader(frameworkVersion: ICVersion(3, 0), messageType: .heartbeat,
                                     messageVersion: ICVersion(3, 0), messageSize: 0xFFFF)
        let message = try ICMessage(header: header, body: body.bytes)
        #expect(message.encode() == [
            0x01, 0, 0, 0, 0x24, 0, 0, 0,
            3, 0, 0, 0, 1, 0, 3, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0x03, 0, 0,
            5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ])
        #expect(message.header.messageSize == 16 && message.pipe == PipeHeader(type: .data, length: 36))
    }

    @Test func unknownPipeTypesAreKeptForTheCallerToJudge() throws {
        var bytes = negotiateRequest
        bytes[0] = 0x42
        let message = try ICMessage(payload: bytes[...])
        #expect(message.pipe.type == PipePacketType(rawValue: 0x42))
        #expect(message.encode() == bytes)
        #expect(PipePacketType.partial.description == "PARTIAL" && PipePacketType(rawValue: 9).description.hasSuffix("9"))
    }

    @Test func bodyAndRemainderAreSlicesOfThePayload() throws {
        let payload = negotiateRequest + [9, 9, 9, 9, 9, 9, 9, 9]
        let message = try ICMessage(payload: payload[...])
        #expect(message.body.startIndex == 28 && message.body.endIndex == 48)
        #expect(message.remainder.startIndex == 28 && message.remainder.endIndex == 56)
    }
}

/// Encodes a body with `write(to:)` for tests.
func bytes(_ write: (inout WireWriter) throws -> Void) rethrows -> [UInt8] {
    var writer = WireWriter()
    try write(&writer)
    return writer.bytes
}

@Suite struct ICServiceTests {
    @Test func heartbeatAcceptsTheShortLinuxBody() throws {
        var reader = WireReader([5, 0, 0, 0, 0, 0, 0, 0])
        let short = try HeartbeatMessage(from: &reader)
        #expect(short.sequenceNumber == 5 && short.applicationState == nil)
        let full = HeartbeatMessage(sequenceNumber: 6, applicationState: .init(rawValue: 9))
        let encoded = bytes { full.write(to: &$0) }
        #expect(encoded.count == HeartbeatMessage.wireSize)
        var again = WireReader(encoded)
        #expect(try HeartbeatMessage(from: &again) == full)
    }

    @Test func shutdownIsTwoThousandSixtyBytesAndMapsLikeLinux() throws {
        let message = ShutdownMessage(flags: [.restart, .force], displayMessage: "Wartung läuft ⚙")
        let encoded = try bytes { try message.write(to: &$0) }
        #expect(encoded.count == 2060)
        var reader = WireReader(encoded)
        #expect(try ShutdownMessage(from: &reader) == message)
        #expect(message.linuxAction == .reboot)
        #expect(ShutdownMessage(flags: []).linuxAction == .powerOff)
        #expect(ShutdownMessage(flags: .hibernate).linuxAction == .hibernate)
        #expect(ShutdownMessage(flags: ShutdownFlags(rawValue: 8)).linuxAction == .unsupported)
        var short = WireReader(Array(encoded.dropLast()))
        #expect(throws: WireError.truncated(needed: 2060, available: 2059)) { try ShutdownMessage(from: &short) }
        #expect(throws: WireError.self) {
            try bytes { try ShutdownMessage(flags: [], displayMessage: String(repeating: "x", count: 1024)).write(to: &$0) }
        }
    }

    @Test func timeSyncBodiesHaveLinuxAndWindowsSizes() throws {
        let v4 = TimeSyncMessageV4(parentTime: FileTime.unixEpoch + 10_000_000, vmReferenceTime: 500,
                                   flags: .sync, leapIndicator: 1, stratum: 2)
        let encoded4 = bytes { v4.write(to: &$0) }
        #expect(encoded4.count == 24)
        var reader = WireReader(Array(encoded4.prefix(22)))
        #expect(try TimeSyncMessageV4(from: &reader) == v4)
        var short = WireReader(Array(encoded4.prefix(21)))
        #expect(throws: WireError.truncated(needed: 22, available: 21)) { try TimeSyncMessageV4(from: &short) }
        #expect(v4.hostTime(referenceNow: 600) == v4.parentTime + 100)
        let v3 = TimeSyncMessageV3(parentTime: 1, childTime: 2, roundTripTime: 3, flags: .sample)
        let encoded3 = bytes { v3.write(to: &$0) }
        #expect(encoded3.count == 28)
        var reader3 = WireReader(Array(encoded3.prefix(25)))
        #expect(try TimeSyncMessageV3(from: &reader3) == v3)
        #expect(FileTime.unixNanoseconds(FileTime.unixEpoch + 10_000_000) == 1_000_000_000)
        #expect(FileTime.unixNanoseconds(0) == .min)  // 1601 is beyond Int64 nanoseconds: saturates
        #expect(FileTime.fromUnix(nanoseconds: 1_000_000_000) == FileTime.unixEpoch + 10_000_000)
        #expect(FileTime.fromUnix(nanoseconds: .min) == FileTime.unixEpoch - 92_233_720_368_547_758)
    }

    @Test func vssIsTwelveBytes() throws {
        let message = VSSMessage(operation: .hotBackup, flags: VSSMessage.hotBackupNoAutoRecovery)
        let encoded = bytes { message.write(to: &$0) }
        #expect(encoded == [2, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0])
        var reader = WireReader(encoded)
        #expect(try VSSMessage(from: &reader) == message)
        var unknown = WireReader([0x42] + Array(encoded.dropFirst()))
        #expect(try VSSMessage(from: &unknown).operation.rawValue == 0x42)
    }

    @Test func fileCopyMessagesHaveTheirSizesAndLimits() throws {
        let start = FileCopyMessage(operation: .startFileCopy, serviceID0: GUID.vsockService(port: 1),
                                    content: .start(fileName: "résumé.txt", pathName: "/tmp/in", flags: [.overwrite, .createPath],
                                                    fileSize: 123_456))
        let write = FileCopyMessage(operation: .writeToFile, content: .write(offset: 4096, data: [1, 2, 3]))
        let complete = FileCopyMessage(operation: .completeFileCopy, content: .headerOnly)
        for (message, size) in [(start, 1088), (write, 6196), (complete, 36)] {
            let encoded = try bytes { try message.write(to: &$0) }
            #expect(encoded.count == size)
            var reader = WireReader(encoded)
            #expect(try FileCopyMessage(from: &reader) == message)
            for length in 0..<size {
                var prefix = WireReader(Array(encoded.prefix(length)))
                let error = wireError { () throws(WireError) in try FileCopyMessage(from: &prefix) }
                #expect(isTruncated(error), "prefix \(length) of \(size)")
            }
        }
        var oversize = try bytes { try write.write(to: &$0) }
        oversize.replaceSubrange(48..<52, with: [0x01, 0x18, 0, 0])  // 6145
        var reader = WireReader(oversize)
        #expect(throws: WireError.limitExceeded(name: "fcopy size", value: 6145, limit: 6144)) {
            try FileCopyMessage(from: &reader)
        }
        #expect(FileCopyMessage.linuxDaemonName("résumé.txt") == "rXsumX.txt")
    }
}
