/// One NVSP message (11 §3): the in-band payload of a network channel's packet, a u32 type
/// and its body. Readers accept any payload at least as long as the fields they read (peers
/// send 28, 32 or 40 bytes and zero-extend); writers pad to the size the sender uses.
public enum NVSPMessage: Hashable, Sendable {
    /// INIT (G→H, completion requested).
    case initialize(minimum: NVSPVersion, maximum: NVSPVersion)
    /// INIT_COMPLETE (H→G completion): the old negotiated-version word (ignored), the MDL
    /// chain limit (ignored) and the status.
    case initializeComplete(negotiated: UInt32, maximumMDLChainLength: UInt32, status: NVSPStatus)
    /// SEND_NDIS_VER.
    case ndisVersion(major: UInt32, minor: UInt32)
    /// SEND_NDIS_CONFIG: the frame MTU and capabilities (NVSP ≥ 2).
    case ndisConfig(mtu: UInt32, capabilities: NVSPCapabilities)
    /// SEND_RECV_BUF: the receive buffer's GPADL and id.
    case receiveBuffer(gpadl: UInt32, id: UInt16)
    /// RECV_BUF_COMPLETE: status and the sections (Linux accepts exactly one).
    case receiveBufferComplete(status: NVSPStatus, sections: [NVSPReceiveSection])
    /// REVOKE_RECV_BUF: the receive buffer `id` is no longer to be used.
    case revokeReceiveBuffer(id: UInt16)
    /// SEND_SEND_BUF.
    case sendBuffer(gpadl: UInt32, id: UInt16)
    /// SEND_BUF_COMPLETE: status and the section size.
    case sendBufferComplete(status: NVSPStatus, sectionSize: UInt32)
    /// REVOKE_SEND_BUF: the send buffer `id` is no longer to be used.
    case revokeSendBuffer(id: UInt16)
    /// SEND_RNDIS_PKT: data or control, the send section used (``NVSP/noSection`` if none)
    /// and its byte count.
    case rndisPacket(channelType: UInt32, sectionIndex: UInt32, sectionBytes: UInt32)
    /// SEND_RNDIS_PKT_COMPLETE.
    case rndisPacketComplete(status: NVSPStatus)
    /// SUBCHANNEL: from the guest {operation 1 = allocate, count requested}; the host's
    /// completion of the same type {status, count granted}.
    case subchannel(operationOrStatus: UInt32, count: UInt32)
    /// SEND_INDIRECTION_TABLE (H→G): channel numbers a flow's hash picks from.
    case indirectionTable([UInt32])
    /// SEND_VF_ASSOCIATION (H→G).
    case vfAssociation(allocated: UInt32, serial: UInt32)
    /// SWITCH_DATA_PATH: 0 synthetic, 1 VF.
    case switchDataPath(UInt32)
    /// OID_QUERY_EX (not used by Linux; OpenVMM answers NOT_SUPPORTED).
    case oidQueryEx(header: UInt32, oid: UInt32)
    /// OID_QUERY_EX_COMPLETE: the status and the bytes of answer.
    case oidQueryExComplete(status: UInt32, bytes: UInt32)
    /// A type this library does not interpret, kept whole (body after the type word).
    case other(NVSPMessageType, body: [UInt8])

    /// The message's type word.
    public var type: NVSPMessageType {
        switch self {
        case .initialize: return .initialize
        case .initializeComplete: return .initializeComplete
        case .ndisVersion: return .sendNDISVersion
        case .ndisConfig: return .sendNDISConfig
        case .receiveBuffer: return .sendReceiveBuffer
        case .receiveBufferComplete: return .sendReceiveBufferComplete
        case .revokeReceiveBuffer: return .revokeReceiveBuffer
        case .sendBuffer: return .sendSendBuffer
        case .sendBufferComplete: return .sendSendBufferComplete
        case .revokeSendBuffer: return .revokeSendBuffer
        case .rndisPacket: return .sendRNDISPacket
        case .rndisPacketComplete: return .sendRNDISPacketComplete
        case .subchannel: return .subchannel
        case .indirectionTable: return .sendIndirectionTable
        case .vfAssociation: return .vfAssociation
        case .switchDataPath: return .switchDataPath
        case .oidQueryEx: return .oidQueryEx
        case .oidQueryExComplete: return .oidQueryExComplete
        case .other(let type, _): return type
        }
    }

