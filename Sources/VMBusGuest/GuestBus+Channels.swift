import VMBusChannel
import VMBusMemory
import VMBusWire

/// Ring sizes of one channel, in 4 KiB pages per direction, control page included.
public struct RingPages: Hashable, Sendable {
    /// Guest → host ring.
    public var outgoing: Int
    /// Host → guest ring.
    public var incoming: Int

    /// - Parameter outgoing: pages of the guest → host ring, at least 2.
    /// - Parameter incoming: pages of the host → guest ring, at least 2.
    public init(outgoing: Int, incoming: Int) {
        self.outgoing = outgoing
        self.incoming = incoming
    }

    /// Both directions the same size.
    public init(each pages: Int) { self.init(outgoing: pages, incoming: pages) }

    /// Linux's default for most devices: 16 pages each way (64 KiB rings).
    public static let standard = RingPages(each: 16)
    /// The integration services' rings: VMBUS_RING_SIZE(3 × 4 KiB) = 4 pages each way (06 §1).
    public static let utility = RingPages(each: 4)
}

extension GuestBus {
    // MARK: GPADLs

    /// Describes guest memory to the host for a channel and waits until the host accepted it.
    /// - Returns: the GPADL handle.
    /// - Throws: ``BusError/refused(_:)`` when the host declines (e.g. a page outside guest
    ///   memory), ``BusError/rescinded(_:)``, ``BusError/wire(_:)`` for ranges that cannot be
    ///   described.
    public func createGpadl(channel relid: UInt32, ranges: [GpaRange]) async throws(BusError) -> UInt32 {
        let prepared: Result<(UInt32, [GuestAction]), WireError> = self.state.withLock { state in
            do throws(WireError) {
                return .success(try state.machine.createGpadl(channel: relid, ranges: ranges))
            } catch {
                return .failure(error)
            }
        }
        // The handle is chosen by the machine; split the call so the waiter is keyed by it
        // before anything is posted.
        let (handle, actions): (UInt32, [GuestAction])
        switch prepared {
        case .success(let value): (handle, actions) = value
        case .failure(let error): throw BusError.wire(error)
        }
        try await self.call(.gpadl(handle)) { state in
            state.gpadlChannels[handle] = relid
            return actions
        }.get()
        return handle
    }

    /// Tears a GPADL down and waits until the host released it; its memory may then be reused.
    public func teardownGpadl(_ handle: UInt32) async throws(BusError) {
        try await self.call(.teardown(handle), idle: .invalidChannel(0)) { state in state.machine.teardownGpadl(handle) }.get()
    }

    // MARK: Open and close

    /// Opens a channel: rings from guest memory, a GPADL over them, OpenChannel, and the
    /// channel API on top.
    /// - Parameters:
    ///   - relid: the channel: a device's primary (``GuestDevice/relid``) or a sub-channel the host
    ///     offered for it.
    ///   - pages: ring sizes in pages per direction (at least 2 each: control page + data).
    ///   - options: the channel's options (delivery mode, limits, fault injection).
    ///   - targetVP: the virtual processor the host is to interrupt for this channel (OpenChannel
    ///     `target_vp`; ``retarget(_:targetVP:)`` changes it later).
    ///   - userData: OpenChannel's 120 bytes of user data, whose meaning the device protocol
    ///     defines (hvsock's pipe parameters); zeros by default.
    /// - Throws: ``BusError/refused(_:)`` when the host fails the open; ``BusError/rescinded(_:)``.
    public func open(
        _ relid: UInt32, pages: RingPages = .standard, options: ChannelOptions = ChannelOptions(), targetVP: UInt32 = 0,
        userData: UserDefinedBytes = UserDefinedBytes()
    ) async throws(BusError) -> Channel {
        guard pages.outgoing >= 2, pages.incoming >= 2 else { throw BusError.channel(.invalidOption("rings need 2 pages each")) }
        let memory = self.transport.memory
        let buffer: GuestBuffer
        let range: GpaRange
        do throws(MemoryError) {
            buffer = try memory.allocate(pages: pages.outgoing + pages.incoming)
            try ChannelRings.initialize(
                memory.memory, offset: buffer.offset, size: buffer.byteCount, downstreamPageOffset: pages.outgoing)
        } catch {
            throw BusError.memory(error)
        }
        do throws(WireError) { range = try buffer.range() } catch {
            memory.release(buffer)
            throw BusError.wire(error)
        }
        let gpadl: UInt32
        do { gpadl = try await self.createGpadl(channel: relid, ranges: [range]) } catch {
            memory.release(buffer)
            throw error
        }
        let channel: Channel
        do {
            channel = try self.makeChannel(relid, buffer: buffer, split: pages.outgoing, options: options)
        } catch {
            try? await self.teardownGpadl(gpadl)
            memory.release(buffer)
            throw error
        }
        // Registered before OpenChannel goes out: the host may signal right after it answers.
        self.state.withLock { state in
            state.channels[relid] = channel
            state.rings[relid] = OpenRing(gpadl: gpadl, buffer: buffer, split: pages.outgoing)
        }
        let opened = await self.call(.open(relid)) { state in
            state.machine.open(channel: relid, ringGpadl: gpadl, downstreamPageOffset: UInt32(pages.outgoing),
                               targetVP: targetVP, userData: userData)
        }
        if case .failure(let error) = opened {
            self.state.withLock { state in
                state.channels[relid] = nil
                state.rings[relid] = nil
            }
            channel.close(.closedByPeer)
            if case .rescinded = error {
                // The host frees a rescinded channel's GPADLs itself; the memory is reclaimed
                // when the relid is released.
            } else {
                try? await self.teardownGpadl(gpadl)
            }
            memory.release(buffer)
            throw error
        }
        return channel
    }

