import Testing
import VMBusWire

@Suite struct KVPTests {
    func roundTrip(_ message: KVPMessage, version: ICVersion = ICVersion(4, 0), size: Int) throws {
        let encoded = try bytes { try message.write(to: &$0) }
        #expect(encoded.count == size, "\(message.operation)")
        var reader = WireReader(encoded)
        #expect(try KVPMessage(from: &reader, serviceVersion: version) == message)
        // OpenVMM pads value operations to 2580 bytes: the padding is ignored.
        var padded = WireReader(encoded + [UInt8](repeating: 0, count: 16))
        #expect(try KVPMessage(from: &padded, serviceVersion: version) == message)
        for length in stride(from: 0, to: encoded.count, by: 7) {
            var prefix = WireReader(Array(encoded.prefix(length)))
            let error = wireError { () throws(WireError) in try KVPMessage(from: &prefix, serviceVersion: version) }
            #expect(isTruncated(error), "\(message.operation) prefix \(length)")
        }
    }

    @Test func everyOperationRoundTripsAtItsSize() throws {
        let record = KVPRecord(key: "Ключ 🔑", value: .string("värde ✓ 𝄞"))
        try roundTrip(KVPMessage(operation: .get, pool: .external, content: .record(record)), size: 2576)
        try roundTrip(KVPMessage(operation: .set, pool: .guest, content: .record(
            KVPRecord(key: "n", value: .dword(0xDEAD_BEEF)))), size: 2576)
        try roundTrip(KVPMessage(operation: .delete, pool: .guest, content: .delete(key: "gone")), size: 520)
        try roundTrip(KVPMessage(operation: .enumerate, pool: .auto, content: .enumerate(index: 3, record)), size: 2580)
        try roundTrip(KVPMessage(operation: .getIPInfo, pool: .external, content: .ipInfo(KVPIPInfo(
            adapterID: "00:15:5d:00:01:02", addressFamily: 3, dhcpEnabled: 1, ipAddresses: "10.0.0.4;fe80::1",
            subnets: "255.255.255.0;64", gateways: "10.0.0.1", dnsServers: "168.63.129.16"))), size: 7428)
        let areas = KVPIPInfoBinary.areaSizes.enumerated().map { [UInt8](repeating: UInt8($0.offset), count: $0.element) }
        try roundTrip(KVPMessage(operation: .setIPInfo, pool: .external, content: .binaryIPInfo(KVPIPInfoBinary(
            counts: [1, 2, 3, 4, 5, 6], adapterID: "{guid}", addressFamily: 1, dhcpEnabled: 0, areas: areas))),
            version: ICVersion(5, 0), size: 3716)
    }

    @Test func valueTypesDecodeByTypeAndSize() throws {
        for value in [KVPValue.linuxU64(1 << 40), .qword(7), .expandString("%PATH%"),
                      .raw(type: KVPValueType(rawValue: 3), bytes: [1, 2, 3]), .raw(type: .dword, bytes: [1, 2])] {
            let record = KVPRecord(key: "k", value: value)
            let encoded = try bytes { try record.write(to: &$0) }
            #expect(encoded.count == KVPRecord.wireSize)
            var reader = WireReader(encoded)
            #expect(try KVPRecord(from: &reader).value == value)
        }
        // Strings are written with sizes 2 × (units + 1), as Linux reports them.
        let encoded = try bytes { try KVPRecord(key: "ab", value: .string("xyz")).write(to: &$0) }
        #expect(Array(encoded[0..<12]) == [1, 0, 0, 0, 6, 0, 0, 0, 8, 0, 0, 0])
        #expect(Array(encoded[12..<18]) == [0x61, 0, 0x62, 0, 0, 0])
    }

    @Test func oversizeSizesAreRejected() throws {
        var encoded = try bytes { try KVPRecord(key: "k", value: .string("v")).write(to: &$0) }
        encoded.replaceSubrange(4..<8, with: [0xFF, 0xFF, 0xFF, 0xFF])
        var reader = WireReader(encoded)
        #expect(throws: WireError.limitExceeded(name: "KVP key_size", value: 0xFFFF_FFFF, limit: 512)) {
            try KVPRecord(from: &reader)
        }
        encoded.replaceSubrange(4..<8, with: [4, 0, 0, 0])
        encoded.replaceSubrange(8..<12, with: [0x01, 0x08, 0, 0])
        var reader2 = WireReader(encoded)
        #expect(throws: WireError.limitExceeded(name: "KVP value_size", value: 2049, limit: 2048)) {
            try KVPRecord(from: &reader2)
        }
        #expect(throws: WireError.limitExceeded(name: "KVP key_size", value: 514, limit: 512)) {
            try bytes { try KVPRecord(key: String(repeating: "k", count: 256), value: .dword(1)).write(to: &$0) }
        }
    }

    @Test func unknownOperationsKeepTheirBytes() throws {
        let message = KVPMessage(operation: KVPOperation(rawValue: 9), pool: KVPPool(rawValue: 7), content: .unknown([1, 2, 3]))
        let encoded = try bytes { try message.write(to: &$0) }
        var reader = WireReader(encoded)
        #expect(try KVPMessage(from: &reader, serviceVersion: ICVersion(4, 0)) == message)
    }

    @Test func utf16FieldsNeverTrap() {
        // An unpaired surrogate and an odd trailing byte.
        #expect(UTF16Field.decode([0x00, 0xD8, 0x41, 0x00, 0x42][...]) == "\u{FFFD}A")
        #expect(UTF16Field.decode([0x41, 0x00, 0x00, 0x00, 0x42, 0x00][...]) == "A")
        #expect(UTF16Field.encode("𝄞") == [0x34, 0xD8, 0x1E, 0xDD])
    }
}

