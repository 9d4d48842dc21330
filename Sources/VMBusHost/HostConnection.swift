import VMBusWire

/// The host (server) side of the VMBus control plane, as a value: feed it the guest's messages
/// with ``receive(_:)-(ArraySlice<UInt8>)`` and local intents with the `send`-style methods;
/// it returns the actions its driver must carry out (01 §5–§6, 04, 05 §7.2).
///
/// Every guest mistake is a thrown ``ProtocolViolation`` naming its scope; nothing the guest
/// sends can trap this machine or make it allocate beyond what a GPADL's u16 length allows.
public struct HostConnection {
    /// The connection as a whole.
    enum State {
        /// No version negotiated: only InitiateContact (and CloseReservedChannel) are valid.
        case disconnected
        /// Connected at a version; `offersSent` once RequestOffers was answered.
        case connected(Negotiated)
    }

    /// What negotiation settled.
    public struct Negotiated: Hashable, Sendable {
        /// The version both sides agreed on.
        public var version: VMBusVersion
        /// The 6.0 features in force: the guest's request intersected with ``HostConfiguration/supportedFeatures``.
        public var features: FeatureFlags
        /// VP for host → guest control messages (honoured from 3.0).
        public var targetVCPU: UInt32
        /// Whether RequestOffers was answered (allowed once per connection).
        public var offersSent: Bool
        /// Host → guest messages are held while paused (6.0 pause/resume).
        public var paused: Bool
        /// GPA of the guest's parent → child monitor page, 0 if none (01 §1.3).
        public var parentToChildMonitorPage: UInt64
        /// GPA of the guest's child → parent monitor page, the one it sets pending bits in.
        public var childToParentMonitorPage: UInt64
        /// Whether the guest gave monitor pages, so monitor ids may be handed out.
        public var monitorPages: Bool { self.childToParentMonitorPage != 0 }
    }

    /// One channel's life on the host (05 §7.2).
    enum ChannelState: Hashable {
        /// Offered, closed: may be opened.
        case closed
        /// OpenChannel accepted; the driver is mapping the rings.
        case opening(openID: UInt32, gpadl: UInt32)
        /// Open on the ring GPADL.
        case open(openID: UInt32, gpadl: UInt32)
        /// Rescinded: waiting for RelIdReleased.
        case revoked
    }

    struct Channel {
        var offer: HostOffer
        var state: ChannelState
        /// The primary's relid, for a sub-channel.
        var primary: UInt32?
        /// Monitor id 0–127 while the device wants MNF and one was free.
        var monitorID: UInt8?
    }

    /// One GPADL's life, by handle.
    enum GpadlState {
        case assembling(GpadlAssembler)
        case mapping([GpaRange])
        case ready([GpaRange])
        case tearingDown
    }

    struct GpadlRecord {
        var channel: UInt32
        var state: GpadlState
    }

    /// What this host accepts: versions, 6.0 features, the message connection id.
    public let configuration: HostConfiguration
    var state: State = .disconnected
    var channels: [UInt32: Channel] = [:]
    var gpadls: [UInt32: GpadlRecord] = [:]

    /// Largest relid: host → guest signals are bits of a 2048-bit event-flag bitmap (01 §1.2).
    public static let maximumRelID: UInt32 = 2047
    /// Failure status of GpadlCreated and ModifyChannelResponse (OpenVMM's value).
    public static let failure = NTStatus.openVMMFailure

    /// A machine waiting for the guest's InitiateContact.
    public init(configuration: HostConfiguration = HostConfiguration()) {
        self.configuration = configuration
    }

    // MARK: Helper computed properties

    /// The negotiated state, or `nil` while disconnected.
    public var negotiated: Negotiated? {
        switch self.state {
        case .disconnected: return nil
        case .connected(let n): return n
        }
    }

    /// Relids of every channel currently offered (revoked ones included until released).
    public var relids: [UInt32] { self.channels.keys.sorted() }

