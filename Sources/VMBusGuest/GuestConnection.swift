import VMBusWire

/// The guest (client) side of the VMBus control plane, as a value (01 §5–§7). Local intents go
/// in through the `send`-style methods, host messages through
/// ``receive(_:)-(ArraySlice<UInt8>)``; both return actions. Every host reply is matched
/// against what was asked; anything else is a ``HostMisbehaviour``, never a trap.
public struct GuestConnection {
    enum State {
        case disconnected
        /// Waiting for the VersionResponse to `versions[index]`.
        case contacting(index: Int)
        case connected(version: VMBusVersion, features: FeatureFlags, messageConnectionID: UInt32)
        /// Unload sent; waiting for UnloadResponse.
        case unloading(version: VMBusVersion, messageConnectionID: UInt32)
    }

    /// A channel as the guest sees it (Linux's OFFER / OPENING / OPEN / OPENED, 01 §6).
    enum ChannelState: Hashable {
        case closed
        case opening(openID: UInt32)
        case open
    }

    struct Channel {
        var offer: OfferChannel
        var state: ChannelState
        var rescinded: Bool
        /// The primary's relid, for a sub-channel.
        var primary: UInt32?
        /// Low-latency mode: signal with events even when a monitor id is allocated (05 §4.3).
        var lowLatency = false
    }

    enum GpadlState { case creating, created, tearingDown }

    struct GpadlRecord {
        var channel: UInt32
        var state: GpadlState
    }

    /// What this guest proposes: versions, features, monitor pages, the first GPADL handle.
    public let configuration: GuestConfiguration
    var state: State = .disconnected
    var channels: [UInt32: Channel] = [:]
    var gpadls: [UInt32: GpadlRecord] = [:]
    var nextGpadl: UInt32

    /// A disconnected machine; ``connect()`` starts the negotiation.
    public init(configuration: GuestConfiguration = GuestConfiguration()) {
        self.configuration = configuration
        self.nextGpadl = configuration.firstGpadlHandle
    }

    // MARK: Helper computed properties

    /// The negotiated version, when connected.
    public var version: VMBusVersion? {
        if case .connected(let version, _, _) = self.state { return version }
        return nil
    }

    /// Relids of the channels offered so far.
    public var relids: [UInt32] { self.channels.keys.sorted() }

    /// The offer of a channel.
    public func offer(_ relid: UInt32) -> OfferChannel? { self.channels[relid]?.offer }

    /// Whether a channel is open.
    public func isOpen(_ relid: UInt32) -> Bool { self.channels[relid]?.state == .open }

    // MARK: Sending (local intent)

    /// Starts negotiation with the newest configured version.
    /// - Precondition: disconnected, with at least one version configured.
    public mutating func connect() -> [GuestAction] {
        precondition(!self.configuration.versions.isEmpty, "no versions to propose")
        guard case .disconnected = self.state else { preconditionFailure("connect() while connected") }
        return self.propose(0)
    }

    /// Asks for the offers (once, after connecting).
    public mutating func requestOffers() -> [GuestAction] {
        self.post(.requestOffers)
    }

    /// Describes guest memory to the host for a channel; the handle is chosen here.
    /// - Throws: `WireError` if the ranges cannot be described (empty, too many pages).
    public mutating func createGpadl(channel relid: UInt32, ranges: [GpaRange]) throws(WireError)
        -> (handle: UInt32, actions: [GuestAction])
    {
        let handle = self.nextGpadl
        let (header, bodies) = try Gpadl.split(channel: relid, handle: handle, ranges: ranges)
        self.nextGpadl &+= 1
        if self.nextGpadl == 0 { self.nextGpadl = 1 }
        self.gpadls[handle] = GpadlRecord(channel: relid, state: .creating)
        // Header and bodies go back to back, without waiting (04 §4).
        return (handle, self.post(.gpadlHeader(header)) + bodies.flatMap { self.post(.gpadlBody($0)) })
    }

