import Testing
import VMBusWire

/// One sample of each message, with the version and features it is valid at and the size
/// 04 §2 gives for it.
struct MessageSample: CustomTestStringConvertible, Sendable {
    var message: ChannelMessage
    var version: VMBusVersion?
    var features: FeatureFlags = []
    var size: Int
    /// Size of the smallest form of this type: prefixes shorter than it must be truncated.
    var minimumSize: Int

    init(_ message: ChannelMessage, _ version: VMBusVersion?, _ size: Int, minimum: Int? = nil,
         features: FeatureFlags = []) {
        self.message = message
        self.version = version
        self.size = size
        self.minimumSize = minimum ?? size
        self.features = features
    }

    var testDescription: String { "\(self.message.type.name) (\(self.size) bytes)" }
}

let netClass = GUID("f8615163-df3e-46c5-913f-f2d2f965ed0e") ?? .zero
let instanceA = GUID("00112233-4455-6677-8899-aabbccddeeff") ?? .zero

let sampleOffer = OfferChannel(
    interfaceType: netClass, interfaceInstance: instanceA, flags: [.enumerateDeviceInterface, OfferFlags(rawValue: 0x8000)],
    mmioMegabytes: 7, userDefined: (try? UserDefinedBytes([1, 2, 3, 4, 5])) ?? UserDefinedBytes(),
    subChannelIndex: 3, mmioMegabytesOptional: 9, childRelID: 0x1234_5678, monitorID: 0x42,
    monitorAllocated: true, isDedicatedInterrupt: true, connectionID: 0x2011)

var legacyOffer: OfferChannel {
    var offer = sampleOffer
    offer.interruptFlags = nil
    offer.connectionID = nil
    return offer
}

let allFeatures: FeatureFlags = .allKnown

let messageSamples: [MessageSample] = [
    MessageSample(.offerChannel(sampleOffer), .win10, 196),
    MessageSample(.offerChannel(legacyOffer), .ws2008, 190),
    MessageSample(.rescindChannelOffer(RescindChannelOffer(childRelID: 9)), .win8, 12),
    MessageSample(.requestOffers, .win8, 8),
    MessageSample(.allOffersDelivered, .win8, 8),
    MessageSample(.openChannel(OpenChannel(
        childRelID: 5, openID: 5, ringBufferGpadl: 0xE1E10, targetVP: 3, downstreamRingBufferPageOffset: 4,
        userData: (try? UserDefinedBytes(Array(1...120))) ?? UserDefinedBytes())), .win10_5_3, 148),
    MessageSample(.openChannel(OpenChannel(
        childRelID: 5, openID: 6, ringBufferGpadl: 7, targetVP: OpenChannel.interruptsDisabled,
        downstreamRingBufferPageOffset: 4,
        extension: .init(connectionID: 0x99, eventFlag: 5, flags: [.redirectInterrupt, OpenChannelFlags(rawValue: 0x80)]))),
        .copper, 156, minimum: 148),
    MessageSample(.openResult(OpenResult(childRelID: 5, openID: 5, status: .unsuccessful)), .win8, 20),
    MessageSample(.closeChannel(CloseChannel(childRelID: 5)), .win8, 12),
    MessageSample(.gpadlCreated(GpadlCreated(childRelID: 5, gpadl: 0xE1E10, status: .openVMMFailure)), .win8, 20),
    MessageSample(.gpadlTeardown(GpadlTeardown(childRelID: 5, gpadl: 0xE1E10)), .win8, 16),
    MessageSample(.gpadlTorndown(GpadlTorndown(gpadl: 0xE1E10)), .win8, 12),
    MessageSample(.relIDReleased(RelIDReleased(childRelID: 5)), .win8, 12),
    MessageSample(.initiateContact(InitiateContact(
        versionRequested: .win10_4_1, targetVCPU: 1, target: .interruptPage(0x1234_5000),
        monitorPage1: 0x1000, monitorPage2: 0x2000)), nil, 40),
    MessageSample(.initiateContact(InitiateContact(
        versionRequested: .win10_5_3, target: .synic(sint: 2, vtl: 0, features: []),
        monitorPage1: 0x1000, monitorPage2: 0x2000)), nil, 40),
    MessageSample(.initiateContact(InitiateContact(
        versionRequested: .copper, target: .synic(sint: 2, vtl: 2, features: [.clientID, FeatureFlags(rawValue: 0x100)]),
        clientID: instanceA)), nil, 56, minimum: 40),
    MessageSample(.versionResponse(VersionResponse(versionSupported: true, messageConnectionID: 1)), nil, 16),
    MessageSample(.versionResponse(VersionResponse(
        versionSupported: true, connectionState: ConnectionState(rawValue: 7), messageConnectionID: 4,
        supportedFeatures: [.pauseResume])), nil, 20, minimum: 16),
    MessageSample(.versionResponse(VersionResponse(
        versionSupported: true, messageConnectionID: 4, supportedFeatures: [.serverSpecifiedMonitorPages],
        monitorPages: .init(parentToChild: 0x5000, childToParent: 0x6000))), nil, 40, minimum: 16),
    MessageSample(.unload, .win8, 8),
    MessageSample(.unloadResponse, .win8, 8),
    MessageSample(.openReservedChannel(OpenReservedChannel(
        channelID: 1, targetVP: 2, targetSINT: 3, ringBufferGpadl: 4, downstreamPageOffset: 5)), .win10, 28),
    MessageSample(.closeReservedChannel(CloseReservedChannel(channelID: 1, targetVP: 2, targetSINT: 3)), nil, 20),
    MessageSample(.closeReservedResponse(CloseReservedResponse(channelID: 1)), .win10, 12),
    MessageSample(.tlConnectRequest(TLConnectRequest(guestEndpointID: instanceA, hostServiceID: netClass)),
        .win10, 40),
    MessageSample(.tlConnectRequest(TLConnectRequest(
        guestEndpointID: instanceA, hostServiceID: netClass, siloID: instanceA)), .win10_5_2, 56, minimum: 40),
    MessageSample(.modifyChannel(ModifyChannel(childRelID: 5, targetVP: 7)), .win10_4_1, 16),
    MessageSample(.tlConnectResult(TLConnectResult(endpointID: instanceA, serviceID: netClass,
        status: .connectionRefused)), .win10_4_1, 44),
    MessageSample(.modifyChannelResponse(ModifyChannelResponse(childRelID: 5, status: .success)), .win10_5_3, 16),
    MessageSample(.modifyConnection(ModifyConnection(parentToChildMonitorPage: 1, childToParentMonitorPage: 2)),
        .copper, 24, features: allFeatures),
    MessageSample(.modifyConnectionResponse(ModifyConnectionResponse(connectionState: .failedUnknown)),
        .copper, 9, features: allFeatures),
    MessageSample(.pause, .copper, 8, features: allFeatures),
    MessageSample(.pauseResponse, .copper, 8, features: allFeatures),
    MessageSample(.resume, .copper, 8, features: allFeatures),
]