    /// Whether the channel is open.
    public func isOpen(_ relid: UInt32) -> Bool {
        if case .open = self.channels[relid]?.state { return true }
        return false
    }

    // MARK: Sending (local intent)

    /// Adds a device channel; it is offered now if the guest already asked for offers (hot add).
    /// - Returns: the relid chosen (lowest free) and the actions.
    /// - Precondition: fewer than 2047 channels exist (a local capacity limit, not peer input).
    public mutating func addOffer(_ offer: HostOffer) -> (relid: UInt32, actions: [HostAction]) {
        guard let relid = (1...Self.maximumRelID).first(where: { self.channels[$0] == nil }) else {
            preconditionFailure("all 2047 relids are in use")
        }
        self.channels[relid] = Channel(offer: offer, state: .closed, primary: nil, monitorID: self.freeMonitorID(offer))
        guard let n = self.negotiated, n.offersSent else { return (relid, []) }
        return (relid, [.send(.offerChannel(self.offerMessage(relid, version: n.version)))])
    }

    /// The lowest monitor id no channel holds, for a device that wants one; `nil` when all 128
    /// are taken (the channel then uses plain events, which every guest must accept).
    func freeMonitorID(_ offer: HostOffer) -> UInt8? {
        guard offer.wantsMonitor else { return nil }
        let used = Set(self.channels.values.compactMap(\.monitorID))
        return (0..<UInt8(MonitorPage.monitorIDCount)).first { !used.contains($0) }
    }

    /// The relid whose monitor id is `monitorID`, for a driver that scans the guest's
    /// child → parent monitor page (01 §1.3); `nil` for a bit nobody owns.
    public func channel(monitorID: UInt8) -> UInt32? {
        guard self.negotiated?.monitorPages == true else { return nil }
        return self.channels.first { $0.value.monitorID == monitorID && $0.value.state != .revoked }?.key
    }

    /// The monitor id the guest was told for a channel, if any.
    public func monitorID(of relid: UInt32) -> UInt8? {
        guard self.negotiated?.monitorPages == true else { return nil }
        return self.channels[relid]?.monitorID
    }

    /// The sub-channel index of a channel (0 for a primary or an unknown relid).
    public func offerIndex(_ relid: UInt32) -> UInt16 { self.channels[relid]?.offer.subChannelIndex ?? 0 }

    /// The primary channel of a sub-channel, or `nil` for a primary.
    public func primary(of relid: UInt32) -> UInt32? { self.channels[relid]?.primary }

    /// The sub-channels of a primary, in sub-channel index order.
    public func subChannels(of primary: UInt32) -> [UInt32] {
        self.channels.filter { $0.value.primary == primary }
            .sorted { $0.value.offer.subChannelIndex < $1.value.offer.subChannelIndex }.map(\.key)
    }

    /// The device asked (through its own protocol on the primary) for `count` sub-channels
    /// (05 §5): offers the missing ones, with indices 1…count, capped at the device's maximum.
    /// Asking for fewer than exist changes nothing, as in OpenVMM. Needs protocol ≥ 2.4 and an
    /// open primary; otherwise nothing is offered.
    /// - Returns: the relids of all sub-channels now enabled, and the actions.
    public mutating func enableSubChannels(primary: UInt32, count: UInt16) -> (relids: [UInt32], actions: [HostAction]) {
        guard let parent = self.channels[primary], parent.primary == nil, case .open = parent.state,
            let n = self.negotiated, n.version >= .win8
        else { return (self.subChannels(of: primary), []) }
        let existing = Set(self.channels.values.filter { $0.primary == primary }.map(\.offer.subChannelIndex))
        let wanted = min(count, parent.offer.maximumSubChannels)
        guard wanted > 0 else { return (self.subChannels(of: primary), []) }
        var actions: [HostAction] = []
        for index in 1...wanted where !existing.contains(index) {
            guard let relid = (1...Self.maximumRelID).first(where: { self.channels[$0] == nil }) else { break }
            var offer = parent.offer
            offer.subChannelIndex = index
            offer.maximumSubChannels = 0
            self.channels[relid] = Channel(offer: offer, state: .closed, primary: primary, monitorID: self.freeMonitorID(offer))
            if n.offersSent { actions.append(.send(.offerChannel(self.offerMessage(relid, version: n.version)))) }
        }
        return (self.subChannels(of: primary), actions)
    }