    /// Bytes of the indirection-table message this host sends: a whole 40-byte message, then
    /// the table at offset 40 — the layout that both Linux's pre-6.1 workaround and 6.1
    /// read correctly (11 §6).
    public static let indirectionTableOffset = 40

    /// Parses one message.
    /// - Throws: ``WireError/truncated(needed:available:)`` when the payload is shorter than the
    ///   fields its type needs (type word included); ``WireError/invalidField(name:value:)``
    ///   for an indirection table whose count is not 16 or whose offset leaves no room for it.
    public init(parsing payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        let type = NVSPMessageType(rawValue: try reader.readUInt32())
        func need(_ bodyBytes: Int) throws(WireError) { try reader.require(bodyBytes) }
        switch type {
        case .initialize:
            try need(8)
            self = .initialize(
                minimum: NVSPVersion(rawValue: try reader.readUInt32()), maximum: NVSPVersion(rawValue: try reader.readUInt32()))
        case .initializeComplete:
            try need(12)
            self = .initializeComplete(
                negotiated: try reader.readUInt32(), maximumMDLChainLength: try reader.readUInt32(),
                status: NVSPStatus(rawValue: try reader.readUInt32()))
        case .sendNDISVersion:
            try need(8)
            self = .ndisVersion(major: try reader.readUInt32(), minor: try reader.readUInt32())
        case .sendNDISConfig:
            try need(16)
            let mtu = try reader.readUInt32()
            _ = try reader.readUInt32()
            self = .ndisConfig(mtu: mtu, capabilities: NVSPCapabilities(rawValue: try reader.readUInt64()))
        case .sendReceiveBuffer, .sendSendBuffer:
            try need(6)
            let gpadl = try reader.readUInt32()
            let id = try reader.readUInt16()
            self = type == .sendReceiveBuffer ? .receiveBuffer(gpadl: gpadl, id: id) : .sendBuffer(gpadl: gpadl, id: id)
        case .sendReceiveBufferComplete:
            try need(8)
            let status = NVSPStatus(rawValue: try reader.readUInt32())
            let count = try reader.readUInt32()
            // Bounded by the payload before anything is allocated: 16 bytes a section.
            guard UInt64(count) * 16 <= UInt64(reader.remaining) else {
                throw WireError.truncated(needed: reader.consumed + Int(min(count, 1 << 20)) * 16, available: payload.count)
            }
            var sections: [NVSPReceiveSection] = []
            sections.reserveCapacity(Int(count))
            for _ in 0..<count {
                let offset = try reader.readUInt32()
                let size = try reader.readUInt32()
                let subCount = try reader.readUInt32()
                var section = NVSPReceiveSection(offset: offset, subAllocationSize: size, subAllocationCount: subCount)
                section.endOffset = try reader.readUInt32()
                sections.append(section)
            }
            self = .receiveBufferComplete(status: status, sections: sections)
        case .revokeReceiveBuffer, .revokeSendBuffer:
            try need(2)
            let id = try reader.readUInt16()
            self = type == .revokeReceiveBuffer ? .revokeReceiveBuffer(id: id) : .revokeSendBuffer(id: id)
        case .sendSendBufferComplete:
            try need(8)
            self = .sendBufferComplete(status: NVSPStatus(rawValue: try reader.readUInt32()), sectionSize: try reader.readUInt32())
        case .sendRNDISPacket:
            try need(12)
            self = .rndisPacket(
                channelType: try reader.readUInt32(), sectionIndex: try reader.readUInt32(), sectionBytes: try reader.readUInt32())
        case .sendRNDISPacketComplete:
            try need(4)
            self = .rndisPacketComplete(status: NVSPStatus(rawValue: try reader.readUInt32()))
        case .subchannel:
            try need(8)
            self = .subchannel(operationOrStatus: try reader.readUInt32(), count: try reader.readUInt32())
        case .sendIndirectionTable:
            try need(8)
            let count = try reader.readUInt32()
            let offset = try reader.readUInt32()
            guard count == UInt32(NVSP.indirectionTableEntries) else {
                throw WireError.invalidField(name: "send table count", value: UInt64(count))
            }
            guard payload.count >= 4 * NVSP.indirectionTableEntries, UInt64(offset) <= UInt64(payload.count - 4 * NVSP.indirectionTableEntries)
            else {
                throw WireError.invalidField(name: "send table offset", value: UInt64(offset))
            }
            var table = WireReader(payload.dropFirst(Int(offset)))
            var entries: [UInt32] = []
            entries.reserveCapacity(NVSP.indirectionTableEntries)
            for _ in 0..<NVSP.indirectionTableEntries { entries.append(try table.readUInt32()) }
            self = .indirectionTable(entries)
        case .vfAssociation:
            try need(8)
            self = .vfAssociation(allocated: try reader.readUInt32(), serial: try reader.readUInt32())
        case .switchDataPath:
            try need(4)
            self = .switchDataPath(try reader.readUInt32())
        case .oidQueryEx:
            try need(8)
            self = .oidQueryEx(header: try reader.readUInt32(), oid: try reader.readUInt32())
        case .oidQueryExComplete:
            try need(8)
            self = .oidQueryExComplete(status: try reader.readUInt32(), bytes: try reader.readUInt32())
        default:
            self = .other(type, body: Array(reader.readRemaining()))
        }
    }