    /// Opens a channel on its ring GPADL; `openID` is the relid, as Linux does.
    ///
    /// A channel that is not a closed, live offer — most often one the host rescinded a moment
    /// ago — cannot be opened: the answer is then an immediate failed ``GuestAction/opened(channel:status:)``
    /// and nothing is posted (the host would drop the request, 01 §7).
    public mutating func open(
        channel relid: UInt32, ringGpadl: UInt32, downstreamPageOffset: UInt32, targetVP: UInt32 = 0,
        userData: UserDefinedBytes = UserDefinedBytes()
    ) -> [GuestAction] {
        guard var channel = self.channels[relid], channel.state == .closed, !channel.rescinded else {
            return [.opened(channel: relid, status: .unsuccessful)]
        }
        channel.state = .opening(openID: relid)
        self.channels[relid] = channel
        return self.post(.openChannel(OpenChannel(
            childRelID: relid, openID: relid, ringBufferGpadl: ringGpadl, targetVP: targetVP,
            downstreamRingBufferPageOffset: downstreamPageOffset, userData: userData)))
    }

    /// Closes an open channel (no reply exists; tear its ring GPADL down afterwards). A
    /// primary's open sub-channels are closed first (05 §5).
    public mutating func close(channel relid: UInt32) -> [GuestAction] {
        guard let channel = self.channels[relid] else { return [] }
        var actions: [GuestAction] = []
        if channel.primary == nil {
            for sub in self.subChannels(of: relid) { actions += self.close(channel: sub) }
        }
        guard channel.state == .open else { return actions }
        self.channels[relid]?.state = .closed
        // Nothing goes to the host for a rescinded channel: it ignores the close (05 §7.2).
        guard !channel.rescinded else { return actions }
        return actions + self.post(.closeChannel(CloseChannel(childRelID: relid)))
    }

    /// Asks the host for an hvsock connection (07 §3.1): TL_CONNECT_REQUEST, 40-byte form as
    /// Linux sends it. Needs protocol 4.0; otherwise nothing is posted.
    public mutating func connectRequest(endpoint: GUID, service: GUID) -> [GuestAction] {
        guard let version = self.version, version >= .win10 else { return [] }
        return self.post(.tlConnectRequest(TLConnectRequest(guestEndpointID: endpoint, hostServiceID: service)))
    }

    /// Whether the host rescinded a channel the guest has not released yet.
    public func isRescinded(_ relid: UInt32) -> Bool { self.channels[relid]?.rescinded ?? false }

    /// Asks the host to move an open channel's interrupts to another VP (ModifyChannel, 4.1+
    /// hosts accept it; 5.3+ answer). Nothing is posted for a channel that is not open.
    public mutating func modify(channel relid: UInt32, targetVP: UInt32) -> [GuestAction] {
        guard self.channels[relid]?.state == .open, self.channels[relid]?.rescinded == false else { return [] }
        return self.post(.modifyChannel(ModifyChannel(childRelID: relid, targetVP: targetVP)))
    }

    /// The sub-channels of a primary, by sub-channel index.
    public func subChannels(of primary: UInt32) -> [UInt32] {
        self.channels.filter { $0.value.primary == primary }
            .sorted { $0.value.offer.subChannelIndex < $1.value.offer.subChannelIndex }.map(\.key)
    }

    /// The primary of a sub-channel, or `nil` for a primary.
    public func primary(of relid: UInt32) -> UInt32? { self.channels[relid]?.primary }

    /// Puts a channel into (or out of) low-latency mode (05 §4.3).
    public mutating func setLowLatency(channel relid: UInt32, _ on: Bool) {
        self.channels[relid]?.lowLatency = on
    }

    /// How to ring the host's doorbell for a channel (01 §1.2–§1.4, 05 §4.3), or `nil` for an
    /// unknown channel.
    public func signalling(for relid: UInt32) -> Signalling? {
        guard let channel = self.channels[relid] else { return nil }
        let offer = channel.offer
        let monitored = offer.monitorAllocated && offer.monitorID < MonitorPage.monitorIDCount
            && self.configuration.monitorPages.childToParent != 0 && !channel.lowLatency
        return Signalling(
            connectionID: offer.connectionID ?? VMBusConnectionID.event,
            monitorID: monitored ? offer.monitorID : nil,
            setsInterruptPageBit: !offer.isDedicatedInterrupt || monitored)
    }

