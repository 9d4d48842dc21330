import VMBusChannel
import VMBusGuest
import VMBusMemory
import VMBusWire

extension NetvscNIC {
    // MARK: RNDIS control (11 §5.2)

    /// INITIALIZE, the OIDs Linux asks at probe, the packet filter; then frames flow between
    /// the channel and a backend made for the reported MAC and MTU.
    func initializeRNDIS(makeBackend: @escaping @Sendable (MACAddress, Int) -> any NetworkBackend) async throws {
        guard case .initializeComplete(let complete)? = try await self.rndis({ .initialize(requestID: $0, major: 1, minor: 0, maximumTransferSize: 0x4000) }),
            complete.status == .success
        else { throw NetvscError.refused("RNDIS initialisation") }
        let frameSize = try await self.queryWord(.maximumFrameSize)
        guard case .queryComplete(_, _, let address)? = try await self.rndis({ .query(requestID: $0, oid: .permanentAddress, information: []) }),
            address.count == 6
        else { throw NetvscError.malformed("permanent address") }
        let connected = try await self.queryWord(.mediaConnectStatus)
        _ = try await self.rndis { .set(requestID: $0, oid: .currentPacketFilter, information: withWriter { $0.writeUInt32(0x0D) }) }
        let mac = MACAddress(address)
        // A host's maximum frame size below 68 or above the asked MTU leaves the asked MTU.
        let mtu = frameSize.map { (68...self.configuration.mtu).contains(Int($0)) ? Int($0) : self.configuration.mtu } ?? self.configuration.mtu
        let backend = makeBackend(mac, mtu)
        self.state.withLock { state in
            state.macAddress = mac
            state.mtu = mtu
            state.linkUp = connected != 1
            state.backend = backend
        }
        try await self.negotiateOffloads(backend)
        backend.attach(NICSink(room: self.room) { [self] frames, first in self.transmit(frames, from: first) })
        var granted = 1
        if self.configuration.queues > 1 && self.version >= .v5 {
            let requested = UInt32(self.configuration.queues - 1)
            // More than asked for leaves one queue (Linux).
            if case .subchannel(let status, let count)? = try? await Self.request(.subchannel(operationOrStatus: 1, count: requested), on: self.channel),
                NVSPStatus(rawValue: status).isSuccess, count <= requested
            {
                granted = Int(count) + 1
            }
        }
        self.state.withLock { $0.grantedQueues = granted }
        await self.queuesChanged()
    }

    /// The host's offloads (11 §5.3) that the backend can also hand over: asked as Linux asks,
    /// enabled with OFFLOAD_PARAMETERS, then offered to the backend. LSO needs buffers for
    /// segments larger than a send section (sent GPA-direct).
    func negotiateOffloads(_ backend: any NetworkBackend) async throws {
        guard self.configuration.offloads, !backend.offloads.isEmpty else { return }
        let query = NDISOffload().encode(revision: 3)
        guard case .queryComplete(_, .success, let data)? = try await self.rndis({ .query(requestID: $0, oid: .offloadHardwareCapabilities, information: query) }),
            let capabilities = try? NDISOffload(parsing: data[...])
        else { return }
        var usable: NetworkOffloads = []
        if capabilities.ipv4TransmitChecksum & 0x014 == 0x014 && capabilities.ipv6TransmitChecksum & 0x015 == 0x015 { usable.insert(.checksum) }
        if usable.contains(.checksum) && capabilities.lsoIPv4MaximumSize > 0 { usable.insert(.tcp4Segmentation) }
        if usable.contains(.checksum) && capabilities.lsoIPv6MaximumSize > 0 { usable.insert(.tcp6Segmentation) }
        usable.formIntersection(backend.offloads)
        guard !usable.isEmpty else { return }
        // NDIS_OFFLOAD_PARAMETERS rev 3 (28 bytes): IPv4 header checksum off; TCP/UDP checksums
        // TX and RX; LSOv2 on or off.
        var parameters = [UInt8](repeating: 0, count: 28)
        parameters[0] = 0x80
        parameters[1] = 3
        parameters[2] = 28
        parameters[4] = 1
        for index in 5...8 { parameters[index] = 4 }
        parameters[11] = usable.contains(.tcp4Segmentation) ? 2 : 1
        parameters[12] = usable.contains(.tcp6Segmentation) ? 2 : 1
        // RSC (NVSP 6.1): large segments come whole over several sub-allocations, and are
        // handed to the backend whole.
        let rsc = capabilities.rscIPv4 && capabilities.rscIPv6 && self.version == .v61 && self.configuration.receiveSegmentCoalescing
        parameters[22] = rsc ? 2 : 1
        parameters[23] = rsc ? 2 : 1
        guard case .setComplete(_, .success)? = try await self.rndis({ .set(requestID: $0, oid: .offloadParameters, information: parameters) })
        else { return }
        if !usable.isDisjoint(with: [.tcp4Segmentation, .tcp6Segmentation]) {
            let large = try self.bus.memory.allocate(pages: Self.largeSendPages * self.configuration.largeSendBuffers)
            self.state.withLock { state in
                state.large = large
                state.freeLarge = Array((0..<self.configuration.largeSendBuffers).reversed())
            }
        }
        self.state.withLock { $0.offloads = usable }
        backend.acceptOffloads(usable)
    }