extension KVPTests {
    @Test func valuesConvertToAndFromTheRecordFields() throws {
        let cases: [(KVPValue, KVPValueType, [UInt8])] = [
            (.string("xyz"), .string, [0x78, 0, 0x79, 0, 0x7A, 0, 0, 0]),
            (.expandString("%P%"), .expandString, [0x25, 0, 0x50, 0, 0x25, 0, 0, 0]),
            (.dword(0x0102_0304), .dword, [4, 3, 2, 1]),
            (.linuxU64(0x0102_0304_0506_0708), .linuxU64, [8, 7, 6, 5, 4, 3, 2, 1]),
            (.qword(1), .qword, [1, 0, 0, 0, 0, 0, 0, 0]),
            (.raw(type: KVPValueType(rawValue: 0x77), bytes: [5]), KVPValueType(rawValue: 0x77), [5]),
            (.raw(type: .qword, bytes: [1, 2, 3, 4]), .qword, [1, 2, 3, 4]),
        ]
        for (value, type, bytes) in cases {
            #expect(value.valueType == type)
            #expect(try value.encodedBytes() == bytes)
            #expect(KVPValue(type: type, bytes: bytes[...]) == value)
        }
        // A string value is read up to value_size and its first NUL.
        #expect(KVPValue(type: .string, bytes: [0x61, 0, 0, 0, 0x62, 0][...]) == .string("a"))
    }

    @Test func nonASCIIKeysAndValuesAreUTF16LEWithTheirNUL() throws {
        let record = KVPRecord(key: "é🔑", value: .string("日本"))
        let encoded = try bytes { try record.write(to: &$0) }
        #expect(Array(encoded[4..<12]) == [8, 0, 0, 0, 6, 0, 0, 0])  // key_size 8, value_size 6
        #expect(Array(encoded[12..<20]) == [0xE9, 0x00, 0x3D, 0xD8, 0x11, 0xDD, 0x00, 0x00])
        #expect(Array(encoded[524..<530]) == [0xE5, 0x65, 0x2C, 0x67, 0x00, 0x00])
        var reader = WireReader(encoded)
        #expect(try KVPRecord(from: &reader) == record)
        // A lone surrogate in a peer's key decodes to U+FFFD instead of trapping.
        var broken = encoded
        broken.replaceSubrange(14..<16, with: [0x00, 0x00])
        var brokenReader = WireReader(broken)
        #expect(try KVPRecord(from: &brokenReader).key == "é")
        broken.replaceSubrange(12..<16, with: [0x3D, 0xD8, 0x41, 0x00])
        var loneReader = WireReader(broken)
        #expect(try KVPRecord(from: &loneReader).key == "\u{FFFD}A\u{FFFD}")
    }

    @Test func keySizesBoundWhatIsRead() throws {
        var encoded = try bytes {
            try KVPMessage(operation: .delete, pool: KVPPool(rawValue: 9), content: .delete(key: "abcd")).write(to: &$0)
        }
        #expect(Array(encoded[4..<8]) == [10, 0, 0, 0])
        encoded[4] = 4  // only "ab" is claimed
        var reader = WireReader(encoded)
        let parsed = try KVPMessage(from: &reader, serviceVersion: ICVersion(4, 0))
        #expect(parsed.content == .delete(key: "ab") && parsed.pool.rawValue == 9)
    }

    @Test func ipRecordsKeepTheirFieldsAtTheirOffsets() throws {
        let encoded = try bytes { try sampleIPInfo.write(to: &$0) }
        #expect(encoded[256] == 3 && encoded[257] == 1)
        #expect(Array(encoded[258..<262]) == [0x31, 0, 0x30, 0])  // "10"
        #expect(Array(encoded[5378..<5382]) == [0x31, 0, 0x36, 0])  // "16"
        let binary = try bytes { try sampleBinaryIPInfo.write(to: &$0) }
        #expect(Array(binary[0..<8]) == [1, 0, 0, 0, 2, 0, 0, 0] && binary[280] == 1)
        #expect(binary[284] == 1 && binary[540] == 2 && binary[3456] == 9 && binary[3711] == 9)
        let family: KVPAddressFamily = 2
        #expect(family == .ipv6 && KVPAddressFamily.unspecified.rawValue == 0)
    }
}