    /// The payload, zero-padded to at least `size` bytes (a guest sends 40; a host 28 before
    /// 6.1 and 40 at 6.1). The indirection table is always 40 + 64 bytes.
    public func encode(size: Int = NVSP.messageSize) -> [UInt8] {
        var writer = WireWriter(capacity: max(size, 104))
        writer.writeUInt32(self.type.rawValue)
        switch self {
        case .initialize(let minimum, let maximum):
            writer.writeUInt32(minimum.rawValue)
            writer.writeUInt32(maximum.rawValue)
        case .initializeComplete(let negotiated, let chain, let status):
            writer.writeUInt32(negotiated)
            writer.writeUInt32(chain)
            writer.writeUInt32(status.rawValue)
        case .ndisVersion(let major, let minor):
            writer.writeUInt32(major)
            writer.writeUInt32(minor)
        case .ndisConfig(let mtu, let capabilities):
            writer.writeUInt32(mtu)
            writer.writeUInt32(0)
            writer.writeUInt64(capabilities.rawValue)
        case .receiveBuffer(let gpadl, let id), .sendBuffer(let gpadl, let id):
            writer.writeUInt32(gpadl)
            writer.writeUInt16(id)
        case .receiveBufferComplete(let status, let sections):
            writer.writeUInt32(status.rawValue)
            writer.writeUInt32(UInt32(truncatingIfNeeded: sections.count))
            for section in sections {
                writer.writeUInt32(section.offset)
                writer.writeUInt32(section.subAllocationSize)
                writer.writeUInt32(section.subAllocationCount)
                writer.writeUInt32(section.endOffset)
            }
        case .revokeReceiveBuffer(let id), .revokeSendBuffer(let id):
            writer.writeUInt16(id)
        case .sendBufferComplete(let status, let sectionSize):
            writer.writeUInt32(status.rawValue)
            writer.writeUInt32(sectionSize)
        case .rndisPacket(let channelType, let index, let bytes):
            writer.writeUInt32(channelType)
            writer.writeUInt32(index)
            writer.writeUInt32(bytes)
        case .rndisPacketComplete(let status):
            writer.writeUInt32(status.rawValue)
        case .subchannel(let first, let count):
            writer.writeUInt32(first)
            writer.writeUInt32(count)
        case .indirectionTable(let entries):
            writer.writeUInt32(UInt32(NVSP.indirectionTableEntries))
            writer.writeUInt32(UInt32(Self.indirectionTableOffset))
            writer.writeZeros(Self.indirectionTableOffset - writer.count)
            for i in 0..<NVSP.indirectionTableEntries { writer.writeUInt32(i < entries.count ? entries[i] : 0) }
        case .vfAssociation(let allocated, let serial):
            writer.writeUInt32(allocated)
            writer.writeUInt32(serial)
        case .switchDataPath(let path):
            writer.writeUInt32(path)
        case .oidQueryEx(let header, let oid):
            writer.writeUInt32(header)
            writer.writeUInt32(oid)
        case .oidQueryExComplete(let status, let bytes):
            writer.writeUInt32(status)
            writer.writeUInt32(bytes)
        case .other(_, let body):
            writer.writeBytes(body)
        }
        if writer.count < size { writer.writeZeros(size - writer.count) }
        return writer.bytes
    }
}