    /// Tears a GPADL down.
    public mutating func teardownGpadl(_ handle: UInt32) -> [GuestAction] {
        guard let gpadl = self.gpadls[handle], gpadl.state == .created else { return [] }
        self.gpadls[handle]?.state = .tearingDown
        return self.post(.gpadlTeardown(GpadlTeardown(childRelID: gpadl.channel, gpadl: handle)))
    }

    /// Forgets a rescinded channel and tells the host it may reuse the relid.
    public mutating func release(channel relid: UInt32) -> [GuestAction] {
        guard self.channels[relid] != nil else { return [] }
        self.channels[relid] = nil
        for (handle, gpadl) in self.gpadls where gpadl.channel == relid { self.gpadls[handle] = nil }
        return self.post(.relIDReleased(RelIDReleased(childRelID: relid)))
    }

    /// Asks the host to release everything (Linux does this only from 3.0).
    public mutating func unload() -> [GuestAction] {
        guard case .connected(let version, _, let connectionID) = self.state else { return [] }
        let actions = self.post(.unload)
        self.state = .unloading(version: version, messageConnectionID: connectionID)
        return actions
    }

    // MARK: Receiving

    /// Parses and handles one SynIC payload from the host. Types Linux does not know (≥ 25)
    /// are dropped, as Linux drops them.
    public mutating func receive(_ payload: ArraySlice<UInt8>) throws(HostMisbehaviour) -> [GuestAction] {
        let message: ChannelMessage
        do {
            switch self.state {
            case .connected(let version, let features, _):
                message = try ChannelMessage.parse(payload, version: version, features: features)
            case .unloading(let version, _):
                message = try ChannelMessage.parse(payload, version: version)
            case .disconnected, .contacting:
                message = try ChannelMessage.parse(payload, version: nil)
            }
        } catch {
            throw HostMisbehaviour("malformed message: \(error)")
        }
        return try self.receive(message)
    }

    /// Handles one parsed message from the host.
    public mutating func receive(_ message: ChannelMessage) throws(HostMisbehaviour) -> [GuestAction] {
        guard message.type.direction == .hostToGuest else {
            throw HostMisbehaviour("\(message.type.name) travels guest to host")
        }
        switch message {
        case .versionResponse(let response): return try self.receiveVersionResponse(response)
        case .offerChannel(let offer): return try self.receiveOffer(offer)
        case .allOffersDelivered: return [.allOffersDelivered]
        case .rescindChannelOffer(let rescind):
            // Unknown relids are ignored, as Linux does (its offer may have failed).
            guard self.channels[rescind.childRelID] != nil else { return [] }
            self.channels[rescind.childRelID]?.rescinded = true
            self.channels[rescind.childRelID]?.state = .closed
            return [.rescinded(rescind.childRelID)]
        case .gpadlCreated(let created):
            guard let gpadl = self.gpadls[created.gpadl], gpadl.channel == created.childRelID, gpadl.state == .creating else {
                throw HostMisbehaviour("GpadlCreated for (\(created.childRelID), \(created.gpadl)), which was not requested")
            }
            self.gpadls[created.gpadl] = created.status.isSuccess ? GpadlRecord(channel: gpadl.channel, state: .created) : nil
            return [.gpadlCreated(gpadl: created.gpadl, status: created.status)]
        case .openResult(let result):
            guard let channel = self.channels[result.childRelID], channel.state == .opening(openID: result.openID) else {
                throw HostMisbehaviour("OpenResult for (\(result.childRelID), \(result.openID)), which was not requested")
            }
            self.channels[result.childRelID]?.state = result.status.isSuccess ? .open : .closed
            return [.opened(channel: result.childRelID, status: result.status)]
        case .gpadlTorndown(let torndown):
            guard self.gpadls[torndown.gpadl]?.state == .tearingDown else {
                throw HostMisbehaviour("GpadlTorndown for \(torndown.gpadl), which was not being torn down")
            }
            self.gpadls[torndown.gpadl] = nil
            return [.gpadlTornDown(torndown.gpadl)]
        case .unloadResponse:
            guard case .unloading = self.state else { throw HostMisbehaviour("UnloadResponse without Unload") }
            self.state = .disconnected
            self.channels = [:]
            self.gpadls = [:]
            return [.unloaded]
        case .modifyChannelResponse(let response):
            return [.modified(channel: response.childRelID, status: response.status)]
        case .tlConnectResult(let result):
            return [.connectRefused(result)]
        case .closeReservedResponse, .modifyConnectionResponse, .pauseResponse:
            return []
        case .requestOffers, .openChannel, .closeChannel, .gpadlHeader, .gpadlBody, .gpadlTeardown, .relIDReleased,
            .initiateContact, .unload, .openReservedChannel, .closeReservedChannel, .tlConnectRequest, .modifyChannel,
            .modifyConnection, .pause, .resume:
            throw HostMisbehaviour("unexpected \(message.type.name)")
        }
    }

