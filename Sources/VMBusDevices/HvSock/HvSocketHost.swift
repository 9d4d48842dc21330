import VMBusMemory
import VMBusChannel
import VMBusHost
import VMBusWire

/// One hvsock connection's channel on the host: offered, opened by the guest, handed over.
final class HvSockChannelDevice: HostDevice {
    let offer: HostOffer
    let service: GUID
    let endpoint: GUID
    let forGuestAccept: Bool
    let host: HvSocketHost
    /// Gets the stream once the guest opens the channel.
    let delivered: @Sendable (HvSocketStream) -> Void
    /// The open channel's stream.
    let current = Locked<HvSocketStream?>(nil)

    init(host: HvSocketHost, service: GUID, endpoint: GUID, forGuestAccept: Bool, delivered: @escaping @Sendable (HvSocketStream) -> Void) {
        var writer = WireWriter(capacity: UserDefinedBytes.size)
        HvSockOfferParameters(isForGuestAccept: forGuestAccept).write(to: &writer)
        self.offer = HostOffer(
            interfaceType: service, interfaceInstance: endpoint, flags: HvSock.offerFlags,
            userDefined: (try? UserDefinedBytes(writer.bytes)) ?? UserDefinedBytes())
        self.service = service
        self.endpoint = endpoint
        self.forGuestAccept = forGuestAccept
        self.host = host
        self.delivered = delivered
    }

    func opened(_ channel: Channel, info: HostChannelInfo) {
        guard let stream = try? self.stream(on: channel, relid: info.relid) else { return }
        self.delivered(stream)
    }

    /// The connection's stream on `channel`. The host's close sends FIN, lets the guest
    /// finish (up to the linger), then rescinds.
    func stream(on channel: Channel, relid: UInt32) throws(ChannelError) -> HvSocketStream {
        let (bus, linger) = (self.host.bus, self.host.linger)
        let stream = try HvSocketStream(service: self.service, endpoint: self.endpoint, outgoing: self.forGuestAccept, channel: channel) {
            stream in
            await stream.drainUntilPeerDone(timeout: linger)
            bus.rescind(relid)
        }
        self.current.withLock { $0 = stream }
        return stream
    }

    func channelOptions(_ busOptions: ChannelOptions) -> ChannelOptions { HvSock.tuned(busOptions) }
    func closed(relid: UInt32) { self.current.withLock { $0 = nil } }
}

/// Hyper-V sockets on the host side of one guest's bus (07): listens for the guest's connect
/// requests and connects to the guest's listeners. Each connection is its own channel, offered
/// by the host and opened by the guest; closing sends FIN, waits (up to `linger`) for the
/// guest's end, then rescinds the channel, as hosts do.
public final class HvSocketHost: HvSocketEndpoint {
    /// The guest's bus: connection channels are offered, and rescinded, on it.
    public let bus: HostBus
    /// How long the guest has to open an offered connection channel.
    public let openTimeout: Duration
    /// How long close waits for the guest's FIN before rescinding (Linux waits 8 s for us).
    public let linger: Duration
    let listeners = Locked<[GUID: HvSocketListener]>([:])
    let catchAll = Locked<CatchAll?>(nil)
    /// Starts a stream's service by handler name, fresh or from saved state
    /// (``serve(port:_:)``): how a takeover's new host finds the service of a saved stream.
    /// A starter answers why it could not restore a handler, or `nil` once it serves.
    let handlers = Locked<[String: @Sendable (HvSocketStream, [UInt8]?) -> SavedStateError?]>([:])

    /// - Parameter bus: the bus of the guest this endpoint serves (one endpoint per guest).
    /// - Parameter openTimeout: how long the guest has to open an offered connection channel.
    /// - Parameter linger: how long a close waits for the guest's FIN before rescinding.
    public init(bus: HostBus, openTimeout: Duration = .seconds(5), linger: Duration = .seconds(8)) {
        self.bus = bus
        self.openTimeout = openTimeout
        self.linger = linger
        bus.setConnectHandler { [weak self] request in self?.connectRequest(request) }
        // A takeover's saved connection channels are this endpoint's to take back.
        bus.claimRestoredChannels { [weak self] relid, offer, isOpen in self?.claim(relid: relid, offer: offer, isOpen: isOpen) }
        // The guest is gone: its listeners stop, so accept loops (and what they hold) end.
        bus.onConnectionLost { [weak self] in self?.closeListeners() }
    }

