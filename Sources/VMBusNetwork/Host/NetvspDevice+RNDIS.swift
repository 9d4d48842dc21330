import VMBusChannel
import VMBusHost
import VMBusMemory
import VMBusWire

extension NetvspDevice {
    /// One RNDIS control message (11 §5): the answer goes back through a reserved receive slot.
    /// - Returns: the status of the NVSP completion of the packet that carried it; `nil` for a
    ///   message that breaks RNDIS (11 §5.1: RESET, a guest's INDICATE_STATUS, INITIALIZE while
    ///   initialised), which stops the channel.
    func control(_ bytes: ArraySlice<UInt8>, channel: Channel) async -> NVSPStatus? {
        guard let message = try? RNDISMessage(parsing: bytes) else { return .failure }
        let answer: RNDISMessage?
        switch message {
        case .initialize(let requestID, _, _, _):
            let again = self.state.withLock { state in
                defer { state.rndisReady = true }
                return state.rndisReady
            }
            if again { return nil }
            answer = .initializeComplete(RNDISInitializeComplete(requestID: requestID))
        case .query(let requestID, let oid, let information):
            let (status, data) = self.query(oid, information: information)
            answer = .queryComplete(requestID: requestID, status: status, information: data)
        case .set(let requestID, let oid, let information):
            answer = .setComplete(requestID: requestID, status: self.set(oid, information: information))
        case .keepalive(let requestID):
            answer = .keepaliveComplete(requestID: requestID, status: .success)
        case .reset, .indicateStatus:
            return nil
        case .halt:
            self.state.withLock { state in
                state.rndisReady = false
                state.packetFilter = []
            }
            answer = nil
        case .packet, .initializeComplete, .queryComplete, .setComplete, .resetComplete, .keepaliveComplete, .other:
            return .failure
        }
        if let answer { await self.sendControl(answer, on: channel) }
        return .success
    }

    /// OID queries (11 §5.2): what Linux and DPDK ask at probe, answered as a NIC would.
    func query(_ oid: NDISOID, information: [UInt8]) -> (RNDISStatus, [UInt8]) {
        let (frameMTU, linkUp) = self.state.withLock { ($0.frameMTU, $0.linkUp) }
        func word(_ value: UInt32) -> [UInt8] { withWriter { $0.writeUInt32(value) } }
        switch oid {
        case .maximumFrameSize: return (.success, word(UInt32(frameMTU - 14)))
        case .maximumTotalSize: return (.success, word(UInt32(frameMTU)))
        case .permanentAddress, .currentAddress: return (.success, self.macAddress.bytes)
        case .mediaConnectStatus: return (.success, word(linkUp ? 0 : 1))
        // 100 bit/s units: 10 Gbit/s, as OpenVMM reports by default.
        case .linkSpeed: return (.success, word(100_000_000))
        case .vendorID: return (.success, word(0x0000_155D))
        case .offloadHardwareCapabilities:
            // What the backend can finish (11 §5.3): partial TCP/UDP checksums, LSOv2 segments.
            // A backend with none takes only whole, checksummed frames, and the guest does the
            // work. The revision follows the guest's request header (Linux refuses a reply it
            // did not ask for).
            let revision = information.count >= 2 ? min(max(information[1], 1), 3) : 1
            return (.success, Self.offloadCapabilities(self.backend.offloads).encode(revision: revision))
        case .receiveScaleCapabilities:
            guard self.maximumQueues >= 2 else { return (.notSupported, []) }
            return (.success, RSSCapabilities(receiveQueues: UInt32(self.maximumQueues)).encode())
        default:
            return (.notSupported, [])
        }
    }

