import Testing
import VMBusWire

@Suite struct GUIDTests {
    @Test func networkClassHasTheMixedEndianWireBytesOfSpec01() throws {
        let guid = try #require(GUID("f8615163-df3e-46c5-913f-f2d2f965ed0e"))
        #expect(guid.wireBytes == [0x63, 0x51, 0x61, 0xf8, 0x3e, 0xdf, 0xc5, 0x46,
                                   0x91, 0x3f, 0xf2, 0xd2, 0xf9, 0x65, 0xed, 0x0e])
        #expect(guid.modalias == "vmbus:635161f83edfc546913ff2d2f965ed0e")
        #expect(guid.data1 == 0xf861_5163 && guid.data2 == 0xdf3e && guid.data3 == 0x46c5)
        #expect(guid.data4 == 0x913f_f2d2_f965_ed0e)
    }

    @Test func textFormRoundTripsAndAcceptsBracesAndUpperCase() throws {
        let text = "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f"
        let guid = try #require(GUID(text))
        #expect(guid.description == text)
        #expect(GUID("{BA6163D9-04A1-4D29-B605-72E2FFB1DC7F}") == guid)
        #expect(try GUID(wireBytes: guid.wireBytes) == guid)
    }

    @Test(arguments: [
        "", "ba6163d9-04a1-4d29-b605-72e2ffb1dc7", "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f0",
        "ba6163d9_04a1-4d29-b605-72e2ffb1dc7f", "ba6163d9-04a1-4d29-b605-72e2ffb1dcxf",
        "{ba6163d9-04a1-4d29-b605-72e2ffb1dc7f", "ba6163d904a14d29b60572e2ffb1dc7f",
        "ba6163d9-04a1-4d29-b605-72e2ffb1dc7fé",
    ])
    func malformedTextIsRejected(_ text: String) {
        #expect(GUID(text) == nil)
    }

    @Test func wireBytesMustBeExactlySixteen() {
        #expect(throws: WireError.truncated(needed: 16, available: 15)) {
            try GUID(wireBytes: [UInt8](repeating: 1, count: 15))
        }
        #expect(throws: WireError.trailingBytes(count: 1)) {
            try GUID(wireBytes: [UInt8](repeating: 1, count: 17))
        }
    }

    @Test func everyByteLandsWhereTheTextSaysSoRoundTripIsExact() throws {
        // Distinct bytes catch any swapped position in either direction.
        let bytes: [UInt8] = Array(0x10..<0x20)
        let guid = try GUID(wireBytes: bytes)
        #expect(guid.description == "13121110-1514-1716-1819-1a1b1c1d1e1f")
        #expect(GUID(guid.description)?.wireBytes == bytes)
    }
}

@Suite struct VersionTests {
    @Test func namedVersionsHaveTheSpecValuesAndOrder() {
        #expect(VMBusVersion.ws2008.rawValue == 0x0000_000D)
        #expect(VMBusVersion.win7.rawValue == 0x0001_0001)
        #expect(VMBusVersion.win8.rawValue == 0x0002_0004)
        #expect(VMBusVersion.win8_1.rawValue == 0x0003_0000)
        #expect(VMBusVersion.win10.rawValue == 0x0004_0000)
        #expect(VMBusVersion.win10_4_1.rawValue == 0x0004_0001)
        #expect(VMBusVersion.win10_5_0.rawValue == 0x0005_0000)
        #expect(VMBusVersion.win10_5_3.rawValue == 0x0005_0003)
        #expect(VMBusVersion.copper.rawValue == 0x0006_0000)
        #expect(VMBusVersion.known == VMBusVersion.known.sorted())
        #expect(VMBusVersion.known.count == 11)
        #expect(VMBusVersion.copper.description == "6.0" && VMBusVersion.ws2008.description == "0.13")
        #expect(!VMBusVersion(major: 5, minor: 4).isKnown && VMBusVersion.win8.isKnown)
    }

    @Test func initiateContactConnectionDependsOnTheProposedVersion() {
        #expect(VMBusConnectionID.initiateContact(for: .win10_4_1) == 1)
        #expect(VMBusConnectionID.initiateContact(for: .win10_5_0) == 4)
        #expect(VMBusConnectionID.openVMMChannel(relid: 5) == 0x2005)
    }

    @Test func offerFlagsAllowedByVersionFollowSpec04() {
        #expect(OfferFlags.allowed(version: .win8_1, features: []).rawValue == 0x11)
        #expect(OfferFlags.allowed(version: .win10, features: []).rawValue == 0x2011)
        #expect(OfferFlags.allowed(version: .copper, features: [.confidentialChannels]).rawValue == 0x2017)
        #expect(OfferFlags.allowed(version: .copper, features: [.gpaPinning]).rawValue == 0x2019)
        #expect(OfferFlags.hvsock.rawValue == 0x2011)
    }
}

@Suite struct DeviceClassTests {
    @Test func everyClassHasAUniqueNonZeroGUIDAndName() {
        let ids = DeviceClass.all.map(\.classID)
        #expect(!ids.contains(.zero))
        #expect(Set(ids).count == ids.count)
        #expect(Set(DeviceClass.all.map(\.name)).count == DeviceClass.all.count)
        #expect(!WellKnownInstance.uarts.contains(.zero) && WellKnownInstance.uarts.count == 4)
        let instances = [WellKnownInstance.shutdown, WellKnownInstance.timeSync, WellKnownInstance.kvp,
                         WellKnownInstance.fileCopy, WellKnownInstance.keyboard, WellKnownInstance.mouse,
                         WellKnownInstance.imc, WellKnownInstance.bootFiles]
        #expect(!instances.contains(.zero))
    }

    @Test func linuxTableOrderAndPropertiesMatchSpec05() {
        let linux = DeviceClass.all.filter {
            if case .supported = $0.linuxSupport { return true } else { return false }
        }
        #expect(linux.map(\.linuxIndex) == Array(0..<16))
        #expect(linux.filter(\.isPerformanceCritical).map(\.linuxName) == ["HV_IDE", "HV_SCSI", "HV_FC", "HV_NIC", "HV_ND"])
        #expect(linux.filter(\.allowedInIsolatedVM).map(\.linuxName)
            == ["HV_SCSI", "HV_NIC", "HV_PCIE", "HV_TS", "HV_HB", "HV_SHUTDOWN"])
        #expect(DeviceClass.fileCopy.preferredRingSize == 0x4000)
        #expect(DeviceClass.avma1.linuxIndex == 16 && DeviceClass.avma1.preferredRingSize == 0x11000)
        #expect(DeviceClass.lookup(DeviceClass.network.classID)?.name == "nic")
        #expect(DeviceClass.named("kvp")?.classID.description == "a9a0f4e7-5a45-4d96-b827-8a841e8c03e6")
    }
}
