import VMBusChannel
import VMBusMemory
import VMBusWire

/// The host's VMBus: runs a ``HostConnection`` against one guest through a ``HostTransport``,
/// maps GPADLs, opens channels for the registered ``HostDevice``s and routes the guest's
/// doorbells to them. The thin driver of the state machine (style §3): messages are handled
/// one at a time, device callbacks run after the bus lock is released.
///
/// A guest mistake never stops the bus: it is recorded in ``violations``; one of channel scope
/// rescinds that channel, one of connection scope drops the connection (the guest must connect
/// again).
public final class HostBus: Sendable {
    struct State: ~Copyable {
        var machine: HostConnection
        var devices: [UInt32: any HostDevice] = [:]
        var channels: [UInt32: Channel] = [:]
        var gpadls: [UInt32: MappedMemory] = [:]
        var violations: [ProtocolViolation] = []
        /// Each open channel's OpenChannel request: its ring GPADL, and what a saved state
        /// needs to attach to the rings again.
        var opens: [UInt32: OpenChannel] = [:]
        /// Ring GPADLs of closed channels whose readers may still be taking what the guest
        /// wrote before it closed: their teardown is answered once the channel ended.
        var draining: [UInt32: Channel] = [:]
        /// ``violations`` by kind: what metrics report, kept apart so a count needs no walk
        /// of the list.
        var violationCounts: [ProtocolViolation.Kind: UInt64] = [:]

        mutating func record(_ violation: ProtocolViolation) {
            self.violations.append(violation)
            self.violationCounts[violation.kind, default: 0] += 1
        }
    }

    /// Work to do once the lock is released.
    enum Notice {
        case opened(any HostDevice, Channel, HostChannelInfo)
        /// The guest closed the channel or went away: its rings are still mapped, so what it
        /// wrote before is delivered, then the channel ends.
        case ending(Channel, CloseReason)
        case closed(any HostDevice, UInt32)
        case connectRequest(TLConnectRequest)
    }

    let state: Locked<State>
    let transport: any HostTransport

    /// The guest's number on its substrate, the same after a takeover (``HostTransport/guestNumber``).
    public var guestNumber: Int? { self.transport.guestNumber }
    /// Devices quiesced by ``hold(timeout:)``, to resume if the takeover fails.
    let quiesced = Locked<[any ServiceableDevice]>([])
    /// Devices settled by ``settle(timeout:)``, to resume if the takeover fails.
    let settled = Locked<[any ServiceableDevice]>([])
    /// Device states of a restored bus, until ``restoreDevices(_:)`` hands them out.
    let restoredDeviceStates = Locked<[UInt32: [UInt8]]>([:])
    /// Channels attached by ``restoreDevices(_:)`` and devices new to the saved state, until
    /// ``startRestored()``.
    let restoredChannels = Locked<[RestoredChannel]>([])
    let restoredFresh = Locked<[any HostDevice]>([])
    /// Who makes devices for restored channels that no device of the new process claims by
    /// GUID (``claimRestoredChannels(_:)``).
    let restoreClaimers = Locked<[@Sendable (UInt32, HostOffer, Bool) -> (any ServiceableDevice)?]>([])
    let connectHandler = Locked<(@Sendable (TLConnectRequest) -> Void)?>(nil)
    let lostHandlers = Locked<[@Sendable () -> Void]>([])
    /// What leaves for the transport, in the machine's order: messages and doorbell set-up.
    enum Outgoing: Sendable {
        case message([UInt8])
        case openDoorbells(relid: UInt32, connectionID: UInt32)
        case closeDoorbells(relid: UInt32)
    }

    /// Queued under the lock, handed to the transport after it is released.
    let outbox: SerialDelivery<Outgoing>
    /// Options of every channel this host opens (strict packet parsing by default).
    public let channelOptions: ChannelOptions
    /// Where this bus records its channel messages and its channels' packets, doorbells,
    /// opens and closes; `nil` records nothing.
    public let capture: CaptureTap?