    /// Closes every listener: waiting accepts fail with ``HvSocketError/closed``.
    public func closeListeners() {
        let all = self.listeners.withLock { Array($0.values) } + [self.catchAll.withLock { $0?.listener }].compactMap { $0 }
        for listener in all { listener.close() }
    }

    /// Listens for guest connections to `service` (replacing an earlier listener).
    public func listen(service: GUID) -> HvSocketListener {
        let listener = HvSocketListener(service: service) { [weak self] in
            _ = self?.listeners.withLock { $0.removeValue(forKey: service) }
        }
        self.listeners.withLock { $0[service] = listener }
        return listener
    }

    /// Listens on a vsock-style port (the service GUID of 07 §1).
    public func listen(port: UInt32) -> HvSocketListener { self.listen(service: GUID.vsockService(port: port)) }

    public func listenAll(accepting filter: @escaping @Sendable (GUID) -> Bool) -> HvSocketListener {
        let listener = HvSocketListener(service: GUID(data1: 0, data2: 0, data3: 0, data4: 0)) { [weak self] in
            self?.catchAll.withLock { $0 = nil }
        }
        self.catchAll.withLock { $0 = CatchAll(listener: listener, filter: filter) }
        return listener
    }

    public var isConnected: Bool { self.bus.negotiated != nil }

    /// Connects to a guest listener on `service` (07 §3.2).
    /// - Throws: ``HvSocketError/timedOut`` if the guest does not open the channel in time
    ///   (nobody listens there); the offer is rescinded.
    public func connect(service: GUID, timeout: Duration? = nil) async throws(HvSocketError) -> HvSocketStream {
        // A template-shaped endpoint so a Linux guest reports a meaningful remote port.
        let endpoint = GUID.vsockService(port: UInt32.random(in: 0x4000_0000...0x7FFF_FFFF))
        let pending = PendingConnect()
        let relid = self.offerChannel(service: service, endpoint: endpoint, forGuestAccept: true) { stream in
            if !pending.resolve(.success(stream)) { Task { await stream.close() } }
        }
        let result = await pending.wait(timeout: timeout ?? self.openTimeout)
        if case .failure = result { self.bus.rescind(relid) }
        return try result.get()
    }

    /// Connects to a guest listener on a vsock-style port.
    public func connect(port: UInt32, timeout: Duration? = nil) async throws(HvSocketError) -> HvSocketStream {
        try await self.connect(service: GUID.vsockService(port: port), timeout: timeout)
    }

    /// The guest asked to connect (07 §3.1): offer a channel if someone listens, else refuse.
    func connectRequest(_ request: TLConnectRequest) {
        guard let listener = self.listener(for: request.hostServiceID) else {
            self.bus.refuseConnect(request)
            return
        }
        let opened = Locked(false)
        let relid = self.offerChannel(service: request.hostServiceID, endpoint: request.guestEndpointID, forGuestAccept: false) {
            stream in
            opened.withLock { $0 = true }
            listener.deliver(stream)
        }
        // A guest that asked and never opens the channel loses it (OpenVMM allows 5 s).
        let bus = self.bus
        let timeout = self.openTimeout
        Task {
            try? await Task.sleep(for: timeout)
            if !opened.withLock({ $0 }) { bus.rescind(relid) }
        }
    }

    /// The open listener that takes connections to `service`: its own, or the catch-all's.
    func listener(for service: GUID) -> HvSocketListener? {
        guard let listener = self.listeners.withLock({ $0[service] }) ?? self.catchAll.withLock({ $0?.take(service) }), !listener.isClosed
        else { return nil }
        return listener
    }

    /// Registers a connection channel; `delivered` gets the stream once the guest opens it.
    func offerChannel(
        service: GUID, endpoint: GUID, forGuestAccept: Bool, delivered: @escaping @Sendable (HvSocketStream) -> Void
    ) -> UInt32 {
        self.bus.register(
            HvSockChannelDevice(host: self, service: service, endpoint: endpoint, forGuestAccept: forGuestAccept, delivered: delivered))
    }
}
