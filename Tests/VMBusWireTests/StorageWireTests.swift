import Testing
import VMBusWire

private func zeros(_ count: Int) -> [UInt8] { [UInt8](repeating: 0, count: count) }

/// Every prefix of `bytes` shorter than `minimum` must throw `.truncated`.
private func expectTruncatedBelow(
    _ minimum: Int, of bytes: [UInt8], _ parse: (ArraySlice<UInt8>) throws(WireError) -> Void,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    for length in 0..<minimum {
        let error = wireError { () throws(WireError) in try parse(bytes.prefix(length)) }
        #expect(isTruncated(error), "prefix \(length): \(String(describing: error))", sourceLocation: sourceLocation)
    }
}

@Suite struct StorageWirePacketTests {
    /// 10 §2.1 and §10: the sizes Linux's structures have.
    @Test func sizesArePinnedToTheSpec() {
        #expect(StorageProtocol.headerSize == 12)
        #expect(StorageProtocol.packetSize == 64 && StorageProtocol.legacyPacketSize == 48 && StorageProtocol.sizeDelta == 16)
        #expect(SCSIRequest.wireSize == 0x34 && SCSIRequest.legacyWireSize == 0x24 && SCSIRequest.senseAreaSize == 20)
        #expect(StorageChannelProperties.wireSize == 24 && FibreChannelWWN.wireSize == 36)
        for version in [StorageVersion.win6, .win7] {
            #expect(StorageProtocol.packetSize(for: version) == 48 && StorageProtocol.senseBufferSize(for: version) == 18)
        }
        for version in [StorageVersion.win8, .blue, .threshold] {
            #expect(StorageProtocol.packetSize(for: version) == 64 && StorageProtocol.senseBufferSize(for: version) == 20)
        }
        #expect(StoragePacket.request(.executeSRB, body: .request(SCSIRequest())).encode().count == 64)
        #expect(StoragePacket.request(.executeSRB, body: .request(SCSIRequest())).encode(size: nil).count == 64)
        #expect(StoragePacket.request(.beginInitialization).encode(size: nil).count == 12)
        #expect(StorageVersion(major: 6, minor: 0) == .blue && StorageVersion.threshold.description == "6.2")
        // OpenVMM's echo rule: 48 → 48, 50 (56 after padding) → 56, 64 → 64, 72 → 64.
        #expect([48, 56, 64, 72, 0].map(StorageProtocol.replySize(forRequestOfSize:)) == [48, 56, 64, 64, 12])
    }

    /// 10 §9.1: BEGIN_INITIALIZATION from Linux ≥ 5.19 and the host's reply.
    @Test func beginInitializationMatchesLinux() throws {
        let request = StoragePacket.request(.beginInitialization)
        #expect(request.encode() == hexBytes("07 00 00 00 01 00 00 00") + zeros(56))
        #expect(try StoragePacket(parsing: request.encode()[...]) == request)
        let reply = StoragePacket.completion()
        #expect(reply.encode() == hexBytes("01 00 00 00 00 00 00 00") + zeros(56))
        #expect(try StoragePacket(parsing: reply.encode()[...], completing: .beginInitialization) == reply)
    }