    /// - Parameter configuration: the versions, 6.0 features and message connection id this host
    ///   accepts.
    /// - Parameter transport: the substrate: it carries messages and doorbells to the guest and
    ///   maps the guest pages GPADLs name.
    /// - Parameter channelOptions: the options of every channel this host opens; `nil` for the
    ///   defaults with strict packet parsing (a host checks the guest's packets to the letter).
    /// - Parameter capture: records the guest's messages as they arrive and this host's as
    ///   they are handed to the transport, and every channel's traffic.
    public init(
        configuration: HostConfiguration = HostConfiguration(), transport: any HostTransport, channelOptions: ChannelOptions? = nil,
        capture: CaptureTap? = nil
    ) {
        self.state = Locked(State(machine: HostConnection(configuration: configuration)))
        self.transport = transport
        self.capture = capture
        self.outbox = SerialDelivery { outgoing in
            switch outgoing {
            case .message(let bytes):
                capture?.message(outgoing: true, port: UInt32(VMBusConnectionID.messageSINT), bytes[...])
                transport.post(toGuest: bytes)
            case .openDoorbells(let relid, let connectionID): transport.openDoorbells(relid: relid, connectionID: connectionID)
            case .closeDoorbells(let relid): transport.closeDoorbells(relid: relid)
            }
        }
        var options = channelOptions ?? ChannelOptions()
        if channelOptions == nil { options.strictPackets = true }
        self.channelOptions = options
    }

    // MARK: Devices

    /// Registers a device; it is offered at once if the guest already asked for offers.
    /// - Returns: the relid of its primary channel.
    @discardableResult
    public func register(_ device: any HostDevice) -> UInt32 {
        self.run { state in
            let (relid, actions) = state.machine.addOffer(device.offer)
            state.devices[relid] = device
            return (relid, actions)
        }
    }

    /// Rescinds a device's channel (its sub-channels first) and forgets the device.
    public func rescind(_ relid: UInt32) {
        self.run { state in ((), state.machine.rescind(relid)) }
    }

    /// Offers sub-channels for an open primary, as the device's own protocol asked (05 §5).
    /// - Returns: the relids of all its sub-channels.
    @discardableResult
    public func enableSubChannels(primary: UInt32, count: UInt16) -> [UInt32] {
        self.run { state in
            let (relids, actions) = state.machine.enableSubChannels(primary: primary, count: count)
            for relid in relids where state.devices[relid] == nil { state.devices[relid] = state.devices[primary] }
            return (relids, actions)
        }
    }

    /// Handles the guest's hvsock connect requests (07 §3.1); without a handler they are
    /// refused.
    public func setConnectHandler(_ handler: (@Sendable (TLConnectRequest) -> Void)?) {
        self.connectHandler.store(handler)
    }

    /// Answers a connect request nobody listens for: TL_CONNECT_RESULT "connection refused".
    public func refuseConnect(_ request: TLConnectRequest) {
        self.run { state in ((), state.machine.refuseConnect(request)) }
    }

    /// The open channel with this relid.
    public func channel(_ relid: UInt32) -> Channel? { self.state.withLock { $0.channels[relid] } }

    /// The mapping of a GPADL the guest created (a device's buffers: netvsc's receive and send
    /// buffers, 11 §4), or `nil` if there is no such GPADL. Every page was checked against
    /// guest memory when it was mapped. The mapping stays valid while the device holds it,
    /// even after a teardown (the memory is the guest's; a device drops it on revoke).
    public func gpadlMapping(_ handle: UInt32) -> MappedMemory? { self.state.withLock { $0.gpadls[handle] } }

    /// Maps guest pages a GPA-direct packet names (03 §4), each checked against guest memory.
    public func mapGuestRanges(_ ranges: [GpaRange]) throws(MemoryError) -> MappedMemory {
        try self.transport.mapGpadl(ranges)
    }

