import FuzzSupport
import VMBusWire

// Input: byte 0 picks a parser (NVSP message, RNDIS control message, RNDIS PACKET header and
// its PPI walk, RSS parameters, RSS capabilities, NDIS_OFFLOAD); the rest is the bytes to parse.
// Properties: nothing traps; an NVSP or RNDIS message that parses encodes and parses back to
// the same value; a PACKET header's frame and PPI areas lie inside its message and the input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNetwork(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = fuzzInput(data, size)
    guard input.count >= 1 else { return 0 }
    let body = input[1...]
    switch input[0] % 6 {
    case 0:
        guard let message = try? NVSPMessage(parsing: body) else { return 0 }
        // Unpadded: padding would become body bytes of an unknown type.
        if (try? NVSPMessage(parsing: message.encode(size: 0)[...])) != message { violated("NVSP round trip", body) }
    case 1:
        guard let message = try? RNDISMessage(parsing: body) else { return 0 }
        if (try? RNDISMessage(parsing: message.encode()[...])) != message { violated("RNDIS round trip", body) }
    case 2:
        guard let header = try? RNDISPacketHeader(parsing: body) else { return 0 }
        let inside = header.frameOffset >= RNDISPacketHeader.size && header.frameLength > 0
            && header.frameOffset + header.frameLength <= header.messageLength && header.messageLength <= body.count
            && (header.ppiLength == 0 || header.ppiOffset + header.ppiLength <= header.messageLength)
        if !inside { violated("PACKET areas outside the message", body) }
        let start = body.startIndex
        var total = 0
        try? PerPacketInfo.walk(body[(start + header.ppiOffset)..<(start + header.ppiOffset + header.ppiLength)]) { _, data in
            total += data.count
        }
        if total > header.ppiLength { violated("PPI data larger than its area", body) }
    case 3:
        guard let parameters = try? RSSParameters(parsing: body) else { return 0 }
        if (try? RSSParameters(parsing: parameters.encode()[...])) != parameters { violated("RSS parameters round trip", body) }
    case 4:
        guard let capabilities = try? RSSCapabilities(parsing: body) else { return 0 }
        if (try? RSSCapabilities(parsing: capabilities.encode()[...])) != capabilities { violated("RSS capabilities round trip", body) }
    default:
        guard let offload = try? NDISOffload(parsing: body) else { return 0 }
        if (try? NDISOffload(parsing: offload.encode(revision: 3)[...])) != offload { violated("NDIS_OFFLOAD round trip", body) }
    }
    return 0
}