@Suite struct ChannelMessageTests {
    @Test func samplesCoverEveryMessageType() {
        let covered = Set(messageSamples.map(\.message.type.rawValue))
        // GPADL header and body (8, 9) are covered in GpadlMessageTests.
        #expect(covered.union([8, 9]) == Set(1...29))
    }

    @Test(arguments: messageSamples)
    func roundTripsAtItsSpecSize(_ sample: MessageSample) throws {
        let bytes = try sample.message.encode()
        #expect(bytes.count == sample.size)
        #expect(bytes[0..<4] == [UInt8(sample.message.type.rawValue), 0, 0, 0][...])
        #expect(bytes[4..<8] == [0, 0, 0, 0][...])
        let parsed = try ChannelMessage.parse(
            bytes, version: sample.version, features: sample.features, trailingBytes: .reject)
        #expect(parsed == sample.message)
    }

    @Test(arguments: messageSamples)
    func everyPrefixBelowTheSmallestFormIsTruncated(_ sample: MessageSample) throws {
        let bytes = try sample.message.encode()
        for length in 0..<sample.minimumSize {
            let error = wireError { () throws(WireError) in
                try ChannelMessage.parse(bytes[0..<length], version: sample.version, features: sample.features)
            }
            guard case .truncated = error else {
                Issue.record("prefix of \(length) bytes: expected truncated, got \(String(describing: error))")
                continue
            }
        }
    }

