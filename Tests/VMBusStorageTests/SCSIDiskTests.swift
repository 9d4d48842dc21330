import Testing
import VMBusMemory
import VMBusWire

@testable import VMBusStorage

/// The SCSI target of one LUN, command by command (10 §6.2, §6.3), with a buffer in a mapping
/// standing in for guest memory.
@Suite struct SCSIDiskTests {
    let memory: MappedMemory
    let backend: MemoryDisk
    let disk: SCSIDisk

    init() throws {
        self.memory = try MappedMemory.anonymous(size: 1 << 20)
        self.backend = try MemoryDisk(sectorCount: 1 << 16)
        self.disk = SCSIDisk(backend: self.backend, identity: SCSIDiskIdentity(instance: GUID(data1: 1, data2: 2, data3: 3, data4: 4), lun: 0))
    }

    func run(_ command: SCSICommand, _ direction: SCSIDataDirection = .read, bytes: Int = 4096) throws -> (SCSIOutcome, [UInt8]) {
        try self.memory.zero(at: 0, count: bytes)
        let buffer = try MemoryExtents(memory: self.memory, offset: 0, count: bytes)
        let outcome = self.disk.execute(command, direction: direction, buffer: buffer)
        var out = [UInt8](repeating: 0, count: outcome.transferred)
        try self.memory.read(at: 0, count: outcome.transferred, into: &out)
        return (outcome, out)
    }

    @Test func inquiryAnswersAsOpenVMMAndIsCutToTheAllocation() throws {
        let (outcome, bytes) = try self.run(.inquiry(vitalProductData: false, commandSupportData: false, pageCode: 0, allocationLength: 36))
        #expect(outcome.isGood && bytes.count == 36)
        let data = try InquiryData(parsing: bytes[...])
        #expect(data.deviceType == .directAccess && data.peripheralQualifier == 0 && data.version == 5 && data.commandQueueing)
        #expect(Array(bytes[8..<16]) == Array("Msft    ".utf8))
        let (full, all) = try self.run(.inquiry(vitalProductData: false, commandSupportData: false, pageCode: 0, allocationLength: 255))
        #expect(full.isGood && all.count == Int(all[4]) + 5)
        let (refused, _) = try self.run(.inquiry(vitalProductData: false, commandSupportData: false, pageCode: 0x80, allocationLength: 36))
        #expect(refused.sense?.additionalSense == .invalidFieldInCDB && refused.srbStatus.code == .invalidRequest)
    }

    @Test func vitalProductDataListsAndAnswersItsPages() throws {
        let (_, list) = try self.run(.inquiry(vitalProductData: true, commandSupportData: false, pageCode: 0, allocationLength: 255))
        let pages = try VPDSupportedPages(try VPDPage(parsing: list[...])).pages
        #expect(pages == [.supportedPages, .unitSerialNumber, .deviceIdentification, .blockLimits, .blockDeviceCharacteristics, .logicalBlockProvisioning])
        for page in pages {
            let (outcome, bytes) = try self.run(.inquiry(vitalProductData: true, commandSupportData: false, pageCode: page.rawValue, allocationLength: 255))
            #expect(outcome.isGood && bytes[1] == page.rawValue)
        }
        let (_, limits) = try self.run(.inquiry(vitalProductData: true, commandSupportData: false, pageCode: 0xB0, allocationLength: 64))
        let b0 = try VPDBlockLimits(try VPDPage(parsing: limits[...]))
        #expect(limits.count == 64 && b0.maximumUnmapLBACount > 0 && b0.maximumUnmapBlockDescriptorCount > 0)
        let (_, ids) = try self.run(.inquiry(vitalProductData: true, commandSupportData: false, pageCode: 0x83, allocationLength: 255))
        #expect(try VPDDeviceIdentification(try VPDPage(parsing: ids[...])).designators.count == 2)
        let (missing, _) = try self.run(.inquiry(vitalProductData: true, commandSupportData: false, pageCode: 0x89, allocationLength: 255))
        #expect(missing.sense?.additionalSense == .invalidFieldInCDB)
    }

    @Test func capacityAndModePagesDescribeTheDisk() throws {
        let (_, ten) = try self.run(.readCapacity10)
        #expect(try ReadCapacity10Data(parsing: ten[...]) == ReadCapacity10Data(lastLBA: (1 << 16) - 1, blockLength: 512))
        let (_, sixteen) = try self.run(.readCapacity16(allocationLength: 32))
        let capacity = try ReadCapacity16Data(parsing: sixteen[...])
        #expect(capacity.lastLBA == (1 << 16) - 1 && capacity.blockLength == 512 && capacity.provisioningManagementEnabled)
        let (_, header) = try self.run(.modeSense(SCSIModeSense(form: .six, pageCode: SCSIModeSense.allPages, allocationLength: 4)))
        #expect(header.count == 4 && header[2] & ModeParameterHeader.writeProtectFlag == 0)
        let (_, caching) = try self.run(.modeSense(SCSIModeSense(form: .six, pageCode: SCSIModeSense.cachingPage, allocationLength: 255)))
        let list = try ModeParameterList(parsing: caching[...], form: .six)
        #expect(try CachingModePage(try #require(list.pages.first)).writeCacheEnabled)
        let (saved, _) = try self.run(.modeSense(SCSIModeSense(form: .six, pageCode: SCSIModeSense.cachingPage, pageControl: 3, allocationLength: 255)))
        #expect(saved.sense?.additionalSense == .invalidFieldInCDB)
    }