    /// Copies what a GPA-direct range names into `buffer[at...]` — straight from guest memory
    /// where the transport has it mapped, else through a mapping of its pages.
    public func readGuest(_ range: GpaRange, into buffer: inout [UInt8], at offset: Int) throws(MemoryError) {
        if let reader = self.transport as? any GuestMemoryReader {
            try reader.readGuest(range, into: &buffer, at: offset)
            return
        }
        let mapping = try self.transport.mapGpadl([range])
        try mapping.read(at: Int(range.byteOffset), count: Int(range.byteCount), into: &buffer, at: offset)
    }

    /// The guest pages `range` names, in place: in the transport's mapping of all of guest
    /// memory where it has one, else in a new mapping of just those pages.
    public func guestExtents(_ range: GpaRange) throws(MemoryError) -> MemoryExtents {
        if let reader = self.transport as? any GuestMemoryReader, let memory = reader.wholeGuestMemory {
            return try MemoryExtents(memory: memory, range: range)
        }
        let mapping = try self.transport.mapGpadl([range])
        return try MemoryExtents(memory: mapping, offset: Int(range.byteOffset), count: Int(range.byteCount))
    }

    /// What negotiation settled, while connected.
    public var negotiated: HostConnection.Negotiated? { self.state.withLock { $0.machine.negotiated } }

    /// Every guest mistake seen so far, oldest first.
    public var violations: [ProtocolViolation] { self.state.withLock { $0.violations } }

    /// How many of the guest's mistakes of each kind this bus has seen (each one also in
    /// ``violations``).
    public var violationCounts: [ProtocolViolation.Kind: UInt64] { self.state.withLock { $0.violationCounts } }

    /// Relids currently offered.
    public var relids: [UInt32] { self.state.withLock { $0.machine.relids } }

    /// An open channel and what was offered for it.
    public struct OpenChannelEntry: Sendable {
        /// The channel's relid.
        public var relid: UInt32
        /// The offer, with its sub-channel index.
        public var offer: HostOffer
        /// The channel, for its statistics.
        public var channel: Channel
    }

    /// The channels open now, by relid: for reading their `Channel.statistics` (metrics,
    /// status listings). Costs one lock of the bus, nothing on the channels' data paths.
    public var openChannels: [OpenChannelEntry] {
        self.state.withLock { state in
            state.channels.sorted { $0.key < $1.key }.compactMap { relid, channel in
                guard var offer = state.devices[relid]?.offer else { return nil }
                offer.subChannelIndex = state.machine.offerIndex(relid)
                return OpenChannelEntry(relid: relid, offer: offer, channel: channel)
            }
        }
    }

    // MARK: From the guest

    /// A channel message from the guest.
    public func receive(_ message: ArraySlice<UInt8>) {
        // The connection id the guest posted to is the transport's to check; it is not known here.
        self.capture?.message(outgoing: false, port: 0, message)
        self.run { state in
            do throws(ProtocolViolation) {
                return ((), try state.machine.receive(message))
            } catch {
                state.record(error)
                switch error.scope {
                case .connection: return ((), state.machine.disconnect())
                case .channel(let relid): return ((), state.machine.rescind(relid))
                }
            }
        }
    }

    /// The guest is gone (its process died, its socket closed, it said goodbye): every channel
    /// ends, every GPADL mapping goes; the bus waits for a new InitiateContact. The rings stay
    /// mapped until their channels let go of them, so each channel first hands its device what
    /// the guest wrote before leaving (an answer sent right before a power-off), then ends.
    public func connectionLost() {
        self.run { state in ((), state.machine.disconnect()) }
        let handlers = self.lostHandlers.withLock { handlers in
            defer { handlers = [] }
            return handlers
        }
        for handler in handlers { handler() }
    }

    /// Runs `handler` once, when ``connectionLost()`` next reports the guest gone — for
    /// per-guest services that should end with their guest.
    public func onConnectionLost(_ handler: @escaping @Sendable () -> Void) {
        self.lostHandlers.withLock { $0.append(handler) }
    }

