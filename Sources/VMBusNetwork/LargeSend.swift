import VMBusWire

/// Offloaded frames between NDIS's convention on the wire and Linux's in backends (11 §5.4).
/// An LSOv2 segment from a guest has its IPv4 total length and header checksum zeroed (IPv6:
/// payload length) and its TCP checksum seeded with the pseudo-header sum *without* the
/// length; a TAP takes the lengths filled in and the sum with the length. Everything a peer
/// says is checked against the frame first.
enum LargeSend {
    static let ipv4: UInt16 = 0x0800
    static let ipv6: UInt16 = 0x86DD

    /// The IP layout of an untagged Ethernet frame at `base`: version and where the transport
    /// header starts (IPv4: after its options; IPv6: after the fixed header).
    static func layout(_ frame: [UInt8], base: Int, length: Int) -> (isIPv6: Bool, transport: Int, protocol: UInt8)? {
        guard length >= 14 + 20 else { return nil }
        switch UInt16(frame[base + 12]) << 8 | UInt16(frame[base + 13]) {
        case Self.ipv4:
            let ihl = Int(frame[base + 14] & 0x0F)
            guard frame[base + 14] >> 4 == 4, ihl >= 5, 14 + ihl * 4 <= length else { return nil }
            return (false, 14 + ihl * 4, frame[base + 14 + 9])
        case Self.ipv6:
            guard length >= 54, frame[base + 14] >> 4 == 6 else { return nil }
            return (true, 54, frame[base + 14 + 6])
        default:
            return nil
        }
    }

    /// Host side: what a guest's checksum and LSO PPIs ask for, checked against the frame and
    /// made Linux's convention in place. Partial checksums a backend cannot finish are finished
    /// here. - Returns: `nil` for a request that does not fit the frame, LSOv1, or LSO the
    /// backend cannot do (the send fails).
    static func offload(checksum: UInt32?, lso: UInt32?, frame: inout [UInt8], range: Range<Int>, backend: NetworkOffloads) -> FrameOffload? {
        let base = range.lowerBound
        let length = range.count
        if let lso, lso != 0 {
            let info = LSOInfo(rawValue: lso)
            guard lso & (1 << 30) != 0, (1...0xFFFF).contains(info.mss),
                backend.contains(info.isIPv6 ? .tcp6Segmentation : .tcp4Segmentation),
                let layout = Self.layout(frame, base: base, length: length), layout.isIPv6 == info.isIPv6, layout.protocol == 6,
                info.tcpHeaderOffset == layout.transport, layout.transport + 20 <= length
            else { return nil }
            let tcp = layout.transport
            let headerLength = Int(frame[base + tcp + 12] >> 4) * 4
            let tcpLength = length - tcp
            guard headerLength >= 20, tcp + headerLength <= length, length - 14 <= 0xFFFF else { return nil }
            if layout.isIPv6 {
                InternetChecksum.store(UInt16(length - 54), &frame, base + 18)
            } else {
                InternetChecksum.store(UInt16(length - 14), &frame, base + 16)
                Self.ipv4HeaderChecksum(&frame, base: base, headerLength: tcp - 14)
            }
            let field = base + tcp + 16
            InternetChecksum.store(InternetChecksum.add(InternetChecksum.load(frame, field), UInt16(tcpLength)), &frame, field)
            return FrameOffload(checksumStart: tcp, checksumOffset: 16, segmentation: info.isIPv6 ? .tcp6(mss: info.mss) : .tcp4(mss: info.mss))
        }
        var offload = FrameOffload.none
        guard let checksum, checksum != 0 else { return offload }
        let info = ChecksumInfo(rawValue: checksum)
        guard let layout = Self.layout(frame, base: base, length: length) else { return nil }
        if info.contains(.txIPHeader) && !layout.isIPv6 { Self.ipv4HeaderChecksum(&frame, base: base, headerLength: layout.transport - 14) }
        guard info.contains(.txTCP) || info.contains(.txUDP) else { return offload }
        let start = info.transportOffset != 0 ? info.transportOffset : layout.transport
        let offset = info.contains(.txTCP) ? 16 : 6
        guard start >= layout.transport, start + offset + 2 <= length else { return nil }
        if backend.contains(.checksum) {
            offload.checksumStart = start
            offload.checksumOffset = offset
        } else {
            InternetChecksum.complete(&frame, range: range, start: start, offset: offset)
        }
        return offload
    }

    static func ipv4HeaderChecksum(_ frame: inout [UInt8], base: Int, headerLength: Int) {
        InternetChecksum.store(0, &frame, base + 24)
        InternetChecksum.store(~InternetChecksum.sum(frame[(base + 14)..<(base + 14 + headerLength)]), &frame, base + 24)
    }

    /// Guest side: the PPI a frame with Linux offload state needs, and its headers (the first
    /// `headers.count` bytes of the frame, at least up to the TCP checksum) made NDIS's
    /// convention for LSO. - Returns: `nil` for state that does not fit the frame.
    static func toNDIS(_ offload: FrameOffload, headers: inout [UInt8], frameLength: Int) -> PerPacketInfo? {
        guard let start = offload.checksumStart else { return nil }
        guard let layout = Self.layout(headers, base: 0, length: min(headers.count, frameLength)) else { return nil }
        if let segmentation = offload.segmentation {
            guard start == layout.transport, start + 18 <= headers.count, layout.protocol == 6, segmentation.mss <= 0xF_FFFF else { return nil }
            let tcpLength = frameLength - start
            if layout.isIPv6 {
                InternetChecksum.store(0, &headers, 18)
            } else {
                InternetChecksum.store(0, &headers, 16)
                InternetChecksum.store(0, &headers, 24)
            }
            let field = start + 16
            InternetChecksum.store(InternetChecksum.subtract(InternetChecksum.load(headers, field), UInt16(truncatingIfNeeded: tcpLength)), &headers, field)
            let value = UInt32(segmentation.mss) | UInt32(start) << 20 | 1 << 30 | (layout.isIPv6 ? 1 << 31 : 0)
            return PerPacketInfo(type: .lso, value: value)
        }
        let version: ChecksumInfo = layout.isIPv6 ? .txIPv6 : .txIPv4
        let transport: ChecksumInfo = offload.checksumOffset == 6 ? .txUDP : .txTCP
        return PerPacketInfo(type: .checksum, value: version.rawValue | transport.rawValue | UInt32(start) << 16)
    }
}
