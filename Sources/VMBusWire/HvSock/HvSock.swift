/// Hyper-V socket constants and addressing (07).
public enum HvSock {
    /// Linux's vsock service template `00000000-facb-11e6-bd58-64006a7986d3`: the port is the
    /// first field (wire bytes 0–3, little-endian).
    public static let serviceTemplate = GUID(data1: 0, data2: 0xfacb, data3: 0x11e6, data4: 0xbd58_6400_6a79_86d3)
    /// Descriptor (16) + pipe header (8): `HVS_HEADER_LEN`.
    public static let headerLength = 24
    /// Largest payload per packet ("host design"): `HVS_MTU_SIZE`.
    public static let mtu = 16384
    /// Largest payload Linux puts in one packet it sends: `HVS_SEND_BUF_SIZE`.
    public static let sendBufferSize = 4096 - 8
    /// Linux's receive `max_pkt_size`: `HVS_PKT_LEN(16384)`.
    public static let maximumPacketSize = packetLength(mtu)
    /// Linux sets its outbound `pending_send_sz` to this, permanently: `HVS_PKT_LEN(4088)`.
    public static let pendingSendSize = packetLength(sendBufferSize)
    /// Ring bytes of a FIN (a DATA packet with no payload).
    public static let finPacketLength = packetLength(0)
    /// Space a writer keeps free so that a FIN always fits: `HVS_PKT_LEN(1) + HVS_PKT_LEN(0)`.
    public static let sendReserve = packetLength(1) + packetLength(0)
    /// Ring size below protocol 5.0, both directions, header page included.
    public static let legacyRingSize = 24 * 1024
    /// Smallest and largest ring size Linux uses from protocol 5.0.
    public static let ringSizeRange = (24 * 1024)...(256 * 1024)
    /// The offer flags of every hvsock channel (0x2011).
    public static let offerFlags: OfferFlags = .hvsock

    /// `HVS_PKT_LEN(n)`: ring bytes of a packet with `n` payload bytes, trailer included.
    public static func packetLength(_ payload: Int) -> Int {
        headerLength + PacketSize.align8(payload) + PacketDescriptor.trailerSize
    }

    /// The ring size (per direction, header page included) a Linux guest uses for a socket
    /// whose buffer size is `hint` (07 §2): exactly 24 KiB below 5.0; otherwise the hint
    /// clamped to [24 KiB, 256 KiB] and rounded up to 4 KiB.
    public static func ringSize(version: VMBusVersion, hint: Int) -> Int {
        guard version >= .win10_5_0 else { return Self.legacyRingSize }
        let clamped = min(max(hint, Self.ringSizeRange.lowerBound), Self.ringSizeRange.upperBound)
        return (clamped + 4095) & ~4095
    }

    /// How many payload bytes a Linux-style writer may send when `free` ring bytes are free
    /// (07 §4.1): nothing at or below the 72-byte reserve, else the rest rounded down to 8,
    /// at most one send buffer per packet.
    public static func sendableBytes(free: Int) -> Int {
        guard free > Self.sendReserve else { return 0 }
        return min((free - Self.sendReserve) & ~7, Self.sendBufferSize)
    }
}

extension GUID {
    /// The hvsock service (or endpoint) id of vsock port `port`: the template with `port` in
    /// its first field (07 §1). Port 5000 is `00001388-facb-11e6-bd58-64006a7986d3`.
    public static func vsockService(port: UInt32) -> GUID {
        var guid = HvSock.serviceTemplate
        guid.data1 = port
        return guid
    }

    /// The vsock port this GUID carries, or `nil` unless bytes 4–15 equal the template's
    /// (Linux ignores hvsock offers whose service id is not template-shaped).
    public var vsockPort: UInt32? {
        let template = HvSock.serviceTemplate
        guard self.data2 == template.data2, self.data3 == template.data3, self.data4 == template.data4 else {
            return nil
        }
        return self.data1
    }
}