    /// Rescinds a channel (05 §7.2). An open channel is closed first; a primary's sub-channels
    /// are rescinded before it (01 §7).
    public mutating func rescind(_ relid: UInt32) -> [HostAction] {
        guard var channel = self.channels[relid] else { return [] }
        var actions: [HostAction] = []
        if channel.primary == nil {
            for sub in self.subChannels(of: relid) where self.channels[sub]?.state != .revoked {
                actions += self.rescind(sub)
            }
        }
        switch channel.state {
        case .open, .opening: actions.append(.closeChannel(relid))
        case .closed, .revoked: break
        }
        guard let n = self.negotiated, n.offersSent else {
            // The guest never saw it: forget it at once.
            self.channels[relid] = nil
            return actions
        }
        channel.state = .revoked
        self.channels[relid] = channel
        // GPADLs still being built on a revoked channel fail (04 §4).
        for (handle, gpadl) in self.gpadls where gpadl.channel == relid {
            if case .assembling = gpadl.state {
                self.gpadls[handle] = nil
                actions.append(Self.gpadlFailed(relid, handle))
            }
        }
        actions.append(.send(.rescindChannelOffer(RescindChannelOffer(childRelID: relid))))
        return actions
    }

    /// The driver mapped (or refused) a GPADL announced by ``HostAction/mapGpadl(channel:gpadl:ranges:)``.
    public mutating func completeGpadl(_ handle: UInt32, accepted: Bool) -> [HostAction] {
        guard let gpadl = self.gpadls[handle], case .mapping(let ranges) = gpadl.state else { return [] }
        self.gpadls[handle] = accepted ? GpadlRecord(channel: gpadl.channel, state: .ready(ranges)) : nil
        return [.send(.gpadlCreated(GpadlCreated(
            childRelID: gpadl.channel, gpadl: handle, status: accepted ? .success : Self.failure)))]
    }

    /// The driver unmapped a GPADL announced by ``HostAction/unmapGpadl(gpadl:)``.
    public mutating func completeTeardown(_ handle: UInt32) -> [HostAction] {
        guard let gpadl = self.gpadls[handle], case .tearingDown = gpadl.state else { return [] }
        self.gpadls[handle] = nil
        return [.send(.gpadlTorndown(GpadlTorndown(gpadl: handle)))]
    }

    /// The driver opened (or failed to open) a channel announced by ``HostAction/openChannel(_:ranges:)``.
    public mutating func completeOpen(_ relid: UInt32, status: NTStatus) -> [HostAction] {
        guard var channel = self.channels[relid], case .opening(let openID, let gpadl) = channel.state else { return [] }
        channel.state = status.isSuccess ? .open(openID: openID, gpadl: gpadl) : .closed
        self.channels[relid] = channel
        return [.send(.openResult(OpenResult(childRelID: relid, openID: openID, status: status)))]
    }

    /// Refuses an hvsock connect request (07 §3.1): TL_CONNECT_RESULT with "connection
    /// refused", for guests whose protocol knows the message (4.1 and later).
    public mutating func refuseConnect(_ request: TLConnectRequest) -> [HostAction] {
        guard let n = self.negotiated, n.version >= .win10_4_1 else { return [] }
        return [.send(.tlConnectResult(TLConnectResult(
            endpointID: request.guestEndpointID, serviceID: request.hostServiceID, status: .connectionRefused)))]
    }

    /// Drops the connection after a guest mistake with connection scope: every channel
    /// closes, every GPADL goes, the guest must connect again.
    public mutating func disconnect() -> [HostAction] {
        guard case .connected = self.state else { return [] }
        return self.reset(reply: false)
    }