    // MARK: Other state changes

    mutating func receiveVersionResponse(_ response: VersionResponse) throws(HostMisbehaviour) -> [GuestAction] {
        guard case .contacting(let index) = self.state else {
            throw HostMisbehaviour("VersionResponse without InitiateContact")
        }
        let version = self.configuration.versions[index]
        // connection_state is garbage for requests below 2.4 (04 §3.14).
        if response.versionSupported && (version < .win8 || response.connectionState == .successful) {
            let features = version >= .copper ? (response.supportedFeatures ?? []).intersection(self.configuration.features) : []
            let connectionID = version >= .win10_5_0 ? response.messageConnectionID : VMBusConnectionID.message
            self.state = .connected(version: version, features: features, messageConnectionID: connectionID)
            return [.connected(version: version, features: features)]
        }
        guard index + 1 < self.configuration.versions.count else {
            self.state = .disconnected
            return [.connectionFailed]
        }
        return self.propose(index + 1)
    }

    mutating func receiveOffer(_ offer: OfferChannel) throws(HostMisbehaviour) -> [GuestAction] {
        guard case .connected = self.state else { throw HostMisbehaviour("offer while not connected") }
        let relid = offer.childRelID
        // Relids are event-flag bit numbers: 1…2047 (01 §1.2).
        guard relid != 0, relid <= 2047 else { throw HostMisbehaviour("offer with relid \(relid)") }
        guard self.channels[relid] == nil else { throw HostMisbehaviour("second offer for relid \(relid)") }
        // A device is its primary offer; further offers with the same (class, instance) are its
        // sub-channels (05 §2). A second primary for a live device is a host bug: dropped
        // without RELID_RELEASED, as Linux does.
        let primary = self.channels.first {
            $0.value.primary == nil && !$0.value.rescinded && $0.value.offer.interfaceType == offer.interfaceType
                && $0.value.offer.interfaceInstance == offer.interfaceInstance
        }?.key
        if let primary {
            guard offer.subChannelIndex != 0 else {
                throw HostMisbehaviour("offer \(relid) repeats the primary \(primary) of device \(offer.interfaceInstance)")
            }
            guard !self.channels.values.contains(where: { $0.primary == primary && $0.offer.subChannelIndex == offer.subChannelIndex })
            else { throw HostMisbehaviour("second sub-channel \(offer.subChannelIndex) of channel \(primary)") }
            self.channels[relid] = Channel(offer: offer, state: .closed, rescinded: false, primary: primary)
            return [.subChannelOffered(offer, primary: primary)]
        }
        self.channels[relid] = Channel(offer: offer, state: .closed, rescinded: false, primary: nil)
        return [.offered(offer)]
    }

    mutating func propose(_ index: Int) -> [GuestAction] {
        let version = self.configuration.versions[index]
        let c = self.configuration
        let target: InitiateContact.Target = version >= .win10_5_0
            ? .synic(sint: VMBusConnectionID.messageSINT, vtl: version >= .win10_5_1 ? c.vtl : 0,
                     features: version >= .copper ? c.features : [])
            : .interruptPage(c.interruptPage)
        self.state = .contacting(index: index)
        return [.post(.initiateContact(InitiateContact(
            versionRequested: version, targetVCPU: c.targetVCPU, target: target,
            monitorPage1: c.monitorPages.parentToChild, monitorPage2: c.monitorPages.childToParent)),
            connectionID: VMBusConnectionID.initiateContact(for: version))]
    }

    func post(_ message: ChannelMessage) -> [GuestAction] {
        switch self.state {
        case .connected(_, _, let id), .unloading(_, let id): return [.post(message, connectionID: id)]
        case .disconnected, .contacting: return [.post(message, connectionID: VMBusConnectionID.message)]
        }
    }
}
