import FuzzSupport
import VMBusWire

// Input: byte 0 picks the connection state (version, features, trailing-byte policy); the
// rest is a SynIC payload. Properties: parsing never traps; whatever parses encodes, and the
// encoding parses back, exactly, to the same message.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChannelMessage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = fuzzInput(data, size)
    guard let control = input.first else { return 0 }
    let versions: [VMBusVersion?] = [nil] + VMBusVersion.known + [VMBusVersion(rawValue: 0x0007_0000)]
    let version = versions[Int(control & 0x0F) % versions.count]
    let features = FeatureFlags(rawValue: control & 0x10 != 0 ? 0xFFFF_FFFF : UInt32(control >> 5))
    let policy: TrailingBytePolicy = control & 0x80 != 0 ? .reject : .ignore
    let payload = input[1...]
    guard let message = try? ChannelMessage.parse(payload, version: version, features: features, trailingBytes: policy)
    else { return 0 }
    let encoded: [UInt8]
    do {
        encoded = try message.encode()
    } catch {
        violated("a parsed message does not encode: \(error)", payload)
    }
    if encoded.count > payload.count { violated("the encoding is longer than its input", payload) }
    do {
        let again = try ChannelMessage.parse(encoded, version: version, features: features, trailingBytes: .reject)
        if again != message { violated("round trip changed the message", payload) }
    } catch {
        violated("the encoding of a parsed message does not parse: \(error)", payload)
    }
    return 0
}