    // MARK: Receiving

    /// Parses and handles one SynIC payload from the guest.
    public mutating func receive(_ payload: ArraySlice<UInt8>) throws(ProtocolViolation) -> [HostAction] {
        let message: ChannelMessage
        do {
            let n = self.negotiated
            message = try ChannelMessage.parse(payload, version: n?.version, features: n?.features ?? [])
        } catch {
            throw ProtocolViolation(.connection, "malformed message: \(error)", kind: .malformedMessage)
        }
        return try self.receive(message)
    }

    /// Handles one parsed message from the guest.
    public mutating func receive(_ message: ChannelMessage) throws(ProtocolViolation) -> [HostAction] {
        guard message.type.direction == .guestToHost else {
            throw ProtocolViolation(.connection, "\(message.type.name) travels host to guest", kind: .unexpectedMessage)
        }
        if case .initiateContact(let contact) = message { return self.receiveInitiateContact(contact) }
        if case .closeReservedChannel(let close) = message {
            return [.send(.closeReservedResponse(CloseReservedResponse(channelID: close.channelID)))]
        }
        guard case .connected(var n) = self.state else {
            throw ProtocolViolation(.connection, "\(message.type.name) before a version was negotiated", kind: .notConnected)
        }
        switch message {
        case .requestOffers:
            guard !n.offersSent else { throw ProtocolViolation(.connection, "RequestOffers twice", kind: .unexpectedMessage) }
            n.offersSent = true
            self.state = .connected(n)
            var actions = self.channels.keys.sorted().map { HostAction.send(.offerChannel(self.offerMessage($0, version: n.version))) }
            actions.append(.send(.allOffersDelivered))
            return actions
        case .gpadlHeader(let header): return try self.receiveGpadlHeader(header)
        case .gpadlBody(let body): return try self.receiveGpadlBody(body)
        case .gpadlTeardown(let teardown): return try self.receiveGpadlTeardown(teardown)
        case .openChannel(let open): return try self.receiveOpen(open)
        case .closeChannel(let close): return try self.receiveClose(close.childRelID)
        case .relIDReleased(let released): return try self.receiveRelIDReleased(released.childRelID)
        case .unload: return self.reset(reply: n.version >= .win7)
        case .modifyChannel(let modify):
            guard self.isOpen(modify.childRelID) else {
                throw ProtocolViolation(.channel(modify.childRelID), "ModifyChannel on a channel that is not open", kind: .channelState)
            }
            var actions: [HostAction] = [.retarget(channel: modify.childRelID, targetVP: modify.targetVP)]
            if n.version >= .win10_5_3 {
                actions.append(.send(.modifyChannelResponse(ModifyChannelResponse(childRelID: modify.childRelID, status: .success))))
            }
            return actions
        case .tlConnectRequest(let request): return [.connectRequest(request)]
        case .modifyConnection(let modify):
            let valid = (modify.parentToChildMonitorPage == 0) == (modify.childToParentMonitorPage == 0)
            return [.send(.modifyConnectionResponse(ModifyConnectionResponse(
                connectionState: valid ? .successful : .failedUnknown)))]
        case .pause:
            n.paused = true
            self.state = .connected(n)
            return [.send(.pauseResponse)]
        case .resume:
            n.paused = false
            self.state = .connected(n)
            return []
        case .openReservedChannel(let open):
            throw ProtocolViolation(.channel(open.channelID), "reserved channels are not supported", kind: .unsupported)
        case .initiateContact, .closeReservedChannel, .offerChannel, .rescindChannelOffer, .allOffersDelivered, .openResult,
            .gpadlCreated, .gpadlTorndown, .versionResponse, .unloadResponse, .closeReservedResponse, .tlConnectResult,
            .modifyChannelResponse, .modifyConnectionResponse, .pauseResponse:
            // Handled above (the first two) or rejected by the direction check.
            throw ProtocolViolation(.connection, "unexpected \(message.type.name)", kind: .unexpectedMessage)
        }
    }

