/// Every VMBus channel (control) message, parsed (04).
///
/// One case per message type 1–29.
/// ``parse(_:version:features:trailingBytes:)-(ArraySlice<UInt8>,_,_,_)`` is the single
/// dispatch table that maps (type, bytes, negotiated version, features) to a case, including
/// the version-gated and size-discriminated variants; ``encode()`` is its inverse. Every
/// message must fit the 240-byte SynIC payload, on the way in and on the way out.
public enum ChannelMessage: Hashable, Sendable {
    /// 1, host → guest: a device's channel.
    case offerChannel(OfferChannel)
    /// 2, host → guest: a channel is being revoked.
    case rescindChannelOffer(RescindChannelOffer)
    /// 3, guest → host: send every offer; header only.
    case requestOffers
    /// 4, host → guest: the offers present at RequestOffers were all sent; header only.
    case allOffersDelivered
    /// 5, guest → host: open a channel on rings a GPADL describes.
    case openChannel(OpenChannel)
    /// 6, host → guest: the answer to OpenChannel.
    case openResult(OpenResult)
    /// 7, guest → host: stop using a channel's rings.
    case closeChannel(CloseChannel)
    /// 8, guest → host: the first part of a GPADL's range list.
    case gpadlHeader(GpadlHeader)
    /// 9, guest → host: the next page numbers of a GPADL's range list.
    case gpadlBody(GpadlBody)
    /// 10, host → guest: a GPADL is mapped, or refused.
    case gpadlCreated(GpadlCreated)
    /// 11, guest → host: release a GPADL.
    case gpadlTeardown(GpadlTeardown)
    /// 12, host → guest: a GPADL is released.
    case gpadlTorndown(GpadlTorndown)
    /// 13, guest → host: the guest forgot a rescinded channel.
    case relIDReleased(RelIDReleased)
    /// 14, guest → host: propose a version and where messages go.
    case initiateContact(InitiateContact)
    /// 15, host → guest: the answer to InitiateContact.
    case versionResponse(VersionResponse)
    /// 16, guest → host: disconnect; header only.
    case unload
    /// 17, host → guest: the connection is unloaded; header only.
    case unloadResponse
    /// 18, guest → host: open a channel that survives a guest disconnect (kernel debuggers).
    case openReservedChannel(OpenReservedChannel)
    /// 19, guest → host: close a reserved channel.
    case closeReservedChannel(CloseReservedChannel)
    /// 20, host → guest: the answer to CloseReservedChannel.
    case closeReservedResponse(CloseReservedResponse)
    /// 21, guest → host: connect an hvsock to a host service.
    case tlConnectRequest(TLConnectRequest)
    /// 22, guest → host: move a channel's interrupts to another VP.
    case modifyChannel(ModifyChannel)
    /// 23, host → guest: an hvsock connect failed.
    case tlConnectResult(TLConnectResult)
    /// 24, host → guest: the answer to ModifyChannel.
    case modifyChannelResponse(ModifyChannelResponse)
    /// 25, guest → host: change the connection's monitor pages.
    case modifyConnection(ModifyConnection)
    /// 26, host → guest: the answer to ModifyConnection.
    case modifyConnectionResponse(ModifyConnectionResponse)
    /// 27, guest → host: stop sending messages until Resume; header only.
    case pause
    /// 28, host → guest: the host has paused; header only.
    case pauseResponse
    /// 29, guest → host: messages may flow again; header only.
    case resume

    /// The SynIC message payload limit: every channel message, header included, fits in it.
    public static let maximumSize = 240
    /// Size of the common header (msgtype u32, padding u32; 04 §1).
    public static let headerSize = 8

