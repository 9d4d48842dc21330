import Testing
import VMBusWire

/// One IC or hvsock encoding: its bytes, the size the spec pins, the bytes its parser needs,
/// and a parse-then-write of it.
struct ICWireCase: CustomTestStringConvertible, Sendable {
    var name: String
    var encoding: [UInt8]
    /// The encoded size the spec gives (06, 07, 04 §3.1.2).
    var wireSize: Int
    /// The shortest input the parser accepts; every shorter prefix must be `.truncated`.
    var needed: Int
    var reencode: @Sendable (inout WireReader) throws(WireError) -> [UInt8]
    var testDescription: String { self.name }

    init(
        _ name: String, wireSize: Int, needed: Int? = nil, _ write: (inout WireWriter) throws(WireError) -> Void,
        reencode: @escaping @Sendable (inout WireReader) throws(WireError) -> [UInt8]
    ) {
        self.name = name
        var writer = WireWriter()
        do {
            try write(&writer)
        } catch {
            Issue.record("sample \(name) does not encode: \(error)")
        }
        self.encoding = writer.bytes
        self.wireSize = wireSize
        self.needed = needed ?? wireSize
        self.reencode = reencode
    }
}

/// Parses with `parse`, writes with `write`, returns the bytes.
func icReencode<T>(
    _ reader: inout WireReader, _ parse: (inout WireReader) throws(WireError) -> T,
    _ write: (T, inout WireWriter) throws(WireError) -> Void
) throws(WireError) -> [UInt8] {
    let value = try parse(&reader)
    var writer = WireWriter()
    try write(value, &writer)
    return writer.bytes
}

let sampleRecord = KVPRecord(key: "Ключ 🔑", value: .string("värde ✓ 𝄞"))
let sampleIPInfo = KVPIPInfo(
    adapterID: "00:15:5d:00:01:02", addressFamily: .both, dhcpEnabled: 1, ipAddresses: "10.0.0.4;fe80::1",
    subnets: "255.255.255.0;64", gateways: "10.0.0.1", dnsServers: "168.63.129.16")
let sampleBinaryIPInfo = KVPIPInfoBinary(
    counts: [1, 2, 3, 4, 5, 6], adapterID: "{6b2f0a5e-0000-4000-8000-000000000001}", addressFamily: .ipv4,
    dhcpEnabled: 0, areas: KVPIPInfoBinary.areaSizes.enumerated().map { [UInt8](repeating: UInt8($0.offset + 1), count: $0.element) })

func kvpCase(_ name: String, _ message: KVPMessage, size: Int, version: ICVersion = ICVersion(4, 0)) -> ICWireCase {
    ICWireCase(name, wireSize: size, { (w: inout WireWriter) throws(WireError) in try message.write(to: &w) }) {
        (r: inout WireReader) throws(WireError) in
        try icReencode(&r, { (r: inout WireReader) throws(WireError) in try KVPMessage(from: &r, serviceVersion: version) }) {
            (m: KVPMessage, w: inout WireWriter) throws(WireError) in try m.write(to: &w)
        }
    }
}

func fileCopyCase(_ name: String, _ message: FileCopyMessage, size: Int) -> ICWireCase {
    ICWireCase(name, wireSize: size, { (w: inout WireWriter) throws(WireError) in try message.write(to: &w) }) {
        (r: inout WireReader) throws(WireError) in
        try icReencode(&r, { (r: inout WireReader) throws(WireError) in try FileCopyMessage(from: &r) }) {
            (m: FileCopyMessage, w: inout WireWriter) throws(WireError) in try m.write(to: &w)
        }
    }
}