    /// The guest signalled a connection id (`HvSignalEvent`).
    public func signal(connectionID: UInt32) {
        // Offers carry OpenVMM's ids, relid | 2 << 12; anything else names no channel.
        let relid = connectionID & 0xFFF
        guard VMBusConnectionID.openVMMChannel(relid: relid) == connectionID else { return }
        self.channel(relid)?.interrupt()
    }

    /// The guest set a bit in its child → parent monitor page.
    public func signal(monitorID: UInt8) {
        let channel: Channel? = self.state.withLock { state in
            state.machine.channel(monitorID: monitorID).flatMap { state.channels[$0] }
        }
        channel?.interrupt()
    }

    // MARK: Driving the machine

    /// Runs `body` on the machine under the lock, performs the actions it returned, then
    /// delivers device notices outside the lock.
    func run<R: Sendable>(_ body: @Sendable (inout State) -> (R, [HostAction])) -> R {
        let (result, notices): (R, [Notice]) = self.state.withLock { state in
            let (result, actions) = body(&state)
            var notices: [Notice] = []
            self.perform(actions, &state, &notices)
            return (result, notices)
        }
        self.outbox.drain()
        for notice in notices {
            switch notice {
            case .opened(let device, let channel, let info): device.opened(channel, info: info)
            case .ending(let channel, let reason): channel.peerEnded(reason)
            case .closed(let device, let relid): device.closed(relid: relid)
            case .connectRequest(let request):
                if let handler = self.connectHandler.load() {
                    handler(request)
                } else {
                    self.refuseConnect(request)
                }
            }
        }
        return result
    }

    func perform(_ actions: [HostAction], _ state: inout State, _ notices: inout [Notice]) {
        var queue = actions[...]
        while let action = queue.popFirst() {
            switch action {
            case .send(let message):
                // Locally built messages always encode; a failure here is a bug in this library.
                guard let bytes = try? message.encode() else { preconditionFailure("cannot encode \(message.type.name)") }
                self.outbox.enqueue(.message(bytes))
            case .mapGpadl(_, let gpadl, let ranges):
                let mapping = try? self.transport.mapGpadl(ranges)
                state.gpadls[gpadl] = mapping
                queue.append(contentsOf: state.machine.completeGpadl(gpadl, accepted: mapping != nil))
            case .unmapGpadl(let gpadl):
                state.gpadls[gpadl] = nil
                if let channel = state.draining.removeValue(forKey: gpadl), channel.closeReason == nil {
                    // GpadlTorndown lets the guest reuse the ring's pages: not while the reader
                    // may still read them (at most a second, for a reader that never finishes).
                    self.answerTeardown(gpadl, after: channel)
                } else {
                    queue.append(contentsOf: state.machine.completeTeardown(gpadl))
                }
            case .openChannel(let open, _):
                let status = self.open(open, &state, &notices)
                queue.append(contentsOf: state.machine.completeOpen(open.childRelID, status: status))
            case .closeChannel(let relid):
                let ring = state.opens.removeValue(forKey: relid)?.ringBufferGpadl
                if let channel = state.channels.removeValue(forKey: relid) {
                    if let ring { state.draining[ring] = channel }
                    notices.append(.ending(channel, .closedByPeer))
                    self.outbox.enqueue(.closeDoorbells(relid: relid))
                    if let device = state.devices[relid] { notices.append(.closed(device, relid)) }
                }
            case .resetConnection:
                state.opens = [:]
                state.draining = [:]
                for (relid, channel) in state.channels.sorted(by: { $0.key < $1.key }) {
                    notices.append(.ending(channel, .connectionLost))
                    self.outbox.enqueue(.closeDoorbells(relid: relid))
                    if let device = state.devices[relid] { notices.append(.closed(device, relid)) }
                }
                state.channels = [:]
                state.gpadls = [:]
                // Sub-channels are gone with the connection; their devices stay registered
                // through their primaries.
                let offered = Set(state.machine.relids)
                state.devices = state.devices.filter { offered.contains($0.key) }
            case .connectRequest(let request):
                notices.append(.connectRequest(request))
            case .retarget:
                // Doorbells here are not tied to VPs: nothing to move.
                break
            }
        }
    }