    /// NDIS_OFFLOAD for a backend's offloads: TCP (with options) and UDP checksums over IPv4
    /// and IPv6 (0x014 | 0x040, IPv6 also 0x001), LSOv2 up to 62 780 bytes (OpenVMM's size).
    static func offloadCapabilities(_ offloads: NetworkOffloads) -> NDISOffload {
        var capabilities = NDISOffload()
        guard offloads.contains(.checksum) else { return capabilities }
        capabilities.ipv4TransmitChecksum = 0x054
        capabilities.ipv6TransmitChecksum = 0x055
        if offloads.contains(.tcp4Segmentation) { capabilities.lsoIPv4MaximumSize = Self.largeSendSize }
        if offloads.contains(.tcp6Segmentation) { capabilities.lsoIPv6MaximumSize = Self.largeSendSize }
        capabilities.rscIPv4 = Self.offersRSC(offloads)
        capabilities.rscIPv6 = capabilities.rscIPv4
        return capabilities
    }

    /// RSC needs a backend that hands over whole large segments (and partial checksums).
    static func offersRSC(_ offloads: NetworkOffloads) -> Bool { offloads.isSuperset(of: .all) }

    /// The largest LSO segment offered.
    static let largeSendSize: UInt32 = 0xF53C

    func set(_ oid: NDISOID, information: [UInt8]) -> RNDISStatus {
        switch oid {
        case .currentPacketFilter:
            var reader = WireReader(information)
            guard let filter = try? reader.readUInt32() else { return .invalidData }
            self.state.withLock { $0.packetFilter = RNDISPacketFilter(rawValue: filter) }
            return .success
        case .offloadParameters:
            // NDIS_OFFLOAD_PARAMETERS (11 §5.3): only RSC (bytes 22/23, 2 = on) changes what
            // this host does; the rest follows from the backend.
            guard information.count >= 24, information[0] == NDISObjectHeader.offloadParametersType else { return .invalidData }
            let wanted = information[22] == 2 || information[23] == 2
            let rsc = self.state.withLock { state in
                state.rsc = wanted && state.version == .v61 && Self.offersRSC(self.backend.offloads)
                return state.rsc
            }
            // The backend hands over partial checksums and large segments only while the guest
            // takes them whole.
            self.backend.acceptOffloads(rsc ? self.backend.offloads : [])
            return .success
        case .rndisConfigParameter:
            return .success
        case .receiveScaleParameters:
            guard let parameters = try? RSSParameters(parsing: information[...]) else { return .invalidData }
            guard parameters.indirectionTable.allSatisfy({ $0 < UInt32(self.maximumQueues) }) else { return .invalidData }
            self.state.withLock { $0.rssTable = parameters.isDisabled ? [] : parameters.indirectionTable }
            return .success
        default:
            return .notSupported
        }
    }

    /// Writes a control message into a reserved slot and lends it to the guest (11 §7.2).
    func sendControl(_ message: RNDISMessage, on channel: Channel) async {
        let bytes = message.encode()
        let placed: (slot: Int, size: Int, gpadl: UInt32)? = self.state.withLock { state in
            guard let size = state.receive?.size, let gpadl = state.receive?.gpadl, bytes.count <= size,
                let slot = state.receive?.takeControl()
            else { return nil }
            do { try state.receive?.memory.write(bytes[...], at: slot * size) } catch { return nil }
            return (slot, size, gpadl)
        }
        guard let placed else { return }
        if channel.isCapturing { channel.recordBufferData(outgoing: true, gpadl: placed.gpadl, offset: UInt64(placed.slot * placed.size), bytes[...]) }
        let range = TransferPageRange(byteCount: UInt32(bytes.count), byteOffset: UInt32(placed.slot * placed.size))
        let payload = Self.transferPayload(NVSP.controlChannel, size: self.messageSize)
        guard let packet = try? PacketEncoder.transferPages(
            setID: NVSP.receiveBufferID, ranges: [range], payload: payload, transactionID: UInt64(placed.slot))
        else { return }
        if (try? await channel.send(encoded: packet)) == nil {
            self.state.withLock { _ = $0.receive?.release(UInt64(placed.slot)) }
        }
    }

    /// The size this host gives its NVSP messages at the negotiated version (11 §2.2).
    var messageSize: Int { self.state.withLock { $0.version } == .v61 ? NVSP.messageSize : NVSP.legacyMessageSize }
}

/// Bytes written by `body`.
func withWriter(_ body: (inout WireWriter) -> Void) -> [UInt8] {
    var writer = WireWriter()
    body(&writer)
    return writer.bytes
}
