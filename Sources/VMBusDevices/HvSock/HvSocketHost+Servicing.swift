import VMBusChannel
import VMBusHost
import VMBusMemory
import VMBusWire

/// hvsock across a host takeover (docs/SERVICING.md). A connection is a channel of its own;
/// what is carried is its stream's flags and, for a stream served through a handler
/// (``HvSocketHost/serve(port:_:)``), the handler's name and state. Holding the channel parks
/// the stream's reader inside a read that has taken nothing, so nothing read is lost in
/// between: the bytes the guest wrote since wait in the ring for the new process. A stream
/// another program reads cannot be carried; the takeover is refused while it is open.
extension HvSocketHost {
    /// Serves `port` with a fresh `Handler` per connection; streams served so are carried by
    /// a takeover to the new host, which must serve a handler of the same name.
    @discardableResult
    public func serve<Handler: HvSocketStreamHandler>(port: UInt32, _ handler: Handler.Type) -> HvSocketListener {
        self.handlers.withLock { handlers in
            handlers[Handler.name] = { stream, saved in
                var handler = Handler()
                if let saved {
                    do throws(SavedStateError) { handler = try Handler(restoring: saved) } catch { return error }
                }
                HvSocketServedStream.start(stream, handler)
                return nil
            }
        }
        let listener = self.listen(port: port)
        // The accept loop keeps `self` (and with it the connect handler) alive while it runs.
        Task {
            defer { withExtendedLifetime(self) {} }
            while let stream = try? await listener.accept() {
                HvSocketServedStream.start(stream, Handler())
            }
        }
        return listener
    }

    /// A saved connection channel of this endpoint's, as a device again: an open one gets its
    /// stream back in ``HvSockChannelDevice/restored(_:info:state:)``; one the guest had not
    /// opened yet waits for it as before — the guest's connect goes to this host's listener,
    /// and a connect of the old host's (whose caller is gone) is closed once opened.
    func claim(relid: UInt32, offer: HostOffer, isOpen: Bool) -> (any ServiceableDevice)? {
        guard offer.flags.contains(.hvsock) else { return nil }
        let forGuestAccept = HvSockOfferParameters(offer.userDefined).isForGuestAccept
        let service = offer.interfaceType
        let device = HvSockChannelDevice(host: self, service: service, endpoint: offer.interfaceInstance, forGuestAccept: forGuestAccept) {
            [weak self] stream in
            guard !forGuestAccept, let listener = self?.listener(for: service) else {
                Task { await stream.close() }
                return
            }
            listener.deliver(stream)
        }
        if !isOpen {
            // The open timeout of the old host ended with it: start another.
            let (bus, timeout) = (self.bus, self.openTimeout)
            Task {
                try? await Task.sleep(for: timeout)
                if device.current.withLock({ $0 == nil }) { bus.rescind(relid) }
            }
        }
        return device
    }
}

extension HvSockChannelDevice: ServiceableDevice {
    enum Tag {
        static let finSent: UInt16 = 1
        static let closing: UInt16 = 2
        static let handler: UInt16 = 3
        static let handlerState: UInt16 = 4
    }

    public func saveState(relid: UInt32) throws(SavedStateError) -> [UInt8] {
        guard let stream = self.current.withLock({ $0 }) else { throw SavedStateError("hvsock channel \(relid) has no stream") }
        let (finSent, closed) = stream.writes.withLock { ($0.finSent, $0.closed) }
        let (pending, failure) = stream.reads.withLock { ($0.pending.count, $0.failure) }
        // A held stream's reader waits inside a read that took nothing: a short read's rest or
        // a failure to report means the stream was not held where it can be carried.
        guard pending == 0, failure == nil else {
            throw SavedStateError("hvsock channel \(relid) holds bytes nobody has read yet")
        }
        var w = StateWriter()
        w.write(Tag.finSent, finSent)
        w.write(Tag.closing, closed)
        guard !closed else { return w.bytes }
        guard let served = stream.served.withLock({ $0 }) else {
            throw SavedStateError(
                "hvsock channel \(relid) (service \(self.service)) belongs to a program that cannot hand it over")
        }
        w.write(Tag.handler, text: served.handlerName)
        w.write(Tag.handlerState, bytes: served.saveHandler())
        return w.bytes
    }

    public func restored(_ channel: Channel, info: HostChannelInfo, state saved: [UInt8]) throws(SavedStateError) {
        let r = try StateReader(saved[...])
        let finSent = try r.bool(Tag.finSent)
        let closing = try r.bool(Tag.closing)
        let start: (@Sendable (HvSocketStream, [UInt8]?) -> SavedStateError?)?
        var handlerState: [UInt8] = []
        if closing {
            start = nil
        } else {
            let name = try r.text(Tag.handler)
            handlerState = Array(try r.bytes(Tag.handlerState))
            guard let found = self.host.handlers.withLock({ $0[name] }) else {
                throw SavedStateError("hvsock channel \(info.relid): this host serves no '\(name)' streams")
            }
            start = found
        }
        let stream: HvSocketStream
        do { stream = try self.stream(on: channel, relid: info.relid) } catch {
            throw SavedStateError("hvsock channel \(info.relid): \(error)")
        }
        stream.writes.withLock { state in
            state.finSent = finSent
            state.closed = closing
        }
        guard let start else {
            // The old host had closed it: finish its close here.
            Task { await stream.teardown(stream) }
            return
        }
        if let error = start(stream, handlerState) { throw error }
    }
}
