import FuzzSupport
import VMBusWire

// Input: byte 0 picks a parser (IC framing, negotiation, each service body, hvsock data, offer
// parameters), byte 1 a service version where one matters; the rest is the bytes to parse.
// Properties: nothing traps; whatever parses encodes and parses back to the same value; a
// negotiation answer is a well-formed response as long as the request.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIC(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = fuzzInput(data, size)
    guard input.count >= 2 else { return 0 }
    let body = input[2...]
    let version = ICVersion(UInt16(input[1] % 6), 0)
    switch input[0] % 12 {
    case 0:
        guard let message = try? ICMessage(payload: body) else { return 0 }
        if (try? ICMessage(payload: message.encode()[...])) != message { violated("IC message round trip", body) }
    case 1:
        guard let (response, chosen) = try? ICNegotiation.respond(
            to: body, framework: ICVersions.linuxFramework, service: ICVersions.linuxKVP)
        else { return 0 }
        if response.count < body.count { violated("negotiation answer shorter than the request", body) }
        guard let parsed = try? ICMessage(payload: response[...]), parsed.header.flags == .guestResponse else {
            violated("negotiation answer is not a response", body)
        }
        let seen: (framework: ICVersion, service: ICVersion)?
        do {
            seen = try ICNegotiation.chosen(in: parsed)
        } catch {
            violated("the host cannot read the negotiation answer: \(error)", body)
        }
        if seen?.framework != chosen?.framework || seen?.service != chosen?.service {
            violated("the host reads another choice than the guest made", body)
        }
    case 2: check(body) { (r: inout WireReader) throws(WireError) in try HeartbeatMessage(from: &r) } write: { $1.write(to: &$0) }
    case 3: check(body) { (r: inout WireReader) throws(WireError) in try ShutdownMessage(from: &r) } write: { try $1.write(to: &$0) }
    case 4: check(body) { (r: inout WireReader) throws(WireError) in try TimeSyncMessageV3(from: &r) } write: { $1.write(to: &$0) }
    case 5: check(body) { (r: inout WireReader) throws(WireError) in try TimeSyncMessageV4(from: &r) } write: { $1.write(to: &$0) }
    case 6:
        check(body) { (r: inout WireReader) throws(WireError) in try KVPMessage(from: &r, serviceVersion: version) } write: {
            try $1.write(to: &$0)
        }
    case 7: check(body) { (r: inout WireReader) throws(WireError) in try VSSMessage(from: &r) } write: { $1.write(to: &$0) }
    case 8: check(body) { (r: inout WireReader) throws(WireError) in try FileCopyMessage(from: &r) } write: { try $1.write(to: &$0) }
    case 9: check(body) { (r: inout WireReader) throws(WireError) in try ICNegotiate(from: &r) } write: { try $1.write(to: &$0) }
    case 10:
        guard let data = try? HvSockData(payload: body) else { return 0 }
        guard let packet = try? HvSockData.packet(data.data), case .inBand(_, let payload)? = try? VMBusPacket.parse(packet),
            (try? HvSockData(payload: payload)) == data
        else { violated("hvsock data round trip", body) }
    default:
        guard let area = try? UserDefinedBytes(body.prefix(UserDefinedBytes.size)) else { return 0 }
        let hvsock = HvSockOfferParameters(area)
        if HvSockOfferParameters(hvsock.area) != hvsock { violated("hvsock offer parameters round trip", body) }
        let pipe = PipeOfferParameters(area)
        if (try? pipe.area()) != area { violated("pipe offer parameters round trip", body) }
    }
    return 0
}

/// Parses `bytes`; if that works, writes the value and parses it again: it must be equal.
private func check<T: Equatable>(
    _ bytes: ArraySlice<UInt8>, parse: (inout WireReader) throws(WireError) -> T,
    write: (inout WireWriter, T) throws -> Void
) {
    var reader = WireReader(bytes)
    guard let value = try? parse(&reader) else { return }
    var writer = WireWriter()
    do {
        try write(&writer, value)
    } catch {
        violated("a parsed value does not encode: \(error)", bytes)
    }
    var again = WireReader(writer.bytes)
    guard let second = try? parse(&again), second == value else { violated("round trip changed the value", bytes) }
}