let icWireCases: [ICWireCase] = [
    ICWireCase("pipe header", wireSize: 8, { (w: inout WireWriter) throws(WireError) in
        PipeHeader(type: PipePacketType(rawValue: 77), length: 0xDEAD).write(to: &w)
    }) { (r: inout WireReader) throws(WireError) in
        try icReencode(&r, { (r: inout WireReader) throws(WireError) in try PipeHeader(from: &r) }) { $0.write(to: &$1) }
    },
    ICWireCase("IC version", wireSize: 4, { (w: inout WireWriter) throws(WireError) in ICVersion(3, 2).write(to: &w) }) {
        (r: inout WireReader) throws(WireError) in
        try icReencode(&r, { (r: inout WireReader) throws(WireError) in try ICVersion(from: &r) }) { $0.write(to: &$1) }
    },
    ICWireCase("IC header", wireSize: 20, { (w: inout WireWriter) throws(WireError) in
        ICMessageHeader(
            frameworkVersion: ICVersion(3, 0), messageType: ICMessageType(rawValue: 0x99), messageVersion: ICVersion(7, 1),
            messageSize: 0x1234, status: ICStatus(rawValue: 0x8765_4321), transactionID: 0x42,
            flags: ICFlags(rawValue: 0xF5), reserved: 0xBEEF
        ).write(to: &w)
    }) { (r: inout WireReader) throws(WireError) in
        try icReencode(&r, { (r: inout WireReader) throws(WireError) in try ICMessageHeader(from: &r) }) { $0.write(to: &$1) }
    },
    ICWireCase("IC message (06 §2.4 request)", wireSize: 48, { (w: inout WireWriter) throws(WireError) in
        w.writeBytes(negotiateRequest)
    }) { (r: inout WireReader) throws(WireError) in try ICMessage(payload: r.readRemaining()).encode() },
    ICWireCase("IC negotiate body", wireSize: 28, { (w: inout WireWriter) throws(WireError) in
        try ICNegotiate(frameworkVersions: ICVersions.openVMMFramework, messageVersions: ICVersions.openVMMKVP, reserved: 9)
            .write(to: &w)
    }) { (r: inout WireReader) throws(WireError) in
        try icReencode(&r, { (r: inout WireReader) throws(WireError) in try ICNegotiate(from: &r) }) {
            (v: ICNegotiate, w: inout WireWriter) throws(WireError) in try v.write(to: &w)
        }
    },
    ICWireCase("heartbeat (OpenVMM 16)", wireSize: 16, needed: 8, { (w: inout WireWriter) throws(WireError) in
        HeartbeatMessage(sequenceNumber: 0x0102_0304_0506_0708, applicationState: .critical, reserved: 7).write(to: &w)
    }) { (r: inout WireReader) throws(WireError) in
        try icReencode(&r, { (r: inout WireReader) throws(WireError) in try HeartbeatMessage(from: &r) }) { $0.write(to: &$1) }
    },
    ICWireCase("heartbeat (seq only)", wireSize: 8, { (w: inout WireWriter) throws(WireError) in
        HeartbeatMessage(sequenceNumber: 41, applicationState: nil).write(to: &w)
    }) { (r: inout WireReader) throws(WireError) in
        try icReencode(&r, { (r: inout WireReader) throws(WireError) in try HeartbeatMessage(from: &r) }) { $0.write(to: &$1) }
    },
    ICWireCase("shutdown", wireSize: 2060, { (w: inout WireWriter) throws(WireError) in
        try ShutdownMessage(
            reasonCode: 0x8000_0004, timeoutSeconds: 30, flags: ShutdownFlags(rawValue: 0xF3),
            displayMessage: "Wartung läuft ⚙ 🛠"
        ).write(to: &w)
    }) { (r: inout WireReader) throws(WireError) in
        try icReencode(&r, { (r: inout WireReader) throws(WireError) in try ShutdownMessage(from: &r) }) {
            (v: ShutdownMessage, w: inout WireWriter) throws(WireError) in try v.write(to: &w)
        }
    },
    ICWireCase("timesync < 4.0", wireSize: 28, needed: 25, { (w: inout WireWriter) throws(WireError) in
        TimeSyncMessageV3(parentTime: 1, childTime: 2, roundTripTime: 3, flags: TimeSyncFlags(rawValue: 9)).write(to: &w)
    }) { (r: inout WireReader) throws(WireError) in
        try icReencode(&r, { (r: inout WireReader) throws(WireError) in try TimeSyncMessageV3(from: &r) }) { $0.write(to: &$1) }
    },
    ICWireCase("timesync 4.0", wireSize: 24, needed: 22, { (w: inout WireWriter) throws(WireError) in
        TimeSyncMessageV4(parentTime: FileTime.unixEpoch, vmReferenceTime: 5, flags: .sample, leapIndicator: 1, stratum: 3)
            .write(to: &w)
    }) { (r: inout WireReader) throws(WireError) in
        try icReencode(&r, { (r: inout WireReader) throws(WireError) in try TimeSyncMessageV4(from: &r) }) { $0.write(to: &$1) }
    },
    ICWireCase("KVP value record", wireSize: 2572, { (w: inout WireWriter) throws(WireError) in
        try sampleRecord.write(to: &w)
    }) { (r: inout WireReader) throws(WireError) in
        try icReencode(&r, { (r: inout WireReader) throws(WireError) in try KVPRecord(from: &r) }) {
            (v: KVPRecord, w: inout WireWriter) throws(WireError) in try v.write(to: &w)
        }
    },
    ICWireCase("KVP string IP record", wireSize: 7426, { (w: inout WireWriter) throws(WireError) in
        try sampleIPInfo.write(to: &w)
    }) { (r: inout WireReader) throws(WireError) in
        try icReencode(&r, { (r: inout WireReader) throws(WireError) in try KVPIPInfo(from: &r) }) {
            (v: KVPIPInfo, w: inout WireWriter) throws(WireError) in try v.write(to: &w)
        }
    },
    ICWireCase("KVP binary IP record", wireSize: 3712, { (w: inout WireWriter) throws(WireError) in
        try sampleBinaryIPInfo.write(to: &w)
    }) { (r: inout WireReader) throws(WireError) in
        try icReencode(&r, { (r: inout WireReader) throws(WireError) in try KVPIPInfoBinary(from: &r) }) {
            (v: KVPIPInfoBinary, w: inout WireWriter) throws(WireError) in try v.write(to: &w)
        }
    },
    kvpCase("KVP GET", KVPMessage(operation: .get, pool: .external, content: .record(sampleRecord)), size: 2576),
    kvpCase("KVP SET", KVPMessage(operation: .set, pool: .guest, content: .record(
        KVPRecord(key: "n", value: .dword(0xDEAD_BEEF)))), size: 2576),
    kvpCase("KVP DELETE", KVPMessage(operation: .delete, pool: .guest, content: .delete(key: "gone ✗")), size: 520),
    kvpCase("KVP ENUMERATE", KVPMessage(operation: .enumerate, pool: .auto, content: .enumerate(index: 3, sampleRecord)),
            size: 2580),
    kvpCase("KVP GET_IP_INFO (string)", KVPMessage(operation: .getIPInfo, pool: .external, content: .ipInfo(sampleIPInfo)),
            size: 7428),
    kvpCase("KVP SET_IP_INFO (binary, 5.0)", KVPMessage(operation: .setIPInfo, pool: .external,
                                                        content: .binaryIPInfo(sampleBinaryIPInfo)),
            size: 3716, version: ICVersion(5, 0)),
    ICWireCase("VSS", wireSize: 12, { (w: inout WireWriter) throws(WireError) in
        VSSMessage(operation: VSSOperation(rawValue: 0x42), flags: 0x1234_5678).write(to: &w)
    }) { (r: inout WireReader) throws(WireError) in
        try icReencode(&r, { (r: inout WireReader) throws(WireError) in try VSSMessage(from: &r) }) { $0.write(to: &$1) }
    },
    fileCopyCase("fcopy START_FILE_COPY", FileCopyMessage(
        operation: .startFileCopy, serviceID0: GUID.vsockService(port: 1), serviceID1: GUID.vsockService(port: 2),
        content: .start(fileName: "résumé.txt", pathName: "/tmp/ïn", flags: [.overwrite, .createPath, FileCopyFlags(rawValue: 0x80)],
                        fileSize: 123_456)), size: 1088),
    fileCopyCase("fcopy WRITE_TO_FILE", FileCopyMessage(
        operation: .writeToFile, content: .write(offset: 1 << 40, data: [UInt8](repeating: 0xA5, count: 6144))), size: 6196),
    fileCopyCase("fcopy COMPLETE_FCOPY", FileCopyMessage(operation: .completeFileCopy, content: .headerOnly), size: 36),
    fileCopyCase("fcopy CANCEL_FCOPY", FileCopyMessage(operation: .cancelFileCopy, content: .headerOnly), size: 36),
    ICWireCase("pipe offer area", wireSize: 120, { (w: inout WireWriter) throws(WireError) in
        try PipeOfferParameters(pipeMode: PipeOfferParameters.messageMode, userDefined: Array(1...116)).write(to: &w)
    }) { (r: inout WireReader) throws(WireError) in
        try icReencode(&r, { (r: inout WireReader) throws(WireError) in try PipeOfferParameters(from: &r) }) {
            (v: PipeOfferParameters, w: inout WireWriter) throws(WireError) in try v.write(to: &w)
        }
    },
    ICWireCase("hvsock offer area", wireSize: 120, { (w: inout WireWriter) throws(WireError) in
        HvSockOfferParameters(isForGuestAccept: true, isForGuestContainer: true, version: 1,
                              siloID: GUID.vsockService(port: 9)).write(to: &w)
    }) { (r: inout WireReader) throws(WireError) in
        try icReencode(&r, { (r: inout WireReader) throws(WireError) in try HvSockOfferParameters(from: &r) }) {
            $0.write(to: &$1)
        }
    },
    ICWireCase("hvsock DATA payload", wireSize: 108, { (w: inout WireWriter) throws(WireError) in
        w.writeBytes(try HvSockData.payload([UInt8](repeating: 7, count: 100)))
    }) { (r: inout WireReader) throws(WireError) in
        try HvSockData.payload(HvSockData(payload: r.readRemaining()).data)
    },
    ICWireCase("hvsock FIN payload", wireSize: 8, { (w: inout WireWriter) throws(WireError) in
        w.writeBytes(HvSockData.finPayload)
    }) { (r: inout WireReader) throws(WireError) in
        try HvSockData.payload(HvSockData(payload: r.readRemaining()).data)
    },
]