    /// 10 §9.2: READ(10) of 4 KiB at LBA 8 to a tagged disk, and its completion.
    @Test func readRequestAndCompletionMatchTheWorkedExample() throws {
        let cdb = SCSICommand.read(SCSIBlockCommand(linuxLBA: 8, blockCount: 8)).encode()
        let srb = SCSIRequest.request(cdb: cdb, direction: .read, transferLength: 0x1000)
        let packet = StoragePacket.request(.executeSRB, body: .request(srb))
        let expected = hexBytes(
            "03 00 00 00 01 00 00 00 00 00 00 00 34 00 00 00 00 00 00 00 0a 14 01 00 00 10 00 00 28 00 00 00"
                + " 00 08 00 00 08 00 00 00 00 00 00 00 00 00 00 00 00 00 ff 20 4a 01 00 00 3c 00 00 00 00 00 00 00")
        #expect(packet.encode() == expected)
        let parsed = try StoragePacket(parsing: expected[...])
        #expect(parsed == packet)
        guard case .request(let request) = parsed.body else {
            Issue.record("not a request")
            return
        }
        #expect(request.srbFlags == [.queueActionEnable, .disableSynchronousTransfer, .dataIn, .noQueueFreeze])
        #expect(try SCSICommand(parsing: request.cdb) == .read(SCSIBlockCommand(form: .ten, lba: 8, blockCount: 8)))

        let completion = StoragePacket.completion(
            body: .request(.completion(srbStatus: .success, scsiStatus: .good, transferred: 0x1000)))
        let completionBytes = hexBytes(
            "01 00 00 00 00 00 00 00 00 00 00 00 34 00 01 00 00 00 00 00 10 14 00 00 00 10 00 00") + zeros(36)
        #expect(completion.encode() == completionBytes)
        #expect(try StoragePacket(parsing: completionBytes[...], completing: .executeSRB) == completion)
        // Without saying what it completes, the body stays raw.
        #expect(try StoragePacket(parsing: completionBytes[...]).body == .raw(Array(completionBytes.dropFirst(12))))
        // The pre-Win8 form is the first 48 bytes.
        #expect(packet.encode(size: 48) == Array(expected.prefix(48)))
    }