    /// Pages of one large-send buffer: a 64 KiB segment with its RNDIS header and PPI.
    static let largeSendPages = 17

    /// Once every granted sub-channel is open: RSS over all queues (11 §6: a 128-entry table
    /// i mod queues, Linux's default key, Toeplitz over IPv4/IPv6 and TCP). Wakes the waiters
    /// of ``queuesReady()`` when all is set.
    func queuesChanged() async {
        let setRSS: Int? = self.state.withLock { state in
            guard let granted = state.grantedQueues, granted > 1, state.channels.count == granted, !state.rssRequested else { return nil }
            state.rssRequested = true
            return granted
        }
        if let queues = setRSS {
            let parameters = RSSParameters(
                flags: 0, hashInformation: Self.rssHashInformation, indirectionTable: (0..<128).map { UInt32($0 % queues) }, key: Self.rssKey)
            let answer = try? await self.rndis { .set(requestID: $0, oid: .receiveScaleParameters, information: parameters.encode()) }
            // Linux only logs a refusal: the host then keeps every frame on the primary.
            _ = answer
            self.state.withLock { $0.rssSet = true }
        }
        let waiters: [CheckedContinuation<Void, Never>] = self.state.withLock { state in
            guard Self.queuesReady(state) else { return [] }
            defer { state.queueWaiters = [] }
            return state.queueWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Toeplitz with IPv4, TCP/IPv4, IPv6 and TCP/IPv6 hashing (Linux's NDIS hash info).
    static let rssHashInformation: UInt32 = 0x1701
    /// Linux's default 40-byte Toeplitz key (11 §6).
    static let rssKey: [UInt8] = [
        0x6D, 0x5A, 0x56, 0xDA, 0x25, 0x5B, 0x0E, 0xC2, 0x41, 0x67, 0x25, 0x3D, 0x43, 0xA3, 0x8F, 0xB0, 0xD0, 0xCA, 0x2B, 0xCB,
        0xAE, 0x7B, 0x30, 0xB4, 0x77, 0xCB, 0x2D, 0xA3, 0x80, 0x30, 0xF2, 0x0C, 0x6A, 0x42, 0xB7, 0x3B, 0xBE, 0xAC, 0x01, 0xFA,
    ]

    func queryWord(_ oid: NDISOID) async throws -> UInt32? {
        guard case .queryComplete(_, .success, let data)? = try await self.rndis({ .query(requestID: $0, oid: oid, information: []) })
        else { return nil }
        var reader = WireReader(data)
        return try? reader.readUInt32()
    }

    /// Sends one RNDIS control message in a send section (channel type 1) and waits for the
    /// answer with its request id (`nil` for none: the NIC closed).
    func rndis(_ make: (UInt32) -> RNDISMessage) async throws -> RNDISMessage? {
        let requestID = self.state.withLock { state in
            defer { state.nextRequest &+= 1 }
            return state.nextRequest
        }
        let bytes = make(requestID).encode()
        let section = try await self.placeControl(bytes)
        // Waiting before it is sent: the answer may come back at once.
        return await withCheckedContinuation { (continuation: CheckedContinuation<RNDISMessage?, Never>) in
            self.state.withLock { $0.requests[requestID] = continuation }
            Task {
                do { try await self.sendControl(bytes.count, in: section) } catch { self.answer(requestID, nil) }
            }
        }
    }

    /// Puts an RNDIS control message into a free send section (waiting for one).
    /// - Returns: the section. - Throws: when it does not fit a section, the NIC closed, or the
    ///   section cannot be written.
    func placeControl(_ bytes: [UInt8]) async throws -> Int {
        guard bytes.count <= self.sectionSize, let section = await self.takeSection() else { throw NetvscError.refused("a send section") }
        do { try self.memory.write(bytes[...], at: self.send.offset + section * self.sectionSize) } catch {
            self.releaseSection(section)
            throw NetvscError.malformed("\(error)")
        }
        return section
    }

    /// Sends the control message ``placeControl(_:)`` put in `section` (channel type 1); the
    /// section is free again if the send fails, else with the host's completion.
    func sendControl(_ count: Int, in section: Int) async throws {
        let message = NVSPMessage.rndisPacket(channelType: NVSP.controlChannel, sectionIndex: UInt32(section), sectionBytes: UInt32(count))
        if self.channel.isCapturing { self.recordSent(section, large: false, length: count, on: self.channel) }
        do { try await self.send(message, section: section, tag: Self.controlTag, on: self.channel) } catch {
            self.releaseSection(section)
            throw NetvscError.channel(error)
        }
    }

    func answer(_ requestID: UInt32, _ message: RNDISMessage?) {
        let waiter = self.state.withLock { $0.requests.removeValue(forKey: requestID) }
        waiter?.resume(returning: message)
    }

    // MARK: Sections

    func takeSection() async -> Int? {
        await withCheckedContinuation { (continuation: CheckedContinuation<Int?, Never>) in
            let now: Int?? = self.state.withLock { state in
                if state.closed { return .some(nil) }
                if let section = state.freeSections.popLast() { return .some(section) }
                state.sectionWaiters.append(continuation)
                return .none
            }
            if let now { continuation.resume(returning: now) }
        }
    }

    /// Sends the SEND_RNDIS_PKT of a filled section; the section is in flight until the host
    /// completes exactly this id (a completion of anything else frees nothing).
    func send(_ message: NVSPMessage, section: Int, tag: UInt64, on channel: Channel) async throws(ChannelError) {
        let id = tag | UInt64(section)
        self.state.withLock { _ = $0.inFlight.insert(id) }
        do { try await channel.send(inBand: message.encode()[...], transactionID: id, completionRequested: true) } catch {
            self.state.withLock { _ = $0.inFlight.remove(id) }
            throw error
        }
    }

    func releaseSection(_ section: Int) {
        let waiter: CheckedContinuation<Int?, Never>? = self.state.withLock { state in
            if !state.sectionWaiters.isEmpty { return state.sectionWaiters.removeFirst() }
            state.freeSections.append(section)
            return nil
        }
        waiter?.resume(returning: section)
        self.changes.wake()
    }

    func count(_ queue: UInt16, _ body: (inout NetworkQueueStatistics) -> Void) {
        self.state.withLock { state in body(&state.statistics[queue, default: NetworkQueueStatistics()]) }
    }
}
