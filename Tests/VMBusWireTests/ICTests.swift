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
            for length in 0..<(message == write ? 52 + 3 : size) {
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