    /// The message's type number.
    public var type: ChannelMessageType {
        switch self {
        case .offerChannel: return .offerChannel
        case .rescindChannelOffer: return .rescindChannelOffer
        case .requestOffers: return .requestOffers
        case .allOffersDelivered: return .allOffersDelivered
        case .openChannel: return .openChannel
        case .openResult: return .openChannelResult
        case .closeChannel: return .closeChannel
        case .gpadlHeader: return .gpadlHeader
        case .gpadlBody: return .gpadlBody
        case .gpadlCreated: return .gpadlCreated
        case .gpadlTeardown: return .gpadlTeardown
        case .gpadlTorndown: return .gpadlTorndown
        case .relIDReleased: return .relIdReleased
        case .initiateContact: return .initiateContact
        case .versionResponse: return .versionResponse
        case .unload: return .unload
        case .unloadResponse: return .unloadResponse
        case .openReservedChannel: return .openReservedChannel
        case .closeReservedChannel: return .closeReservedChannel
        case .closeReservedResponse: return .closeReservedResponse
        case .tlConnectRequest: return .tlConnectRequest
        case .modifyChannel: return .modifyChannel
        case .tlConnectResult: return .tlConnectResult
        case .modifyChannelResponse: return .modifyChannelResponse
        case .modifyConnection: return .modifyConnection
        case .modifyConnectionResponse: return .modifyConnectionResponse
        case .pause: return .pause
        case .pauseResponse: return .pauseResponse
        case .resume: return .resume
        }
    }

    /// Reads the message type of a payload without parsing the rest.
    public static func peekType(_ payload: ArraySlice<UInt8>) throws(WireError) -> ChannelMessageType {
        ChannelMessageType(rawValue: try WireReader(payload).peekUInt32())
    }