    @Test func negotiationBodiesHaveTheirOffsets() throws {
        let version = StoragePacket.request(.queryProtocolVersion, body: .version(.blue, revision: 0))
        #expect(version.encode() == hexBytes("09 00 00 00 01 00 00 00 00 00 00 00 00 06 00 00") + zeros(48))
        let refused = StoragePacket.completion(status: .revisionMismatch, body: .version(.threshold, revision: 0))
        #expect(Array(refused.encode().prefix(16)) == hexBytes("01 00 00 00 00 00 00 00 59 00 00 c0 02 06 00 00"))
        #expect(try StoragePacket(parsing: refused.encode()[...], completing: .queryProtocolVersion) == refused)

        let properties = StoragePacket.completion(body: .properties(.openVMM(version: .blue, subChannels: 7)))
        #expect(Array(properties.encode().prefix(36)) == hexBytes(
            "01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 07 00 00 00 01 00 00 00 00 00 04 00 00 00 00 00 00 00 00 00"))
        #expect(try StoragePacket(parsing: properties.encode()[...], completing: .queryProperties) == properties)
        #expect(StorageChannelProperties.openVMM(version: .win7, subChannels: 7).maximumSubChannelCount == 0)

        let create = StoragePacket.request(.createSubChannels, body: .subChannelCount(3))
        #expect(Array(create.encode().prefix(14)) == hexBytes("0d 00 00 00 01 00 00 00 00 00 00 00 03 00"))
        #expect(try StoragePacket(parsing: create.encode()[...]) == create)

        let wwn = StoragePacket.request(
            .fibreChannelData,
            body: .fibreChannel(FibreChannelWWN(primaryActive: true, primaryPortWWN: 0x1122_3344_5566_7788, primaryNodeWWN: 9)))
        #expect(Array(wwn.encode()[12..<24]) == hexBytes("01 00 00 00 11 22 33 44 55 66 77 88"))
        #expect(try StoragePacket(parsing: wwn.encode()[...]) == wwn)
    }

    /// 10 §8: VERSION < 16, CREATE_SUB_CHANNELS < 14 and anything < 12 are refused; an
    /// EXECUTE_SRB of any length ≥ 12 is zero-extended.
    @Test func truncationAtEveryPrefix() throws {
        let packets: [(StoragePacket, StorageOperation?, Int)] = [
            (.request(.beginInitialization), nil, 12),
            (.request(.queryProtocolVersion, body: .version(.win8, revision: 0)), nil, 16),
            (.request(.createSubChannels, body: .subChannelCount(1)), nil, 14),
            (.completion(body: .properties(.openVMM(version: .win8, subChannels: 1))), .queryProperties, 36),
            (.request(.fibreChannelData, body: .fibreChannel(FibreChannelWWN(primaryActive: false, primaryPortWWN: 1, primaryNodeWWN: 2))), nil, 48),
            (.request(.executeSRB, body: .request(.request(cdb: [0x12, 0, 0, 0, 36, 0], direction: .read, transferLength: 36))), nil, 12),
        ]
        for (packet, completing, minimum) in packets {
            let bytes = packet.encode()
            expectTruncatedBelow(minimum, of: bytes) { (prefix) throws(WireError) in
                _ = try StoragePacket(parsing: prefix, completing: completing)
            }
            if case .request = packet.body { continue }
            #expect(try StoragePacket(parsing: bytes.prefix(minimum), completing: completing).encode() == bytes)
        }
        // Every prefix of a SCSI request reads as the request with the rest zero.
        let srbBytes = packets[5].0.encode()
        for length in 12...64 {
            let parsed = try StoragePacket(parsing: srbBytes.prefix(length))
            #expect(parsed.encode() == Array(srbBytes.prefix(length)) + zeros(64 - length), "prefix \(length)")
        }
    }

    @Test func hostilePacketsParseWithoutTrapping() throws {
        // An unknown operation keeps its bytes; a huge one allocates only what arrived.
        let unknown = hexBytes("63 00 00 00 01 00 00 00 00 00 00 00 aa bb")
        #expect(try StoragePacket(parsing: unknown[...]) == StoragePacket(operation: StorageOperation(rawValue: 99), flags: .requestCompletion, body: .raw([0xAA, 0xBB])))
        #expect(try StoragePacket(parsing: unknown[...]).encode(size: nil) == unknown)
        // cdb_length and sense_info_length beyond the 20-byte area are capped.
        var srb = SCSIRequest.completion(srbStatus: SRBStatus(.error, autosenseValid: true), scsiStatus: .checkCondition, transferred: 0)
        srb.cdbLength = 0xFF
        srb.senseInfoLength = 0xFF
        #expect(srb.cdb.count == 16 && srb.senseData.count == 20)
        // A 1000-byte EXECUTE_SRB reads the first 64.
        let long = StoragePacket.request(.executeSRB, body: .request(srb)).encode() + [UInt8](repeating: 0xEE, count: 936)
        #expect(try StoragePacket(parsing: long[...]) == StoragePacket.request(.executeSRB, body: .request(srb)))
    }

    @Test func statusBytes() {
        #expect(SRBStatus(.error, autosenseValid: true).rawValue == 0x84)
        #expect(SRBStatus(rawValue: 0xC6).code == .invalidRequest && SRBStatus(rawValue: 0xC6).isQueueFrozen)
        #expect(SRBStatus(rawValue: 0xC6).isAutosenseValid && !SRBStatus.success.isAutosenseValid)
        let mapping: [(SRBStatus, UInt32)] = [
            (.success, 0), (.busy, 0x8000_0011), (.invalidLUN, 0xC000_00C0), (.noHBA, 0xC000_00C0),
            (.timeout, 0xC000_00B5), (.selectionTimeout, 0xC000_009D), (.badSRBBlockLength, 0xC000_0010),
            (.dataOverrun, 0x8000_0005), (.requestFlushed, 0xC000_0001), (.aborted, 0xC000_0120),
            (.error, 0xC000_0185), (SRBStatus(.invalidRequest, autosenseValid: true), 0xC000_0185),
        ]
        for (srb, status) in mapping {
            #expect(NTStatus(completing: srb).rawValue == status, "\(srb)")
        }
    }
}

