import VMBusMemory
import VMBusChannel
import VMBusGuest
import VMBusWire

/// Hyper-V sockets on the guest (07), as Linux's `hv_sock` driver: connects to host services
/// (TL_CONNECT_REQUEST, then the host's offer for our endpoint) and accepts the host's
/// connections to local listeners (offers with `is_for_guest_accept`). Register it on the bus
/// like any driver; it takes every hvsock offer.
public final class HvSocketGuest: GuestDriver, HvSocketEndpoint {
    public let name = "hv_sock"
    public var classes: [GUID] { [] }
    public var isHvSockDriver: Bool { true }
    /// The guest bus it is registered on: connect requests and channel opens go through it.
    public let bus: GuestBus
    /// Ring size per direction in pages for ≥ 5.0 hosts (clamped to 24–256 KiB, 07 §2).
    public let ringPages: Int
    /// How long close waits for the host to rescind before closing the channel itself.
    public let closeTimeout: Duration

    struct State {
        var listeners: [GUID: HvSocketListener] = [:]
        var connects: [GUID: PendingConnect] = [:]
        var streams: [UInt32: HvSocketStream] = [:]
        var catchAll: CatchAll?
    }
    let state = Locked(State())

    /// - Parameter bus: the bus to register on (call `register` on it with this driver too).
    /// - Parameter ringPages: ring pages per direction for each connection, clamped to 6–64
    ///   (24–256 KiB, 07 §2).
    /// - Parameter closeTimeout: how long a close waits for the host's rescind.
    public init(bus: GuestBus, ringPages: Int = 16, closeTimeout: Duration = .seconds(8)) {
        self.bus = bus
        self.ringPages = min(max(ringPages, 6), 64)
        self.closeTimeout = closeTimeout
        bus.setConnectResultHandler { [weak self] result in self?.refused(result) }
    }

    /// Listens for the host's connections to `service`.
    public func listen(service: GUID) -> HvSocketListener {
        let listener = HvSocketListener(service: service) { [weak self] in
            _ = self?.state.withLock { $0.listeners.removeValue(forKey: service) }
        }
        self.state.withLock { $0.listeners[service] = listener }
        return listener
    }

    /// Listens on a vsock-style port.
    public func listen(port: UInt32) -> HvSocketListener { self.listen(service: GUID.vsockService(port: port)) }

    public func listenAll(accepting filter: @escaping @Sendable (GUID) -> Bool) -> HvSocketListener {
        let listener = HvSocketListener(service: GUID(data1: 0, data2: 0, data3: 0, data4: 0)) { [weak self] in
            self?.state.withLock { $0.catchAll = nil }
        }
        self.state.withLock { $0.catchAll = CatchAll(listener: listener, filter: filter) }
        return listener
    }

    public var isConnected: Bool { self.bus.version != nil }

    /// Connects to a host service.
    /// - Throws: ``HvSocketError/refused`` when nobody listens there (hosts of 4.1 and later
    ///   say so; older ones let the connect time out), ``HvSocketError/timedOut``.
    public func connect(service: GUID, timeout: Duration? = nil) async throws(HvSocketError) -> HvSocketStream {
        let endpoint = GUID.vsockService(port: UInt32.random(in: 0x4000_0000...0x7FFF_FFFF))
        let pending = PendingConnect()
        self.state.withLock { $0.connects[endpoint] = pending }
        defer { _ = self.state.withLock { $0.connects.removeValue(forKey: endpoint) } }
        guard self.bus.requestConnection(endpoint: endpoint, service: service) else {
            throw HvSocketError.unavailable("not connected at VMBus 4.0 or later")
        }
        return try await pending.wait(timeout: timeout ?? .seconds(10)).get()
    }

    /// Connects to a host vsock-style port.
    public func connect(port: UInt32, timeout: Duration? = nil) async throws(HvSocketError) -> HvSocketStream {
        try await self.connect(service: GUID.vsockService(port: port), timeout: timeout)
    }

    func refused(_ result: TLConnectResult) {
        let pending = self.state.withLock { $0.connects[result.endpointID] }
        pending?.resolve(.failure(.refused))
    }

    struct NotWanted: Error {}

    public func probe(_ device: GuestDevice, bus: GuestBus) async throws {
        let parameters = HvSockOfferParameters(device.offer.userDefined)
        let (listener, pending): (HvSocketListener?, PendingConnect?) = self.state.withLock { state in
            parameters.isForGuestAccept
                ? (state.listeners[device.classID] ?? state.catchAll?.take(device.classID), nil)
                : (nil, state.connects[device.instanceID])
        }
        // Nobody wants it: leave the offer unopened (the host takes it back), as Linux does.
        guard listener != nil || pending != nil else { throw NotWanted() }
        let pages = (bus.version ?? .copper) < HvSock.ringSizeHintVersion ? HvSock.legacyRingSize / 4096 : self.ringPages
        let channel = try await bus.open(device.relid, pages: RingPages(each: pages), options: HvSock.tuned(ChannelOptions()))
        let closeTimeout = self.closeTimeout
        let stream = try HvSocketStream(
            service: device.classID, endpoint: device.instanceID, outgoing: pending != nil, channel: channel
        ) { stream in
            // The guest's close: FIN went out; the host rescinds when it is done. If it does
            // not in time, close the channel from this side.
            let timer = Task {
                try? await Task.sleep(for: closeTimeout)
                if !Task.isCancelled { await bus.close(device.relid) }
            }
            _ = await stream.channel.ended()
            timer.cancel()
            // This side reads no more: the channel may go, and with it the rings.
            stream.channel.close(.closedLocally)
        }
        self.state.withLock { $0.streams[device.relid] = stream }
        if let listener {
            listener.deliver(stream)
        } else if let pending, !pending.resolve(.success(stream)) {
            await stream.close()  // the connect gave up meanwhile
        }
    }

    public func remove(_ device: GuestDevice, bus: GuestBus) async {
        _ = self.state.withLock { $0.streams.removeValue(forKey: device.relid) }
    }
}