    /// Builds the host end of a channel on its mapped ring GPADL.
    func open(_ open: OpenChannel, _ state: inout State, _ notices: inout [Notice]) -> NTStatus {
        let relid = open.childRelID
        guard let memory = state.gpadls[open.ringBufferGpadl], let device = state.devices[relid] else { return .unsuccessful }
        do {
            let (channel, info) = try self.attach(open, memory: memory, device: device, subChannelIndex: state.machine.offerIndex(relid))
            state.channels[relid] = channel
            state.opens[relid] = open
            self.outbox.enqueue(.openDoorbells(relid: relid, connectionID: VMBusConnectionID.openVMMChannel(relid: relid)))
            notices.append(.opened(device, channel, info))
            return .success
        } catch {
            return .unsuccessful
        }
    }

    /// The host end of a channel on rings the guest laid out in `memory` (already initialised:
    /// nothing is written to them here, so a restored channel reads on where its rings stand).
    func attach(_ open: OpenChannel, memory: MappedMemory, device: any HostDevice, subChannelIndex: UInt16)
        throws(ChannelError) -> (Channel, HostChannelInfo)
    {
        let relid = open.childRelID
        let transport = self.transport
        // The channel's fault rescinds its relid only while that relid is still this channel's
        // (a closed channel's reader may fail after the guest reopened the relid).
        let identity = Locked<ObjectIdentifier?>(nil)
        let rings: (outgoing: SharedRingMemory, incoming: SharedRingMemory)
        do {
            rings = try ChannelRings.rings(in: memory, downstreamPageOffset: Int(open.downstreamRingBufferPageOffset), side: .host)
        } catch {
            throw ChannelError.invalidOption("ring layout: \(error)")
        }
        let channel = try Channel(
            relid: relid, outgoing: rings.outgoing, incoming: rings.incoming,
            doorbell: ClosureDoorbell { transport.signalGuest(relid: relid) }, options: device.channelOptions(self.channelOptions),
            onFault: { [weak self] reason in self?.channelFailed(relid, reason, channel: identity.load()) },
            capture: self.capture, taskExecutor: transport.taskExecutor)
        identity.store(ObjectIdentifier(channel))
        var offer = device.offer
        offer.subChannelIndex = subChannelIndex
        let info = HostChannelInfo(relid: relid, subChannelIndex: subChannelIndex, offer: offer, userData: open.userData, targetVP: open.targetVP)
        return (channel, info)
    }

    /// Answers a ring GPADL's teardown once its closed channel ended, or after a second
    /// (whichever comes first; a reader that never finishes cannot hold the guest up).
    func answerTeardown(_ gpadl: UInt32, after channel: Channel) {
        let answered = Locked(false)
        let answer: @Sendable () -> Void = { [weak self] in
            guard answered.withLock({ done in defer { done = true }; return !done }) else { return }
            self?.run { state in ((), state.machine.completeTeardown(gpadl)) }
        }
        Task {
            _ = await channel.closed()
            answer()
        }
        Task {
            try? await Task.sleep(for: .seconds(1))
            answer()
        }
    }

    /// A channel's ring was corrupted by the guest: record it and rescind the channel.
    func channelFailed(_ relid: UInt32, _ reason: CloseReason, channel: ObjectIdentifier?) {
        self.run { state in
            guard let current = state.channels[relid], ObjectIdentifier(current) == channel else { return ((), []) }
            let kind: ProtocolViolation.Kind
            if case .ringCorrupted(let error) = reason { kind = ProtocolViolation.Kind(ringError: error) } else { kind = .other }
            state.record(ProtocolViolation(.channel(relid), "ring corrupted: \(reason)", kind: kind))
            return ((), state.machine.rescind(relid))
        }
    }
}