    @Test(arguments: messageSamples.filter { $0.size > $0.minimumSize })
    func prefixesBetweenFormsParseAsTheSmallerFormOrAreRejectedExactly(_ sample: MessageSample) throws {
        let bytes = try sample.message.encode()
        for length in sample.minimumSize..<sample.size {
            let prefix = bytes[0..<length]
            let lenient = try ChannelMessage.parse(prefix, version: sample.version, features: sample.features)
            let reencoded = try lenient.encode()
            #expect(reencoded.count < length || reencoded.count == length)
            #expect(reencoded[...] == bytes[0..<reencoded.count], "the smaller form is a prefix of the larger")
            if reencoded.count < length {
                #expect(throws: WireError.trailingBytes(count: length - reencoded.count)) {
                    try ChannelMessage.parse(prefix, version: sample.version, features: sample.features,
                                             trailingBytes: .reject)
                }
            }
        }
    }

    @Test func offerFieldsSitAtTheirSpecOffsets() throws {
        let bytes = try ChannelMessage.offerChannel(sampleOffer).encode()
        #expect(Array(bytes[8..<24]) == netClass.wireBytes)
        #expect(Array(bytes[24..<40]) == instanceA.wireBytes)
        #expect(Array(bytes[40..<56]) == [UInt8](repeating: 0, count: 16))
        #expect(Array(bytes[56..<60]) == [0x01, 0x80, 7, 0])
        #expect(Array(bytes[60..<66]) == [1, 2, 3, 4, 5, 0])
        #expect(Array(bytes[180..<196]) == [3, 0, 9, 0, 0x78, 0x56, 0x34, 0x12, 0x42, 1, 1, 0, 0x11, 0x20, 0, 0])
    }

    @Test func initiateContactUnionFollowsTheRequestedVersion() throws {
        let legacy = try ChannelMessage.initiateContact(InitiateContact(
            versionRequested: .win10_4_1, targetVCPU: 0, target: .interruptPage(0x1122_3344_5566_7788))).encode()
        #expect(Array(legacy[8..<24]) == [1, 0, 4, 0, 0, 0, 0, 0, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
        let modern = try ChannelMessage.initiateContact(InitiateContact(
            versionRequested: .copper, targetVCPU: 0, target: .synic(sint: 2, vtl: 1, features: [.pauseResume])))
            .encode()
        #expect(Array(modern[8..<24]) == [0, 0, 6, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0x20, 0, 0, 0])
        // 5.x carries no features: bytes 20–23 are reserved and read back as none.
        var raw = try ChannelMessage.initiateContact(InitiateContact(
            versionRequested: .win10_5_2, target: .synic(sint: 2, vtl: 0, features: []))).encode()
        raw[20] = 0xFF
        #expect(try ChannelMessage.parse(raw, version: nil) == .initiateContact(InitiateContact(
            versionRequested: .win10_5_2, target: .synic(sint: 2, vtl: 0, features: []))))
    }

    @Test func initiateContactThatItsVersionCannotCarryIsNotWritten() {
        for contact in [
            InitiateContact(versionRequested: .win10_5_0, target: .interruptPage(0x1000)),
            InitiateContact(versionRequested: .win10_4_1, target: .synic(sint: 2, vtl: 0, features: [])),
            InitiateContact(versionRequested: .win10_5_3, target: .synic(sint: 2, vtl: 0, features: [.clientID])),
            InitiateContact(versionRequested: .win10_5_3, target: .synic(sint: 2, vtl: 0, features: []),
                            clientID: instanceA),
        ] {
            #expect(throws: WireError.self) { try ChannelMessage.initiateContact(contact).encode() }
        }
    }

    @Test func variantsAreGatedByTheNegotiatedVersion() throws {
        // A 56-byte TL connect request below 5.2 is the 40-byte form plus trailing bytes.
        let silo = try ChannelMessage.tlConnectRequest(
            TLConnectRequest(guestEndpointID: instanceA, hostServiceID: netClass, siloID: netClass)).encode()
        #expect(try ChannelMessage.parse(silo, version: .win10_5_1) == .tlConnectRequest(
            TLConnectRequest(guestEndpointID: instanceA, hostServiceID: netClass)))
        #expect(throws: WireError.trailingBytes(count: 16)) {
            try ChannelMessage.parse(silo, version: .win10_5_1, trailingBytes: .reject)
        }
        // The OpenChannel extension exists only at 6.0.
        let open = try ChannelMessage.openChannel(OpenChannel(
            childRelID: 1, openID: 1, ringBufferGpadl: 1, targetVP: 0, downstreamRingBufferPageOffset: 2,
            extension: .init(connectionID: 3, eventFlag: 4))).encode()
        guard case .openChannel(let lower) = try ChannelMessage.parse(open, version: .win10_5_3) else {
            Issue.record("not an OpenChannel")
            return
        }
        #expect(lower.extension == nil)
        // A 196-byte offer read at 0.13 is the 190-byte form.
        guard case .offerChannel(let old) = try ChannelMessage.parse(
            try ChannelMessage.offerChannel(sampleOffer).encode(), version: .ws2008)
        else {
            Issue.record("not an offer")
            return
        }
        #expect(old.isLegacyForm && old.childRelID == sampleOffer.childRelID && !old.isDedicatedInterrupt)
    }

    @Test func messagesBelowTheirVersionOrWithoutTheirFeatureAreNotAllowed() throws {
        let modify = try ChannelMessage.modifyChannel(ModifyChannel(childRelID: 1, targetVP: 1)).encode()
        #expect(throws: WireError.notAllowed(messageType: 22, version: VMBusVersion.win10.rawValue)) {
            try ChannelMessage.parse(modify, version: .win10)
        }
        let pause = try ChannelMessage.pause.encode()
        #expect(throws: WireError.notAllowed(messageType: 27, version: VMBusVersion.copper.rawValue)) {
            try ChannelMessage.parse(pause, version: .copper, features: [.modifyConnection])
        }
        #expect(try ChannelMessage.parse(pause, version: .copper, features: [.pauseResume]) == .pause)
        let unloadResponse = try ChannelMessage.unloadResponse.encode()
        #expect(throws: WireError.notAllowed(messageType: 17, version: VMBusVersion.ws2008.rawValue)) {
            try ChannelMessage.parse(unloadResponse, version: .ws2008)
        }
    }

    @Test func whileDisconnectedOnlyContactVersionAndCloseReservedAreAccepted() throws {
        for sample in messageSamples {
            let bytes = try sample.message.encode()
            let allowed = [14, 15, 19].contains(sample.message.type.rawValue)
            if allowed {
                _ = try ChannelMessage.parse(bytes, version: nil)
            } else {
                #expect(throws: WireError.notAllowed(messageType: sample.message.type.rawValue, version: 0)) {
                    try ChannelMessage.parse(bytes, version: nil, features: sample.features)
                }
            }
        }
    }

    @Test(arguments: [0 as UInt32, 30, 0xFFFF_FFFF])
    func unknownAndInvalidTypesAreUnknown(_ type: UInt32) {
        var writer = WireWriter()
        writer.writeUInt32(type)
        writer.writeUInt32(0)
        writer.writeZeros(32)
        #expect(throws: WireError.unknownType(type)) {
            try ChannelMessage.parse(writer.bytes, version: .copper, features: .allKnown)
        }
        #expect(ChannelMessageType(rawValue: type).name.hasPrefix(type == 0 ? "INVALID" : "UNKNOWN"))
    }

    @Test func payloadsAboveTheSynICLimitAreRejected() throws {
        var bytes = try ChannelMessage.requestOffers.encode()
        bytes += [UInt8](repeating: 0, count: 233)
        #expect(throws: WireError.limitExceeded(name: "SynIC payload size", value: 241, limit: 240)) {
            try ChannelMessage.parse(bytes, version: .win8)
        }
        #expect(try ChannelMessage.parse(bytes.dropLast(), version: .win8) == .requestOffers)
    }

    @Test func unknownFlagsAndStatusesSurviveARoundTrip() throws {
        let result = ChannelMessage.openResult(OpenResult(childRelID: 1, openID: 2,
                                                          status: NTStatus(rawValue: 0xDEAD_BEEF)))
        #expect(try ChannelMessage.parse(try result.encode(), version: .win8) == result)
        guard case .offerChannel(let offer) = try ChannelMessage.parse(
            try ChannelMessage.offerChannel(sampleOffer).encode(), version: .win8) else {
            Issue.record("not an offer")
            return
        }
        #expect(offer.flags.rawValue == 0x8001 && offer.monitorAllocated && offer.monitorID == 0x42)
    }

    @Test func typeTableMatchesSpec04() {
        #expect(ChannelMessageType.offerChannel.direction == .hostToGuest)
        #expect(ChannelMessageType.gpadlBody.direction == .guestToHost)
        #expect(ChannelMessageType.initiateContact.minimumVersion == nil)
        #expect(ChannelMessageType.modifyChannelResponse.minimumVersion == .win10_5_3)
        #expect(ChannelMessageType.resume.requiredFeatures == .pauseResume)
        #expect(ChannelMessageType.tlConnectResult.name == "TL_CONNECT_RESULT")
        #expect(!ChannelMessageType.invalid.isKnown && ChannelMessageType.resume.isKnown)
        #expect(!ChannelMessageType(rawValue: 30).isKnown)
    }
}
