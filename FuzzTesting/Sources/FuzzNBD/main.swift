import FuzzSupport
import VMBusStorage
import VMBusWire

// Input: byte 0 picks an NBD message (greeting, option header, option reply, INFO/GO export
// request, request, simple reply); the rest is the bytes a peer sent.
// Properties: nothing traps; whatever parses writes and parses back to the same value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNBD(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = fuzzInput(data, size)
    guard let selector = input.first else { return 0 }
    let body = input[1...]
    func roundTrip<T: Equatable>(_ name: String, _ parse: (inout WireReader) throws -> T, _ write: (T, inout WireWriter) -> Void) {
        var reader = WireReader(body)
        guard let value = try? parse(&reader) else { return }
        var writer = WireWriter(capacity: body.count)
        write(value, &writer)
        var again = WireReader(writer.bytes[...])
        if (try? parse(&again)) != value { violated("\(name) round trip", body) }
    }
    switch selector % 6 {
    case 0: roundTrip("greeting", { try NBDGreeting(from: &$0) }, { $0.write(to: &$1) })
    case 1: roundTrip("option header", { try NBDOptionHeader(from: &$0) }, { $0.write(to: &$1) })
    case 2: roundTrip("option reply", { try NBDOptionReply(from: &$0) }, { $0.write(to: &$1) })
    case 3: roundTrip("export request", { try NBDExportRequest(from: &$0) }, { $0.write(to: &$1) })
    case 4: roundTrip("request", { try NBDRequest(from: &$0) }, { $0.write(to: &$1) })
    default: roundTrip("simple reply", { try NBDSimpleReply(from: &$0) }, { $0.write(to: &$1) })
    }
    return 0
}
