import FuzzSupport
import VMBusWire

// Input: the bytes of one ring packet, as a reader copies them out of a ring. Properties:
// parsing never traps; a parsed packet encodes to exactly its length and parses back to the same
// packet; the descriptor's two-word form agrees with the byte form.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPacket(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = fuzzInput(data, size)[...]
    if input.count >= 16 {
        var reader = WireReader(input)
        if let descriptor = try? PacketDescriptor(from: &reader) {
            guard let viaWords = try? PacketDescriptor(words: descriptor.words), viaWords == descriptor else {
                violated("descriptor words disagree with bytes", input)
            }
            _ = try? descriptor.validateStrictly()
        }
    }
    guard let packet = try? VMBusPacket.parse(input) else { return 0 }
    let encoded: [UInt8]
    do {
        encoded = try packet.encode()
    } catch {
        violated("a parsed packet does not encode: \(error)", input)
    }
    if encoded.count != input.count { violated("re-encoding changed the length", input) }
    guard let again = try? VMBusPacket.parse(encoded), again == packet else {
        violated("round trip changed the packet", input)
    }
    return 0
}