    func makeChannel(_ relid: UInt32, buffer: GuestBuffer, split: Int, options: ChannelOptions) throws(BusError) -> Channel {
        let memory = self.transport.memory
        let transport = self.transport
        guard let signalling = self.state.withLock({ $0.machine.signalling(for: relid) }) else {
            throw BusError.invalidChannel(relid)
        }
        do {
            let rings = try ChannelRings.rings(
                in: memory.memory, offset: buffer.offset, size: buffer.byteCount, downstreamPageOffset: split, side: .guest)
            return try Channel(
                relid: relid, outgoing: rings.outgoing, incoming: rings.incoming,
                doorbell: ClosureDoorbell { transport.signalHost(signalling, relid: relid) }, options: options,
                onFault: { [weak self] _ in
                    // The host corrupted a ring: stop using the channel, as Linux would on
                    // a broken ring, and tell the host.
                    guard let self else { return }
                    self.spawn { await self.close(relid) }
                }, capture: self.capture, taskExecutor: transport.taskExecutor)
        } catch let error as MemoryError {
            throw BusError.memory(error)
        } catch let error as ChannelError {
            throw BusError.channel(error)
        } catch {
            throw BusError.channel(.invalidOption("\(error)"))
        }
    }

    /// Closes a channel (its sub-channels first), tears its ring GPADL down and frees the
    /// rings. Closing a channel that is not open does nothing.
    public func close(_ relid: UInt32) async {
        let closing: [(UInt32, Channel?, OpenRing?)] = self.run { state in
            let relids = state.machine.subChannels(of: relid) + [relid]
            var closing: [(UInt32, Channel?, OpenRing?)] = []
            for id in relids where state.channels[id] != nil || state.rings[id] != nil {
                closing.append((id, state.channels.removeValue(forKey: id), state.rings.removeValue(forKey: id)))
            }
            return (closing, state.machine.close(channel: relid))
        }
        for (id, channel, ring) in closing {
            // A rescinded channel still being drained by its reader ends by itself.
            let finishing = channel?.isFinishing ?? false
            if !finishing { channel?.close(.closedLocally) }
            self.transport.channelClosed(relid: id)
            guard let ring else { continue }
            let rescinded = self.state.withLock { $0.machine.offer(id) == nil || $0.machine.isRescinded(id) }
            if !rescinded { try? await self.teardownGpadl(ring.gpadl) }
            self.release(ring, once: channel)
        }
    }

    /// Gives a channel's ring pages back once its channel is closed: now, or — for a channel
    /// a reader is still draining — when it is.
    func release(_ ring: OpenRing, once channel: Channel?) {
        let memory = self.transport.memory
        guard let channel, channel.closeReason == nil else {
            memory.release(ring.buffer)
            return
        }
        // Not a tracked task: ``settle()`` must not wait for a reader that may never read.
        Task {
            _ = await channel.closed()
            memory.release(ring.buffer)
        }
    }

    /// Moves a channel's host → guest interrupts to another VP (ModifyChannel, 5.3+ waits
    /// for the answer; earlier hosts do not answer).
    public func retarget(_ relid: UInt32, targetVP: UInt32) async throws(BusError) {
        guard let version = self.version else { throw BusError.notConnected }
        if version >= .win10_5_3 {
            try await self.call(.modify(relid), idle: .invalidChannel(relid)) { state in
                state.machine.modify(channel: relid, targetVP: targetVP)
            }.get()
        } else {
            let posted = self.run { state in
                let actions = state.machine.modify(channel: relid, targetVP: targetVP)
                return (!actions.isEmpty, actions)
            }
            guard posted else { throw BusError.invalidChannel(relid) }
        }
    }
}