    /// Parses one SynIC payload (header included).
    ///
    /// - Parameters:
    ///   - payload: the `payload_size` bytes of the SynIC message.
    ///   - version: the negotiated version; `nil` while disconnected, when only
    ///     InitiateContact, VersionResponse and CloseReservedChannel are accepted.
    ///   - features: the negotiated 6.0 features (gate types 25–29 and some variants).
    ///   - trailingBytes: what to do with bytes after the message (see ``TrailingBytePolicy``).
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` above 240 bytes,
    ///   ``WireError/truncated(needed:available:)``, ``WireError/unknownType(_:)`` for types
    ///   0 and ≥ 30, ``WireError/notAllowed(messageType:version:)`` for messages below their
    ///   minimum version or without their feature, ``WireError/trailingBytes(count:)`` under
    ///   `.reject`, and the per-message field errors.
    public static func parse(
        _ payload: ArraySlice<UInt8>, version: VMBusVersion?, features: FeatureFlags = [],
        trailingBytes: TrailingBytePolicy = .ignore
    ) throws(WireError) -> ChannelMessage {
        try WireError.check("SynIC payload size", payload.count, limit: Self.maximumSize)
        var reader = WireReader(payload)
        let type = ChannelMessageType(rawValue: try reader.readUInt32())
        try reader.skip(4)  // padding: zero by spec, ignored by every receiver
        guard type.isKnown else { throw WireError.unknownType(type.rawValue) }
        guard type.isAllowed(version: version, features: features) else {
            throw WireError.notAllowed(messageType: type.rawValue, version: version?.rawValue ?? 0)
        }
        // `isAllowed` guarantees a version for every type except the three that are valid
        // while disconnected, none of which needs one to be parsed.
        let v = version ?? .ws2008
        let message: ChannelMessage
        switch type {
        case .offerChannel: message = .offerChannel(try OfferChannel(from: &reader, version: v))
        case .rescindChannelOffer: message = .rescindChannelOffer(try RescindChannelOffer(from: &reader))
        case .requestOffers: message = .requestOffers
        case .allOffersDelivered: message = .allOffersDelivered
        case .openChannel: message = .openChannel(try OpenChannel(from: &reader, version: v))
        case .openChannelResult: message = .openResult(try OpenResult(from: &reader))
        case .closeChannel: message = .closeChannel(try CloseChannel(from: &reader))
        case .gpadlHeader: message = .gpadlHeader(try GpadlHeader(from: &reader, trailingBytes: trailingBytes))
        case .gpadlBody: message = .gpadlBody(try GpadlBody(from: &reader, trailingBytes: trailingBytes))
        case .gpadlCreated: message = .gpadlCreated(try GpadlCreated(from: &reader))
        case .gpadlTeardown: message = .gpadlTeardown(try GpadlTeardown(from: &reader))
        case .gpadlTorndown: message = .gpadlTorndown(try GpadlTorndown(from: &reader))
        case .relIdReleased: message = .relIDReleased(try RelIDReleased(from: &reader))
        case .initiateContact: message = .initiateContact(try InitiateContact(from: &reader))
        case .versionResponse: message = .versionResponse(try VersionResponse(from: &reader))
        case .unload: message = .unload
        case .unloadResponse: message = .unloadResponse
        case .openReservedChannel: message = .openReservedChannel(try OpenReservedChannel(from: &reader))
        case .closeReservedChannel: message = .closeReservedChannel(try CloseReservedChannel(from: &reader))
        case .closeReservedResponse: message = .closeReservedResponse(try CloseReservedResponse(from: &reader))
        case .tlConnectRequest: message = .tlConnectRequest(try TLConnectRequest(from: &reader, version: v))
        case .modifyChannel: message = .modifyChannel(try ModifyChannel(from: &reader))
        case .tlConnectResult: message = .tlConnectResult(try TLConnectResult(from: &reader))
        case .modifyChannelResponse: message = .modifyChannelResponse(try ModifyChannelResponse(from: &reader))
        case .modifyConnection: message = .modifyConnection(try ModifyConnection(from: &reader))
        case .modifyConnectionResponse:
            message = .modifyConnectionResponse(try ModifyConnectionResponse(from: &reader))
        case .pause: message = .pause
        case .pauseResponse: message = .pauseResponse
        case .resume: message = .resume
        default:
            // `isKnown` admitted only 1–29, all handled above; a struct-backed type number
            // cannot be matched exhaustively, so the compiler needs this arm.
            throw WireError.unknownType(type.rawValue)
        }
        if trailingBytes == .reject { try reader.expectEnd() }
        return message
    }

    /// Parses a whole array (see ``parse(_:version:features:trailingBytes:)``).
    public static func parse(
        _ payload: [UInt8], version: VMBusVersion?, features: FeatureFlags = [],
        trailingBytes: TrailingBytePolicy = .ignore
    ) throws(WireError) -> ChannelMessage {
        try Self.parse(payload[...], version: version, features: features, trailingBytes: trailingBytes)
    }

    /// Encodes the message with its 8-byte header.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` if the result would not fit the
    ///   240-byte SynIC payload, or a field error for a value its own layout cannot carry.
    public func encode() throws(WireError) -> [UInt8] {
        var writer = WireWriter(capacity: Self.maximumSize)
        writer.writeUInt32(self.type.rawValue)
        writer.writeUInt32(0)
        switch self {
        case .offerChannel(let m): m.write(to: &writer)
        case .rescindChannelOffer(let m): m.write(to: &writer)
        case .openChannel(let m): m.write(to: &writer)
        case .openResult(let m): m.write(to: &writer)
        case .closeChannel(let m): m.write(to: &writer)
        case .gpadlHeader(let m): try m.write(to: &writer)
        case .gpadlBody(let m): try m.write(to: &writer)
        case .gpadlCreated(let m): m.write(to: &writer)
        case .gpadlTeardown(let m): m.write(to: &writer)
        case .gpadlTorndown(let m): m.write(to: &writer)
        case .relIDReleased(let m): m.write(to: &writer)
        case .initiateContact(let m): try m.write(to: &writer)
        case .versionResponse(let m): m.write(to: &writer)
        case .openReservedChannel(let m): m.write(to: &writer)
        case .closeReservedChannel(let m): m.write(to: &writer)
        case .closeReservedResponse(let m): m.write(to: &writer)
        case .tlConnectRequest(let m): m.write(to: &writer)
        case .modifyChannel(let m): m.write(to: &writer)
        case .tlConnectResult(let m): m.write(to: &writer)
        case .modifyChannelResponse(let m): m.write(to: &writer)
        case .modifyConnection(let m): m.write(to: &writer)
        case .modifyConnectionResponse(let m): m.write(to: &writer)
        case .requestOffers, .allOffersDelivered, .unload, .unloadResponse, .pause, .pauseResponse, .resume:
            break
        }
        try WireError.check("SynIC payload size", writer.count, limit: Self.maximumSize)
        return writer.bytes
    }
}
