import FuzzSupport
import VMBusWire

// Input: byte 0 = excess-word policy; then a GPADL header (u8 word count, relid u32, handle u32,
// range_buflen u16, rangecount u16, words) and bodies (u8 word count, message number u32,
// handle u32, words) until the input ends. Properties: reassembly never traps and never holds
// more words than range_buflen announces; ranges it accepts split into messages that reassemble
// to the same ranges.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGpadl(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = fuzzInput(data, size)[...]
    var reader = WireReader(input)
    guard let control = try? reader.readUInt8(), let header = try? readHeader(&reader) else { return 0 }
    let policy: TrailingBytePolicy = control & 1 == 0 ? .ignore : .reject
    guard var assembler = try? GpadlAssembler(header: header, excessWords: policy) else { return 0 }
    while let body = try? readBody(&reader) {
        do {
            try assembler.append(body)
        } catch {
            break
        }
        if assembler.words.count > assembler.expectedWords { violated("more words than announced", input) }
    }
    guard let ranges = try? assembler.finish() else { return 0 }
    if ranges.count != assembler.rangeCount { violated("range count differs from the header", input) }
    do {
        let (h, bodies) = try Gpadl.split(channel: header.childRelID, handle: header.gpadl, ranges: ranges)
        let again = try GpadlAssembler.assemble(header: h, bodies: bodies, excessWords: .reject)
        if again != ranges { violated("split and reassembly changed the ranges", input) }
        for message in [ChannelMessage.gpadlHeader(h)] + bodies.map({ .gpadlBody($0) }) {
            let bytes = try message.encode()
            if try ChannelMessage.parse(bytes, version: .win10, trailingBytes: .reject) != message {
                violated("a GPADL message did not survive the dispatch", input)
            }
        }
    } catch {
        violated("accepted ranges could not be split and reassembled: \(error)", input)
    }
    return 0
}

private func readHeader(_ reader: inout WireReader) throws(WireError) -> GpadlHeader {
    let count = Int(try reader.readUInt8() % UInt8(GpadlHeader.maximumWords + 1))
    let relid = try reader.readUInt32()
    let gpadl = try reader.readUInt32()
    let length = try reader.readUInt16()
    let ranges = try reader.readUInt16()
    return GpadlHeader(childRelID: relid, gpadl: gpadl, rangeBufferLength: length, rangeCount: ranges,
                       words: try readWords(&reader, count))
}

private func readBody(_ reader: inout WireReader) throws(WireError) -> GpadlBody {
    let count = Int(try reader.readUInt8() % UInt8(GpadlBody.maximumWords + 1))
    let number = try reader.readUInt32()
    let gpadl = try reader.readUInt32()
    return GpadlBody(messageNumber: number, gpadl: gpadl, words: try readWords(&reader, count))
}

private func readWords(_ reader: inout WireReader, _ count: Int) throws(WireError) -> [UInt64] {
    var words: [UInt64] = []
    for _ in 0..<count { words.append(try reader.readUInt64()) }
    return words
}