@Suite struct ICWireFormatTests {
    @Test(arguments: icWireCases)
    func encodesAtItsSpecSizeAndRoundTripsByteForByte(_ c: ICWireCase) {
        #expect(c.encoding.count == c.wireSize)
        var reader = WireReader(c.encoding)
        var again: [UInt8]?
        #expect(wireError { () throws(WireError) in again = try c.reencode(&reader) } == nil)
        #expect(again == c.encoding)
    }

    @Test(arguments: icWireCases)
    func everyPrefixShorterThanNeededIsTruncated(_ c: ICWireCase) {
        var failures: [Int] = []
        for length in 0..<c.needed {
            var reader = WireReader(c.encoding[..<length])
            if !isTruncated(wireError { () throws(WireError) in try c.reencode(&reader) }) { failures.append(length) }
        }
        #expect(failures.isEmpty, "prefixes not rejected as truncated: \(failures.prefix(10))")
        if c.needed < c.wireSize {
            // The optional tail of a body (heartbeat, timesync) is not needed: the shortest
            // accepted input parses.
            var reader = WireReader(c.encoding[..<c.needed])
            #expect(wireError { () throws(WireError) in _ = try c.reencode(&reader) } == nil)
        }
    }

    @Test func wireSizesArePinnedToTheSpec() {
        #expect(PipeHeader.wireSize == 8)
        #expect(ICVersion.wireSize == 4)
        #expect(ICMessageHeader.wireSize == 20)
        #expect(ICMessage.bodyOffset == 28)
        #expect(ICMessage.maximumSize == 13312)
        #expect(ICNegotiate.fixedSize == 8 && ICNegotiate.maximumVersionCount == 100)
        #expect(ICNegotiation.responseBodySize == 16)
        #expect(HeartbeatMessage.minimumSize == 8 && HeartbeatMessage.wireSize == 16 && HeartbeatMessage.linuxSize == 40)
        #expect(ShutdownMessage.wireSize == 2060 && ShutdownMessage.displayMessageSize == 2048)
        #expect(TimeSyncMessageV3.minimumSize == 25 && TimeSyncMessageV3.wireSize == 28)
        #expect(TimeSyncMessageV4.minimumSize == 22 && TimeSyncMessageV4.wireSize == 24)
        #expect(KVPRecord.wireSize == 2572 && KVPRecord.maximumKeySize == 512 && KVPRecord.maximumValueSize == 2048)
        #expect(KVPIPInfo.wireSize == 7426 && KVPIPInfoBinary.wireSize == 3712)
        #expect(KVPIPInfoBinary.areaSizes.reduce(284, +) == KVPIPInfoBinary.wireSize)
        #expect(KVPMessage.valueBodySize == 2576 && KVPMessage.deleteBodySize == 520)
        #expect(KVPMessage.enumerateBodySize == 2580 && KVPMessage.ipInfoBodySize == 7428)
        #expect(KVPMessage.binaryIPInfoBodySize == 3716)
        #expect(VSSMessage.wireSize == 12 && VSSMessage.hotBackupNoAutoRecovery == 5)
        #expect(FileCopyMessage.headerSize == 36 && FileCopyMessage.startSize == 1088)
        #expect(FileCopyMessage.writeSize == 6196 && FileCopyMessage.maximumFragment == 6144)
        #expect(FileCopyMessage.nameFieldSize == 520)
        #expect(PipeOfferParameters.areaSize == 120 && PipeOfferParameters.userDefinedSize == 116)
        #expect(HvSockOfferParameters.usedSize == 28)
    }
}
