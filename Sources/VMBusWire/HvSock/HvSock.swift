/// Hyper-V socket constants, sizes and addressing (07).
public enum HvSock {
    /// Linux's vsock service template `00000000-facb-11e6-bd58-64006a7986d3` (07 §1): the port
    /// goes in the first field (wire bytes 0–3, little-endian).
    public static let serviceTemplate = GUID(data1: 0, data2: 0xfacb, data3: 0x11e6, data4: 0xbd58_6400_6a79_86d3)
    /// `HVS_HEADER_LEN`: packet descriptor (16) + pipe header (8).
    public static let headerLength = 24
    /// `HVS_MTU_SIZE`: the largest payload per packet ("host design").
    public static let mtu = 16384
    /// `HVS_SEND_BUF_SIZE`: the largest payload Linux puts in one packet it sends (4096 − 8).
    public static let sendBufferSize = 4096 - 8
    /// `HVS_MAX_PKT_SIZE` = `HVS_PKT_LEN(16384)` = 16416: Linux's receive `max_pkt_size`.
    public static let maximumPacketSize = packetLength(mtu)
    /// `HVS_PKT_LEN(4088)` = 4120: the outbound `pending_send_sz` Linux sets, permanently
    /// (07 §3.3).
    public static let pendingSendSize = packetLength(sendBufferSize)
    /// `HVS_PKT_LEN(0)` = 32: ring bytes of a FIN (a DATA packet with no payload).
    public static let finPacketLength = packetLength(0)
    /// `HVS_PKT_LEN(1) + HVS_PKT_LEN(0)` = 72: space a Linux writer keeps free so that a FIN
    /// always fits and the ring is never filled (07 §4.1).
    public static let sendReserve = packetLength(1) + packetLength(0)
    /// Ring size below protocol 5.0, both directions, header page included (07 §2): older
    /// Windows hosts reject any other.
    public static let legacyRingSize = 24 * 1024
    /// Smallest and largest ring size Linux uses from protocol 5.0 (header page included).
    public static let ringSizeRange = (24 * 1024)...(256 * 1024)
    /// The granularity ring sizes are rounded up to.
    public static let ringSizeGranularity = 4096
    /// The VMBus protocol from which ring sizes follow the socket buffer sizes.
    public static let ringSizeHintVersion = VMBusVersion.win10_5_0
    /// The lowest VMBus protocol with hvsock (TL_CONNECT_REQUEST and hvsock offers, 07 §2).
    public static let minimumVersion = VMBusVersion.win10
    /// The offer flags of every hvsock channel (0x2011).
    public static let offerFlags: OfferFlags = .hvsock

    /// `HVS_PKT_LEN(n)`: ring bytes of a packet with `n` payload bytes — header, payload padded
    /// to 8, 8-byte trailer. For a 100-byte send: 24 + 104 + 8 = 136 (07 §4).
    ///
    /// `payload` is a local size (at most ``mtu`` in practice): peer sizes are checked against
    /// ``mtu`` before they get here.
    public static func packetLength(_ payload: Int) -> Int {
        headerLength + PacketSize.align8(payload) + PacketDescriptor.trailerSize
    }

    /// The ring size (per direction, header page included) a Linux guest uses for a socket
    /// whose buffer size is `hint` (07 §2): exactly 24 KiB below protocol 5.0; from 5.0 the
    /// hint clamped to [24 KiB, 256 KiB] and rounded up to 4 KiB.
    public static func ringSize(version: VMBusVersion, hint: Int) -> Int {
        guard version >= Self.ringSizeHintVersion else { return Self.legacyRingSize }
        let clamped = min(max(hint, Self.ringSizeRange.lowerBound), Self.ringSizeRange.upperBound)
        // No overflow: clamped ≤ 256 KiB.
        return (clamped + Self.ringSizeGranularity - 1) / Self.ringSizeGranularity * Self.ringSizeGranularity
    }

    /// How many payload bytes a Linux-style writer may put in its next packet when `free` ring
    /// bytes are free (07 §4.1): nothing at or below the 72-byte reserve, else the rest rounded
    /// down to 8, at most one send buffer (4088).
    public static func sendableBytes(free: Int) -> Int {
        guard free > Self.sendReserve else { return 0 }
        return min((free - Self.sendReserve) & ~7, Self.sendBufferSize)
    }
}

extension GUID {
    /// The hvsock service (or endpoint) id of vsock port `port`: the template with `port` in
    /// its first field (07 §1). Port 5000 is `00001388-facb-11e6-bd58-64006a7986d3`, on the
    /// wire `88 13 00 00 cb fa e6 11 bd 58 64 00 6a 79 86 d3`.
    public static func vsockService(port: UInt32) -> GUID {
        var guid = HvSock.serviceTemplate
        guid.data1 = port
        return guid
    }

    /// Whether wire bytes 4–15 equal the template's: Linux ignores hvsock offers whose service
    /// id is not template-shaped (07 §3).
    public var isVsockTemplate: Bool {
        let template = HvSock.serviceTemplate
        return self.data2 == template.data2 && self.data3 == template.data3 && self.data4 == template.data4
    }

    /// The vsock port this GUID carries (wire bytes 0–3, little-endian), or `nil` unless it is
    /// template-shaped.
    public var vsockPort: UInt32? {
        self.isVsockTemplate ? self.data1 : nil
    }
}