@Suite struct StorageWireSCSITests {
    /// The CDBs Linux sends (10 §6.1), byte-exact.
    @Test func commandsEncodeAsLinuxSendsThem() throws {
        let cases: [(SCSICommand, String)] = [
            (.testUnitReady, "00 00 00 00 00 00"),
            (.inquiry(vitalProductData: false, commandSupportData: false, pageCode: 0, allocationLength: 36), "12 00 00 00 24 00"),
            (.inquiry(vitalProductData: true, commandSupportData: false, pageCode: 0xB0, allocationLength: 64), "12 01 b0 00 40 00"),
            (.reportLUNs(selectReport: 0, allocationLength: 4096), "a0 00 00 00 00 00 00 00 10 00 00 00"),
            (.readCapacity10, "25 00 00 00 00 00 00 00 00 00"),
            (.readCapacity16(allocationLength: 32), "9e 10 00 00 00 00 00 00 00 00 00 00 00 20 00 00"),
            (.modeSense(SCSIModeSense(pageCode: 0x3F, allocationLength: 4)), "1a 00 3f 00 04 00"),
            (.modeSense(SCSIModeSense(form: .ten, pageCode: 0x08, disableBlockDescriptors: true, longLBAAccepted: true, allocationLength: 0x200)),
             "5a 18 08 00 00 00 00 02 00 00"),
            (.read(SCSIBlockCommand(linuxLBA: 8, blockCount: 8)), "28 00 00 00 00 08 00 00 08 00"),
            (.write(SCSIBlockCommand(linuxLBA: 0x1_0000_0000, blockCount: 8, fua: true)), "8a 08 00 00 00 01 00 00 00 00 00 00 00 08 00 00"),
            (.write(SCSIBlockCommand(form: .twelve, lba: 0x0102_0304, blockCount: 0x10000)), "aa 00 01 02 03 04 00 01 00 00 00 00"),
            (.read(SCSIBlockCommand(form: .six, lba: 0x1F_FFFF, blockCount: 256)), "08 1f ff ff 00 00"),
            (.synchronizeCache(SCSISynchronizeCache()), "35 00 00 00 00 00 00 00 00 00"),
            (.synchronizeCache(SCSISynchronizeCache(form: .sixteen, immediate: true, lba: 1, blockCount: 2)), "91 02 00 00 00 00 00 00 00 01 00 00 00 02 00 00"),
            (.unmap(anchor: false, parameterListLength: 24), "42 00 00 00 00 00 00 00 18 00"),
            (.requestSense(descriptorFormat: false, allocationLength: 18), "03 00 00 00 12 00"),
        ]
        for (command, hex) in cases {
            let bytes = hexBytes(hex)
            #expect(command.encode() == bytes, "\(command)")
            #expect(try SCSICommand(parsing: bytes[...]) == command, "\(command)")
            // Zero padding to the 16-byte area (OpenVMM reads all 16) changes nothing.
            #expect(try SCSICommand(parsing: (bytes + zeros(16 - bytes.count))[...]) == command)
            expectTruncatedBelow(bytes.count, of: bytes) { (prefix) throws(WireError) in _ = try SCSICommand(parsing: prefix) }
        }
        #expect(SCSIBlockCommand(linuxLBA: 0, blockCount: 0x10000).form == .sixteen)
    }

    @Test func otherCommandsAreKeptWhole() throws {
        let startStop = hexBytes("1b 01 00 00 01 00")
        #expect(try SCSICommand(parsing: startStop[...]) == .other(.startStopUnit, cdb: startStop))
        // GET LBA STATUS shares READ CAPACITY(16)'s operation code.
        let lbaStatus = hexBytes("9e 12") + zeros(14)
        #expect(try SCSICommand(parsing: lbaStatus[...]).operationCode == .serviceActionIn16)
        #expect(try SCSICommand(parsing: lbaStatus[...]) == .other(.serviceActionIn16, cdb: lbaStatus))
        // A vendor group has no fixed length: up to 16 bytes are kept.
        let vendor = [UInt8](repeating: 0xC5, count: 20)
        #expect(try SCSICommand(parsing: vendor[...]) == .other(SCSIOperationCode(rawValue: 0xC5), cdb: Array(vendor.prefix(16))))
        #expect(try SCSICommand(parsing: vendor[...]).encode() == Array(vendor.prefix(16)))
    }