    // MARK: Other state changes

    /// 01 §5.2: accept exactly-known versions within the configured range; a new contact while
    /// connected first tears the old connection down.
    mutating func receiveInitiateContact(_ contact: InitiateContact) -> [HostAction] {
        var actions: [HostAction] = []
        if case .connected = self.state { actions += self.reset(reply: false) }
        let version = contact.versionRequested
        let c = self.configuration
        guard version.isKnown, version >= c.minimumVersion, version <= c.maximumVersion else {
            // The substrate must answer every contact (spec 09 §2.1): "not supported".
            actions.append(.send(.versionResponse(VersionResponse(versionSupported: false, messageConnectionID: 0))))
            return actions
        }
        guard (contact.monitorPage1 == 0) == (contact.monitorPage2 == 0) else {
            actions.append(.send(.versionResponse(VersionResponse(
                versionSupported: true, connectionState: .failedUnknown, messageConnectionID: 0))))
            return actions
        }
        let features = version >= .copper ? contact.requestedFeatures.intersection(c.supportedFeatures) : []
        self.state = .connected(Negotiated(
            version: version, features: features, targetVCPU: version >= .win8_1 ? contact.targetVCPU : 0,
            offersSent: false, paused: false, parentToChildMonitorPage: contact.monitorPage1,
            childToParentMonitorPage: contact.monitorPage2))
        let connectionID = version >= .win10_5_0 ? c.messageConnectionID : version.rawValue
        actions.append(.send(.versionResponse(VersionResponse(
            versionSupported: true, messageConnectionID: connectionID,
            supportedFeatures: version >= .copper ? features : nil))))
        return actions
    }

    /// Unload or reconnect: close every channel, drop every GPADL, forget revoked relids.
    mutating func reset(reply: Bool) -> [HostAction] {
        var actions: [HostAction] = []
        for relid in self.channels.keys.sorted() {
            switch self.channels[relid]?.state {
            case .open?, .opening?: actions.append(.closeChannel(relid))
            case .revoked?:
                self.channels[relid] = nil
                continue
            case .closed?, nil: break
            }
            // Sub-channels exist only while a driver asked for them; it asks again after a
            // reconnect (05 §8).
            if self.channels[relid]?.primary != nil {
                self.channels[relid] = nil
                continue
            }
            self.channels[relid]?.state = .closed
        }
        self.gpadls = [:]
        self.state = .disconnected
        actions.append(.resetConnection)
        if reply { actions.append(.send(.unloadResponse)) }
        return actions
    }

    /// The answer that fails one GPADL (and nothing else).
    static func gpadlFailed(_ relid: UInt32, _ gpadl: UInt32) -> HostAction {
        .send(.gpadlCreated(GpadlCreated(childRelID: relid, gpadl: gpadl, status: Self.failure)))
    }

    func offerMessage(_ relid: UInt32, version: VMBusVersion) -> OfferChannel {
        // The caller looked the relid up in `channels`.
        let offer = self.channels[relid]?.offer ?? HostOffer(interfaceType: .zero, interfaceInstance: .zero)
        let monitorID = self.monitorID(of: relid)
        var message = OfferChannel(
            interfaceType: offer.interfaceType, interfaceInstance: offer.interfaceInstance,
            flags: offer.flags.intersection(OfferFlags.allowed(version: version, features: self.negotiated?.features ?? [])),
            mmioMegabytes: offer.mmioMegabytes, userDefined: offer.userDefined,
            subChannelIndex: version >= .win8 ? offer.subChannelIndex : 0, childRelID: relid,
            monitorID: monitorID ?? MonitorPage.noMonitorID, monitorAllocated: monitorID != nil, isDedicatedInterrupt: true,
            connectionID: VMBusConnectionID.openVMMChannel(relid: relid))
        if version < .win7 {
            message.interruptFlags = nil
            message.connectionID = nil
        }
        return message
    }
}