    @Test func transfersAreRangeCheckedAndMoveInPlace() throws {
        try self.memory.write(pattern(1, bytes: 4096)[...], at: 0)
        let buffer = try MemoryExtents(memory: self.memory, offset: 0, count: 4096)
        let write = self.disk.execute(.write(SCSIBlockCommand(linuxLBA: 10, blockCount: 8)), direction: .write, buffer: buffer)
        #expect(write.isGood && write.transferred == 4096)
        #expect(try self.backend.read(at: 5120, count: 4096) == pattern(1, bytes: 4096))
        let (read, bytes) = try self.run(.read(SCSIBlockCommand(linuxLBA: 10, blockCount: 8)))
        #expect(read.isGood && bytes == pattern(1, bytes: 4096))
        for command: SCSICommand in [
            .read(SCSIBlockCommand(linuxLBA: (1 << 16) - 1, blockCount: 2)), .read(SCSIBlockCommand(linuxLBA: 0, blockCount: 0)),
            .read(SCSIBlockCommand(linuxLBA: 0, blockCount: 9)), .read(SCSIBlockCommand(linuxLBA: UInt64.max, blockCount: 1)),
        ] {
            let (outcome, _) = try self.run(command)
            #expect(outcome.sense?.senseKey == .illegalRequest && outcome.sense?.additionalSense == .lbaOutOfRange)
            #expect(outcome.transferred == 0)
        }
    }

    @Test func unmapChecksEveryDescriptorFirst() throws {
        try self.backend.write(at: 0, from: pattern(2, bytes: 65536))
        let good = UnmapParameterList(descriptors: [UnmapBlockDescriptor(lba: 8, blockCount: 8)]).encode()
        try self.memory.write(good[...], at: 0)
        let outcome = self.disk.execute(
            .unmap(anchor: false, parameterListLength: UInt16(good.count)), direction: .write,
            buffer: try MemoryExtents(memory: self.memory, offset: 0, count: good.count))
        #expect(outcome.isGood)
        #expect(try self.backend.read(at: 4096, count: 4096) == [UInt8](repeating: 0, count: 4096))
        // One bad descriptor: nothing is discarded.
        let bad = UnmapParameterList(descriptors: [UnmapBlockDescriptor(lba: 0, blockCount: 8), UnmapBlockDescriptor(lba: 1 << 16, blockCount: 1)]).encode()
        try self.memory.write(bad[...], at: 0)
        let refused = self.disk.execute(
            .unmap(anchor: false, parameterListLength: UInt16(bad.count)), direction: .write,
            buffer: try MemoryExtents(memory: self.memory, offset: 0, count: bad.count))
        #expect(refused.sense?.additionalSense == .lbaOutOfRange)
        #expect(try self.backend.read(at: 0, count: 4096) == Array(pattern(2, bytes: 65536).prefix(4096)))
    }

    @Test func unknownCommandsAreIllegalRequests() throws {
        let (outcome, _) = try self.run(.other(SCSIOperationCode(rawValue: 0x41), cdb: [0x41, 0, 0, 0, 0, 0, 0, 0, 0, 0]))
        #expect(outcome.srbStatus == SRBStatus(.invalidRequest, autosenseValid: true))
        #expect(outcome.scsiStatus == .checkCondition && outcome.sense?.additionalSense == .invalidCommandOperationCode)
        let (ready, _) = try self.run(.testUnitReady, .none)
        #expect(ready.isGood)
    }
}

@Suite struct StorvspNegotiationTests {
    @Test func linuxSettlesOnSixPointZero() {
        var machine = StorvspNegotiation(maximumSubChannels: 3)
        #expect(machine.receive(.request(.beginInitialization)).status == .success)
        #expect(machine.receive(.request(.queryProtocolVersion, body: .version(.threshold, revision: 0))).status == .revisionMismatch)
        #expect(machine.receive(.request(.queryProtocolVersion, body: .version(.blue, revision: 0))).status == .success)
        let properties = machine.receive(.request(.queryProperties))
        guard case .properties(let values) = properties.body else {
            Issue.record("no properties")
            return
        }
        #expect(values.maximumSubChannelCount == 3 && values.flags.contains(.supportsMultiChannel) && values.maximumTransferBytes == 0x40000)
        #expect(machine.receive(.request(.endInitialization)).status == .success)
        let sub = machine.receive(.request(.createSubChannels, body: .subChannelCount(2)))
        #expect(sub.status == .success && sub.createSubChannels == 2)
        // Only once.
        #expect(machine.receive(.request(.createSubChannels, body: .subChannelCount(1))).status == .invalidDeviceState)
        #expect(machine.isReady && machine.version == .blue)
    }

    @Test func oldVersionsGetNoSubChannels() {
        var machine = StorvspNegotiation(maximumSubChannels: 3)
        _ = machine.receive(.request(.beginInitialization))
        _ = machine.receive(.request(.queryProtocolVersion, body: .version(.win7, revision: 0)))
        guard case .properties(let values) = machine.receive(.request(.queryProperties)).body else {
            Issue.record("no properties")
            return
        }
        #expect(values.maximumSubChannelCount == 0 && values.flags.isEmpty)
        #expect(machine.receive(.request(.createSubChannels, body: .subChannelCount(1))).status == .invalidDeviceState)
    }
}
