import Testing
import VMBusWire

/// A structure's encoding, the number of bytes its parser needs, and the parser.
struct PrefixCase: CustomTestStringConvertible, Sendable {
    var name: String
    var encoding: [UInt8]
    var needed: Int
    var parse: @Sendable (inout WireReader) throws(WireError) -> Void
    var testDescription: String { self.name }
}

func encoding(_ write: (inout WireWriter) throws -> Void) -> [UInt8] {
    var writer = WireWriter()
    try? write(&writer)
    return writer.bytes
}

let prefixCases: [PrefixCase] = [
    PrefixCase(name: "SynIC message", encoding: encoding { try SynICMessage(messageType: 1, payload: [1, 2]).write(to: &$0) },
               needed: 256) { (r: inout WireReader) throws(WireError) in _ = try SynICMessage(from: &r) },
    PrefixCase(name: "HvPostMessage input", encoding: encoding { try PostMessageInput(connectionID: 4, payload: [1]).write(to: &$0) },
               needed: 256) { (r: inout WireReader) throws(WireError) in _ = try PostMessageInput(from: &r) },
    PrefixCase(name: "packet descriptor", encoding: encoding { PacketDescriptor(type: .dataInBand, offset8: 2, len8: 2).write(to: &$0) },
               needed: 16) { (r: inout WireReader) throws(WireError) in _ = try PacketDescriptor(from: &r) },
    PrefixCase(name: "GPA range", encoding: encoding { (try GpaRange(gpa: 0x1800, length: 8192)).write(to: &$0) },
               needed: 32) { (r: inout WireReader) throws(WireError) in _ = try GpaRange(from: &r) },
    PrefixCase(name: "pipe header", encoding: encoding { PipeHeader(length: 3).write(to: &$0) },
               needed: 8) { (r: inout WireReader) throws(WireError) in _ = try PipeHeader(from: &r) },
    PrefixCase(name: "IC header", encoding: encoding { ICMessageHeader(messageType: .heartbeat, messageSize: 0).write(to: &$0) },
               needed: 20) { (r: inout WireReader) throws(WireError) in _ = try ICMessageHeader(from: &r) },
    PrefixCase(name: "IC negotiate", encoding: encoding {
        try ICNegotiate(frameworkVersions: ICVersions.openVMMFramework, messageVersions: ICVersions.openVMMKVP).write(to: &$0)
    }, needed: 28) { (r: inout WireReader) throws(WireError) in _ = try ICNegotiate(from: &r) },
    PrefixCase(name: "heartbeat", encoding: encoding { HeartbeatMessage(sequenceNumber: 1).write(to: &$0) },
               needed: 8) { (r: inout WireReader) throws(WireError) in _ = try HeartbeatMessage(from: &r) },
    PrefixCase(name: "shutdown", encoding: encoding { try ShutdownMessage(flags: .restart).write(to: &$0) },
               needed: 2060) { (r: inout WireReader) throws(WireError) in _ = try ShutdownMessage(from: &r) },
    PrefixCase(name: "timesync v3", encoding: encoding { TimeSyncMessageV3(parentTime: 1, flags: .sync).write(to: &$0) },
               needed: 25) { (r: inout WireReader) throws(WireError) in _ = try TimeSyncMessageV3(from: &r) },
    PrefixCase(name: "timesync v4", encoding: encoding { TimeSyncMessageV4(parentTime: 1, vmReferenceTime: 2, flags: .sync).write(to: &$0) },
               needed: 22) { (r: inout WireReader) throws(WireError) in _ = try TimeSyncMessageV4(from: &r) },
    PrefixCase(name: "VSS", encoding: encoding { VSSMessage(operation: .freeze).write(to: &$0) },
               needed: 12) { (r: inout WireReader) throws(WireError) in _ = try VSSMessage(from: &r) },
    PrefixCase(name: "KVP record", encoding: encoding { try KVPRecord(key: "k", value: .dword(1)).write(to: &$0) },
               needed: 2572) { (r: inout WireReader) throws(WireError) in _ = try KVPRecord(from: &r) },
    PrefixCase(name: "KVP IP info", encoding: encoding { try KVPIPInfo(adapterID: "a", addressFamily: 1).write(to: &$0) },
               needed: 7426) { (r: inout WireReader) throws(WireError) in _ = try KVPIPInfo(from: &r) },
    PrefixCase(name: "KVP binary IP info", encoding: encoding {
        try KVPIPInfoBinary(counts: [0, 0, 0, 0, 0, 0], adapterID: "a", addressFamily: 1, dhcpEnabled: 0,
                            areas: KVPIPInfoBinary.areaSizes.map { [UInt8](repeating: 1, count: $0) }).write(to: &$0)
    }, needed: 3712) { (r: inout WireReader) throws(WireError) in _ = try KVPIPInfoBinary(from: &r) },
]

@Suite struct PrefixTests {
    @Test(arguments: prefixCases)
    func everyPrefixShorterThanTheStructureIsTruncated(_ c: PrefixCase) {
        #expect(c.encoding.count >= c.needed, "the sample encodes")
        var whole = WireReader(c.encoding)
        #expect(wireError { () throws(WireError) in try c.parse(&whole) } == nil, "the whole encoding parses")
        for length in 0..<c.needed {
            var reader = WireReader(Array(c.encoding.prefix(length)))
            let error = wireError { () throws(WireError) in try c.parse(&reader) }
            #expect(isTruncated(error), "prefix \(length): \(String(describing: error))")
        }
    }
}