    /// 10 §6.2: ILLEGAL REQUEST / INVALID COMMAND OPERATION CODE in fixed format.
    @Test func senseDataIsFixedFormat() throws {
        let sense = FixedSenseData(senseKey: .illegalRequest, additionalSense: .invalidCommandOperationCode)
        let bytes = hexBytes("70 00 05 00 00 00 00 0a 00 00 00 00 20 00 00 00 00 00")
        #expect(sense.encode() == bytes)
        #expect(try FixedSenseData(parsing: bytes[...]) == sense)
        let attention = FixedSenseData(senseKey: .unitAttention, additionalSense: .capacityDataChanged, information: 7)
        #expect(try FixedSenseData(parsing: attention.encode()[...]) == attention)
        #expect(attention.encode()[0] == 0xF0 && attention.encode()[12] == 0x2A && attention.encode()[13] == 0x09)
        expectTruncatedBelow(18, of: bytes) { (prefix) throws(WireError) in _ = try FixedSenseData(parsing: prefix) }
        #expect(wireError { () throws(WireError) in try FixedSenseData(parsing: hexBytes("72 05 20 00 00 00 00 00")[...]) }
            == .invalidField(name: "sense response code", value: 0x72))
        // In a completion: AUTOSENSE_VALID, CHECK CONDITION, 18 valid bytes.
        let srb = SCSIRequest.completion(
            srbStatus: SRBStatus(.invalidRequest, autosenseValid: true), scsiStatus: .checkCondition, transferred: 0, sense: bytes)
        #expect(srb.senseInfoLength == 18 && Array(srb.senseData) == bytes)
    }

    /// 10 §6.3: OpenVMM's 104-byte standard INQUIRY data, and the absent-LUN form.
    @Test func inquiryData() throws {
        let disk = InquiryData.disk()
        let bytes = disk.encode()
        #expect(bytes.count == 104)
        #expect(Array(bytes.prefix(36)) == hexBytes("00 00 05 02 63 00 00 02") + Array("Msft    Virtual Disk    1.0 ".utf8))
        #expect(try InquiryData(parsing: bytes[...]) == disk)
        #expect(disk.commandQueueing && disk.responseDataFormat == 2)
        // Cut to Linux's first allocation of 36: the standard fields, no extra.
        let cut = try InquiryData(parsing: bytes.prefix(36))
        #expect(cut.extra.isEmpty && cut.additionalLength == 99 && cut.product == disk.product)
        expectTruncatedBelow(36, of: bytes) { (prefix) throws(WireError) in _ = try InquiryData(parsing: prefix) }
        #expect(InquiryData.noDevice().encode()[0] == 0x7F)
        // Extra bytes beyond the additional length are not kept.
        #expect(try InquiryData(parsing: (Array(bytes.prefix(36)) + zeros(10))[...]).extra.count == 10)
        var short = bytes
        short[4] = 31
        #expect(try InquiryData(parsing: short[...]).extra.isEmpty)
    }

    @Test func vpdPages() throws {
        let supported = VPDSupportedPages(pages: [.supportedPages, .unitSerialNumber, .deviceIdentification, .blockLimits])
        #expect(supported.page.encode() == hexBytes("00 00 00 04 00 80 83 b0"))
        #expect(try VPDSupportedPages(VPDPage(parsing: supported.page.encode()[...])) == supported)

        var limits = VPDBlockLimits()
        limits.maximumUnmapLBACount = 0xFFFF_FFFF
        limits.maximumUnmapBlockDescriptorCount = 4096
        limits.optimalUnmapGranularity = 1
        limits.maximumWriteSameLength = 0x4000
        let limitBytes = limits.page.encode()
        #expect(limitBytes.count == 64 && Array(limitBytes.prefix(4)) == hexBytes("00 b0 00 3c"))
        #expect(Array(limitBytes[20..<32]) == hexBytes("ff ff ff ff 00 00 10 00 00 00 00 01"))
        #expect(Array(limitBytes[36..<44]) == hexBytes("00 00 00 00 00 00 40 00"))
        #expect(try VPDBlockLimits(VPDPage(parsing: limitBytes[...])) == limits)
        // Only the header arrived (allocation 4): the page says how long it is.
        let header = try VPDPage(parsing: limitBytes.prefix(4))
        #expect(header.pageLength == 0x3C && header.data.isEmpty)
        #expect(isTruncated(wireError { () throws(WireError) in try VPDBlockLimits(header) }))

        let characteristics = VPDBlockDeviceCharacteristics()
        #expect(Array(characteristics.page.encode().prefix(8)) == hexBytes("00 b1 00 3c 00 01 00 00"))
        #expect(try VPDBlockDeviceCharacteristics(VPDPage(parsing: characteristics.page.encode()[...])) == characteristics)

        let provisioning = VPDLogicalBlockProvisioning(unmapSupported: true)
        #expect(provisioning.page.encode() == hexBytes("00 b2 00 04 00 80 02 00"))
        #expect(try VPDLogicalBlockProvisioning(VPDPage(parsing: provisioning.page.encode()[...])) == provisioning)
        // A page parsed as another is refused.
        #expect(wireError { () throws(WireError) in try VPDBlockLimits(provisioning.page) } == .unknownType(0xB2))

        let serial = VPDUnitSerialNumber(serial: Array("0123".utf8))
        #expect(try VPDUnitSerialNumber(VPDPage(parsing: serial.page.encode()[...])) == serial)

        let identification = VPDDeviceIdentification(designators: [
            .t10VendorID(vendor: "Msft", id: Array("disk".utf8)), .naa([0x60, 0x02, 0x24, 0x80] + zeros(12)),
        ])
        let idBytes = identification.page.encode()
        #expect(Array(idBytes.prefix(8)) == hexBytes("00 83 00 24 02 01 00 0c"))
        #expect(Array(idBytes[20..<24]) == hexBytes("01 03 00 10"))
        #expect(try VPDDeviceIdentification(VPDPage(parsing: idBytes[...])) == identification)
        // A designator claiming more than the page holds, or a cut page.
        var hostile = idBytes
        hostile[7] = 0xFF
        #expect(isTruncated(wireError { () throws(WireError) in try VPDDeviceIdentification(VPDPage(parsing: hostile[...])) }))
        for length in 0..<idBytes.count {
            #expect(isTruncated(wireError { () throws(WireError) in try VPDDeviceIdentification(VPDPage(parsing: idBytes.prefix(length))) }))
        }
    }

    @Test func readCapacity() throws {
        let rc10 = ReadCapacity10Data(blockCount: 0x1_0000_0001, blockLength: 512)
        #expect(rc10.encode() == hexBytes("ff ff ff ff 00 00 02 00"))
        #expect(try ReadCapacity10Data(parsing: rc10.encode()[...]) == rc10)
        #expect(ReadCapacity10Data(blockCount: 2048, blockLength: 4096).encode() == hexBytes("00 00 07 ff 00 00 10 00"))
        let rc16 = ReadCapacity16Data(lastLBA: 0x1_0000_0000, blockLength: 512, logicalBlocksPerPhysicalBlockExponent: 3, provisioningManagementEnabled: true)
        #expect(rc16.encode() == hexBytes("00 00 00 01 00 00 00 00 00 00 02 00 00 03 80 00") + zeros(16))
        #expect(try ReadCapacity16Data(parsing: rc16.encode()[...]) == rc16)
        expectTruncatedBelow(8, of: rc10.encode()) { (prefix) throws(WireError) in _ = try ReadCapacity10Data(parsing: prefix) }
        expectTruncatedBelow(32, of: rc16.encode()) { (prefix) throws(WireError) in _ = try ReadCapacity16Data(parsing: prefix) }
    }

    /// 10 §6.1: MODE SENSE(6) page 0x3F with allocation 4 gives the header (WP, DPOFUA);
    /// page 0x08 gives WCE.
    @Test func modeSenseAnswers() throws {
        let list = ModeParameterList(
            form: .six, deviceSpecific: ModeParameterHeader.dpoFUAFlag, pages: [CachingModePage(writeCacheEnabled: true).page])
        let bytes = list.encode()
        #expect(bytes == hexBytes("17 00 10 00 08 12 04") + zeros(17))
        #expect(try ModeParameterList(parsing: bytes[...], form: .six) == list)
        let header = try ModeParameterList(parsing: bytes.prefix(4), form: .six)
        #expect(header.pages.isEmpty && header.header.supportsDPOFUA && !header.header.writeProtected && header.header.totalLength == 24)
        // A page cut by the allocation is dropped.
        #expect(try ModeParameterList(parsing: bytes.prefix(10), form: .six).pages.isEmpty)
        #expect(try CachingModePage(#require(ModeParameterList(parsing: bytes[...], form: .six).pages.first)).writeCacheEnabled)
        // OpenVMM's 12-byte caching page reads the same.
        #expect(try CachingModePage(ModePage(pageCode: 8, data: [0x04] + zeros(9))).writeCacheEnabled)

        let ten = ModeParameterList(
            form: .ten, deviceSpecific: ModeParameterHeader.writeProtectFlag, blockDescriptors: zeros(8),
            pages: [ModePage(pageCode: 0x0A, subpageCode: 1, data: [1, 2])])
        let tenBytes = ten.encode()
        #expect(Array(tenBytes.prefix(8)) == hexBytes("00 14 00 80 00 00 00 08"))
        #expect(Array(tenBytes.suffix(6)) == hexBytes("4a 01 00 02 01 02"))
        #expect(try ModeParameterList(parsing: tenBytes[...], form: .ten) == ten)
        expectTruncatedBelow(8, of: tenBytes) { (prefix) throws(WireError) in _ = try ModeParameterList(parsing: prefix, form: .ten) }
        // A block descriptor length far beyond the answer takes only what is there.
        var hostile = tenBytes
        hostile[6] = 0xFF
        hostile[0] = 0xFF
        let parsed = try ModeParameterList(parsing: hostile[...], form: .ten)
        #expect(parsed.blockDescriptors.count == tenBytes.count - 8 && parsed.pages.isEmpty)
    }

    @Test func reportLUNs() throws {
        let list = ReportLUNsData(luns: [0, 1])
        #expect(list.encode() == hexBytes("00 00 00 10 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00 00 00 00"))
        #expect(try ReportLUNsData(parsing: list.encode()[...]) == list)
        #expect(try ReportLUNsData(parsing: list.encode()[...]).entries.map(ReportLUNsData.lun(ofEntry:)) == [0, 1])
        expectTruncatedBelow(8, of: list.encode()) { (prefix) throws(WireError) in _ = try ReportLUNsData(parsing: prefix) }
        // A list length of nearly 4 GiB over 16 bytes of entries: two entries, nothing more.
        var hostile = list.encode()
        hostile[0...3] = [0xFF, 0xFF, 0xFF, 0xF0][...]
        let parsed = try ReportLUNsData(parsing: hostile[...])
        #expect(parsed.entries.count == 2 && parsed.listLength == 0xFFFF_FFF0)
        // Cut inside the second entry: one entry.
        #expect(try ReportLUNsData(parsing: list.encode().prefix(20)).entries.count == 1)
    }

    @Test func unmapParameterList() throws {
        let list = UnmapParameterList(descriptors: [UnmapBlockDescriptor(lba: 0x1000, blockCount: 8)])
        let bytes = list.encode()
        #expect(bytes == hexBytes("00 16 00 10 00 00 00 00 00 00 00 00 00 00 10 00 00 00 00 08 00 00 00 00"))
        #expect(try UnmapParameterList(parsing: bytes[...]) == list)
        #expect(try UnmapParameterList(parsing: (bytes + zeros(100))[...]) == list)
        expectTruncatedBelow(24, of: bytes) { (prefix) throws(WireError) in _ = try UnmapParameterList(parsing: prefix) }
        // 4095 descriptors announced over 8 bytes: refused before allocating.
        #expect(isTruncated(wireError { () throws(WireError) in
            try UnmapParameterList(parsing: hexBytes("ff f6 ff f0 00 00 00 00")[...])
        }))
        #expect(wireError { () throws(WireError) in try UnmapParameterList(parsing: (hexBytes("00 15 00 0f 00 00 00 00") + zeros(15))[...]) }
            == .invalidField(name: "UNMAP block descriptor data length", value: 15))
        #expect(wireError { () throws(WireError) in try UnmapParameterList(parsing: (hexBytes("00 17 00 10 00 00 00 00") + zeros(16))[...]) }
            == .invalidField(name: "UNMAP data length", value: 0x17))
    }
}
