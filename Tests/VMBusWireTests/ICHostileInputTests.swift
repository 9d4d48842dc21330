import Testing
import VMBusWire

/// `bytes` with a little-endian u32 stored at `offset`.
func patched32(_ bytes: [UInt8], at offset: Int, _ value: UInt32) -> [UInt8] {
    var writer = WireWriter(bytes: bytes)
    writer.setUInt32(value, at: offset)
    return writer.bytes
}

/// `bytes` with a little-endian u16 stored at `offset`.
func patched16(_ bytes: [UInt8], at offset: Int, _ value: UInt16) -> [UInt8] {
    var writer = WireWriter(bytes: bytes)
    writer.setUInt16(value, at: offset)
    return writer.bytes
}

/// Peer-claimed counts and lengths beyond their limits get their exact typed error, before
/// anything is allocated for them.
@Suite struct ICHostileInputTests {
    let linux = (framework: ICVersions.linuxFramework, service: ICVersions.linuxKVP)

    @Test func negotiationCountsAreCappedAtOneHundred() throws {
        let both = patched16(patched16(negotiateRequest, at: 28, 0xFFFF), at: 30, 0xFFFF)
        #expect(throws: WireError.limitExceeded(name: "framework version count", value: 0xFFFF, limit: 100)) {
            try ICNegotiation.respond(to: both[...], framework: linux.framework, service: linux.service)
        }
        let message = patched16(negotiateRequest, at: 30, 0xFFFF)
        #expect(throws: WireError.limitExceeded(name: "message version count", value: 0xFFFF, limit: 100)) {
            try ICNegotiation.respond(to: message[...], framework: linux.framework, service: linux.service)
        }
        let hundredOne = patched16(negotiateRequest, at: 28, 101)
        var reader = WireReader(hundredOne[28...])
        #expect(throws: WireError.limitExceeded(name: "framework version count", value: 101, limit: 100)) {
            try ICNegotiate(from: &reader)
        }
        // 100 + 100 is allowed, but the list must then be in the packet: 800 bytes claimed, 12 there.
        let hundreds = patched16(patched16(negotiateRequest, at: 28, 100), at: 30, 100)
        var listReader = WireReader(hundreds[28...])
        #expect(throws: WireError.truncated(needed: 800, available: 12)) { try ICNegotiate(from: &listReader) }
        let tooMany = [ICVersion](repeating: ICVersion(1, 0), count: 101)
        #expect(throws: WireError.limitExceeded(name: "message version count", value: 101, limit: 100)) {
            try ICNegotiation.request(framework: [ICVersion(3, 0)], service: tooMany)
        }
    }

    @Test func icFramingLengthsPastTheEndAreTruncated() throws {
        let size = patched16(negotiateRequest, at: 18, 0xFFFF)
        #expect(throws: WireError.truncated(needed: 0xFFFF, available: 20)) { try ICMessage(payload: size[...]) }
        let pipe = patched32(negotiateRequest, at: 4, 0xFFFF_FFFF)
        #expect(throws: WireError.truncated(needed: 0xFFFF_FFFF, available: 40)) { try ICMessage(payload: pipe[...]) }
        #expect(throws: WireError.limitExceeded(name: "IC message size", value: 13313, limit: 13312)) {
            try ICMessage(header: ICMessageHeader(messageType: .kvpExchange, messageSize: 0),
                          body: [UInt8](repeating: 0, count: 13313 - 28))
        }
        // The largest message is fine.
        let largest = try ICMessage(header: ICMessageHeader(messageType: .kvpExchange, messageSize: 0),
                                    body: [UInt8](repeating: 0, count: 13312 - 28))
        #expect(try ICMessage(payload: largest.encode()[...]) == largest)
    }

    @Test func kvpSizesAboveTheirFieldsAreRejected() throws {
        let record = try written { (w: inout WireWriter) throws(WireError) in
            try KVPRecord(key: "k", value: .string("v")).write(to: &w)
        }
        var keyReader = WireReader(patched32(record, at: 4, 0xFFFF_FFFF))
        #expect(throws: WireError.limitExceeded(name: "KVP key_size", value: 0xFFFF_FFFF, limit: 512)) {
            try KVPRecord(from: &keyReader)
        }
        var valueReader = WireReader(patched32(record, at: 8, 0xFFFF_FFFF))
        #expect(throws: WireError.limitExceeded(name: "KVP value_size", value: 0xFFFF_FFFF, limit: 2048)) {
            try KVPRecord(from: &valueReader)
        }
        let delete = try written { (w: inout WireWriter) throws(WireError) in
            try KVPMessage(operation: .delete, pool: .guest, content: .delete(key: "k")).write(to: &w)
        }
        var deleteReader = WireReader(patched32(delete, at: 4, 0xFFFF_FFFF))
        #expect(throws: WireError.limitExceeded(name: "KVP key_size", value: 0xFFFF_FFFF, limit: 512)) {
            try KVPMessage(from: &deleteReader, serviceVersion: ICVersion(4, 0))
        }
        let enumerate = try written { (w: inout WireWriter) throws(WireError) in
            try KVPMessage(operation: .enumerate, pool: .auto, content: .enumerate(index: 0, sampleRecord)).write(to: &w)
        }
        var enumerateReader = WireReader(patched32(enumerate, at: 8 + 4, 513))
        #expect(throws: WireError.limitExceeded(name: "KVP key_size", value: 513, limit: 512)) {
            try KVPMessage(from: &enumerateReader, serviceVersion: ICVersion(4, 0))
        }
        // Exactly at the limits is accepted.
        var atLimit = WireReader(patched32(patched32(record, at: 4, 512), at: 8, 2048))
        #expect(try KVPRecord(from: &atLimit).key == "k")
    }

    @Test func fileCopyFragmentsAboveSixKiBAreRejected() throws {
        let write = try written { (w: inout WireWriter) throws(WireError) in
            try FileCopyMessage(operation: .writeToFile, content: .write(offset: 0, data: [1, 2, 3])).write(to: &w)
        }
        for size: UInt32 in [6145, 0xFFFF_FFFF] {
            var reader = WireReader(patched32(write, at: 48, size))
            #expect(throws: WireError.limitExceeded(name: "fcopy size", value: UInt64(size), limit: 6144)) {
                try FileCopyMessage(from: &reader)
            }
        }
        #expect(throws: WireError.limitExceeded(name: "fcopy size", value: 6145, limit: 6144)) {
            try written { (w: inout WireWriter) throws(WireError) in
                try FileCopyMessage(operation: .writeToFile, content: .write(offset: 0, data: [UInt8](repeating: 0, count: 6145)))
                    .write(to: &w)
            }
        }
        #expect(throws: WireError.limitExceeded(name: "fcopy file_name", value: 522, limit: 520)) {
            try written { (w: inout WireWriter) throws(WireError) in
                try FileCopyMessage(operation: .startFileCopy, content: .start(
                    fileName: String(repeating: "f", count: 260), pathName: "/", flags: [], fileSize: 0)).write(to: &w)
            }
        }
    }

    @Test func hvsockDataSizesFollowLinuxReceiveValidation() throws {
        #expect(throws: WireError.limitExceeded(name: "hvsock data_size", value: 0xFFFF_FFFF, limit: 16384)) {
            try HvSockData(payload: patched32(HvSockData.finPayload, at: 4, 0xFFFF_FFFF)[...])
        }
        #expect(throws: WireError.limitExceeded(name: "hvsock data_size", value: 16385, limit: 16384)) {
            try HvSockData.validate(dataSize: 16385, packetLength: 1 << 20)
        }
        #expect(throws: WireError.truncated(needed: 24, available: 16)) {
            try HvSockData.validate(dataSize: 0, packetLength: 16)
        }
        #expect(throws: WireError.truncated(needed: 24, available: 0)) {
            try HvSockData.validate(dataSize: 0, packetLength: -8)
        }
        // 07 §4.2: data_size ≤ packet length − 24.
        #expect(throws: WireError.truncated(needed: 105, available: 104)) {
            try HvSockData.validate(dataSize: 105, packetLength: 128)
        }
        #expect(try HvSockData.validate(dataSize: 104, packetLength: 128) == 104)
        #expect(try HvSockData.validate(dataSize: 16384, packetLength: HvSock.maximumPacketSize) == 16384)
        #expect(throws: WireError.limitExceeded(name: "hvsock data_size", value: 16385, limit: 16384)) {
            try HvSockData.payload([UInt8](repeating: 0, count: 16385))
        }
    }

    @Test func offerAreasMustBeExactlyOneHundredTwentyBytes() throws {
        let area = HvSockOfferParameters(isForGuestAccept: true).areaBytes
        #expect(throws: WireError.truncated(needed: 120, available: 119)) {
            try HvSockOfferParameters(area: area.dropLast())
        }
        #expect(throws: WireError.trailingBytes(count: 1)) { try HvSockOfferParameters(area: (area + [0])[...]) }
        #expect(throws: WireError.truncated(needed: 120, available: 0)) { try PipeOfferParameters(area: ArraySlice<UInt8>()) }
        #expect(throws: WireError.limitExceeded(name: "pipe user-defined bytes", value: 117, limit: 116)) {
            try PipeOfferParameters(pipeMode: 0, userDefined: [UInt8](repeating: 1, count: 117)).areaBytes()
        }
    }

    @Test func oversizedTextGetsTheFieldsLimit() {
        #expect(throws: WireError.limitExceeded(name: "KVP key_size", value: 514, limit: 512)) {
            try UTF16Field.encodeField(String(repeating: "ä", count: 256), size: 512, name: "KVP key_size")
        }
        // A character outside the BMP is two code units: 64 of them and a NUL need 258 bytes.
        #expect(throws: WireError.limitExceeded(name: "KVP adapter_id", value: 258, limit: 256)) {
            try UTF16Field.encodeField(String(repeating: "𝄞", count: 64), size: 256, name: "KVP adapter_id")
        }
        #expect(throws: WireError.limitExceeded(name: "KVP value_size", value: 2050, limit: 2048)) {
            try KVPValue.string(String(repeating: "v", count: 1024)).encodedBytes()
        }
        #expect(throws: WireError.limitExceeded(name: "KVP value_size", value: 2049, limit: 2048)) {
            try KVPValue.raw(type: .string, bytes: [UInt8](repeating: 0, count: 2049)).encodedBytes()
        }
    }

    @Test func fieldsFilledWithoutANULLoseTheirLastUnitAndStillWriteBack() throws {
        // Found by FuzzIC: a START_FILE_COPY whose path fills all 260 units. Linux's daemon keeps
        // 259 of them; so does the parser, and the value encodes again.
        var start = try written { (w: inout WireWriter) throws(WireError) in
            try FileCopyMessage(operation: .startFileCopy, content: .start(fileName: "f", pathName: "p", flags: [], fileSize: 1))
                .write(to: &w)
        }
        start.replaceSubrange(556..<1076, with: [UInt8](repeating: 0x41, count: 520).enumerated().map { $0.offset % 2 == 0 ? 0x41 : 0 })
        var reader = WireReader(start)
        let parsed = try FileCopyMessage(from: &reader)
        guard case .start(_, let path, _, _) = parsed.content else {
            Issue.record("not a start message")
            return
        }
        #expect(path == String(repeating: "A", count: 259))
        let again = try written { (w: inout WireWriter) throws(WireError) in try parsed.write(to: &w) }
        #expect(again.count == 1088)
        // The same for a KVP key that claims its whole field and a string value without a NUL.
        var record = try written { (w: inout WireWriter) throws(WireError) in
            try KVPRecord(key: "k", value: .string("v")).write(to: &w)
        }
        record = patched32(patched32(record, at: 4, 512), at: 8, 2048)
        record.replaceSubrange(12..<2572, with: [UInt8](repeating: 0x42, count: 2560))
        var recordReader = WireReader(record)
        let kvp = try KVPRecord(from: &recordReader)
        #expect(kvp.key.unicodeScalars.count == 255 && kvp.value == .string(String(repeating: "\u{4242}", count: 1023)))
        #expect(try written { (w: inout WireWriter) throws(WireError) in try kvp.write(to: &w) }.count == 2572)
        #expect(UTF16Field.decode([0x41, 0, 0x42, 0][...], fieldSize: 4) == "A")
        #expect(UTF16Field.decode([0x41, 0][...], fieldSize: 1) == "")
    }

    @Test func garbageNeverTraps() {
        // Every byte value in every position of a small IC message: parsers may throw, never trap.
        for position in 0..<negotiateRequest.count {
            for value in [0x00, 0x01, 0x7F, 0x80, 0xFF] as [UInt8] {
                var bytes = negotiateRequest
                bytes[position] = value
                _ = try? ICMessage(payload: bytes[...])
                _ = try? ICNegotiation.respond(to: bytes[...], framework: linux.framework, service: linux.service)
                var reader = WireReader(bytes[28...])
                _ = try? KVPMessage(from: &reader, serviceVersion: ICVersion(5, 0))
                _ = UTF16Field.decode(bytes[...])
            }
        }
    }
}
