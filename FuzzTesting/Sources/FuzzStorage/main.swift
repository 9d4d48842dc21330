import FuzzSupport
import VMBusWire

// Input: byte 0 picks a parser (vstor packet, CDB, fixed sense, standard INQUIRY, VPD page and
// its typed views, READ CAPACITY 10/16, MODE SENSE answer 6/10, REPORT LUNS, UNMAP list);
// for the vstor packet byte 1 picks the request a COMPLETE_IO completes, for the MODE SENSE
// answer its form. The rest is the bytes to parse.
// Properties: nothing traps; whatever parses encodes and parses back to the same value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStorage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = fuzzInput(data, size)
    guard input.count >= 2 else { return 0 }
    let selector = input[1]
    let body = input[2...]
    switch input[0] % 9 {
    case 0:
        let completing: [StorageOperation?] = [
            nil, .queryProtocolVersion, .queryProperties, .executeSRB, .fibreChannelData, .beginInitialization,
        ]
        let request = completing[Int(selector) % completing.count]
        guard let packet = try? StoragePacket(parsing: body, completing: request) else { return 0 }
        // Natural size: padding would become bytes of a raw body.
        if (try? StoragePacket(parsing: packet.encode(size: nil)[...], completing: request)) != packet {
            violated("vstor packet round trip", body)
        }
        if case .raw = packet.body { break }
        for size in [StorageProtocol.packetSize, StorageProtocol.legacyPacketSize] {
            guard let again = try? StoragePacket(parsing: packet.encode(size: size)[...], completing: request) else {
                violated("vstor packet at size \(size) does not parse", body)
            }
            if size == StorageProtocol.packetSize && again != packet { violated("vstor packet at 64 bytes", body) }
        }
        if case .request(let srb) = packet.body, srb.cdb.count > 16 || srb.senseData.count > 20 {
            violated("CDB or sense beyond the area", body)
        }
    case 1:
        guard let command = try? SCSICommand(parsing: body) else { return 0 }
        let encoded = command.encode()
        if let length = command.operationCode.cdbLength, encoded.count != length { violated("CDB length", body) }
        if (try? SCSICommand(parsing: encoded[...])) != command { violated("CDB round trip", body) }
    case 2:
        guard let sense = try? FixedSenseData(parsing: body) else { return 0 }
        if (try? FixedSenseData(parsing: sense.encode()[...])) != sense { violated("sense round trip", body) }
    case 3:
        guard let inquiry = try? InquiryData(parsing: body) else { return 0 }
        if (try? InquiryData(parsing: inquiry.encode()[...])) != inquiry { violated("INQUIRY round trip", body) }
    case 4:
        guard let page = try? VPDPage(parsing: body) else { return 0 }
        if (try? VPDPage(parsing: page.encode()[...])) != page { violated("VPD page round trip", body) }
        if page.data.count > Int(page.pageLength) { violated("VPD data beyond its length", body) }
        func again<P: Equatable>(_ view: P?, _ make: (VPDPage) throws(WireError) -> P, _ encode: (P) -> VPDPage) {
            guard let view else { return }
            if (try? make(encode(view))) != view { violated("typed VPD page round trip", body) }
        }
        again(try? VPDSupportedPages(page), VPDSupportedPages.init, \.page)
        again(try? VPDUnitSerialNumber(page), VPDUnitSerialNumber.init, \.page)
        again(try? VPDDeviceIdentification(page), VPDDeviceIdentification.init, \.page)
        again(try? VPDBlockLimits(page), VPDBlockLimits.init, \.page)
        again(try? VPDBlockDeviceCharacteristics(page), VPDBlockDeviceCharacteristics.init, \.page)
        again(try? VPDLogicalBlockProvisioning(page), VPDLogicalBlockProvisioning.init, \.page)
    case 5:
        if let rc10 = try? ReadCapacity10Data(parsing: body), (try? ReadCapacity10Data(parsing: rc10.encode()[...])) != rc10 {
            violated("READ CAPACITY(10) round trip", body)
        }
        if let rc16 = try? ReadCapacity16Data(parsing: body), (try? ReadCapacity16Data(parsing: rc16.encode()[...])) != rc16 {
            violated("READ CAPACITY(16) round trip", body)
        }
    case 6:
        let form: SCSICDBForm = selector & 1 == 0 ? .six : .ten
        guard let list = try? ModeParameterList(parsing: body, form: form) else { return 0 }
        if (try? ModeParameterList(parsing: list.encode()[...], form: form)) != list { violated("mode list round trip", body) }
        for page in list.pages {
            guard let caching = try? CachingModePage(page) else { continue }
            if (try? CachingModePage(caching.page)) != caching { violated("caching page round trip", body) }
        }
    case 7:
        guard let luns = try? ReportLUNsData(parsing: body) else { return 0 }
        if luns.entries.count * 8 > body.count { violated("REPORT LUNS entries beyond the input", body) }
        if (try? ReportLUNsData(parsing: luns.encode()[...])) != luns { violated("REPORT LUNS round trip", body) }
    default:
        guard let list = try? UnmapParameterList(parsing: body) else { return 0 }
        if (try? UnmapParameterList(parsing: list.encode()[...])) != list { violated("UNMAP round trip", body) }
    }
    return 0
}
