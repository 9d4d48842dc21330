import Testing
import VMBusMemory
import VMBusWire

@testable import VMBusStorage

/// The NBD wire formats, the handshake machine and the request checks, with no socket: sizes
/// and byte order pinned to the protocol document, round trips, every truncation, and hostile
/// values.
@Suite struct NBDWireTests {
    // MARK: Formats

    @Test func requestBytesAreBigEndianInTheDocumentsOrder() throws {
        let request = NBDRequest(flags: .fua, command: .write, cookie: 0x0102_0304_0506_0708, offset: 0x1122_3344_5566_7788, length: 0x0000_0200)
        var writer = WireWriter()
        request.write(to: &writer)
        #expect(writer.bytes == [
            0x25, 0x60, 0x95, 0x13, 0x00, 0x01, 0x00, 0x01, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
            0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x00, 0x00, 0x02, 0x00,
        ])
        #expect(writer.bytes.count == NBDRequest.wireSize)
        var reader = WireReader(writer.bytes)
        #expect(try NBDRequest(from: &reader) == request)
    }

    @Test func greetingAndRepliesHaveTheDocumentsSizesAndMagics() throws {
        #expect(NBDHandshake.greeting == Array("NBDMAGIC".utf8) + Array("IHAVEOPT".utf8) + [0x00, 0x03])
        #expect(NBDSimpleReply(error: .invalid, cookie: 7).bytes == [0x67, 0x44, 0x66, 0x98, 0, 0, 0, 22, 0, 0, 0, 0, 0, 0, 0, 7])
        let reply = NBDOptionReply(option: .go, type: .errorUnknown, data: [0x41])
        #expect(reply.bytes == [0x00, 0x03, 0xe8, 0x89, 0x04, 0x55, 0x65, 0xa9, 0, 0, 0, 7, 0x80, 0, 0, 6, 0, 0, 0, 1, 0x41])
        var reader = WireReader(reply.bytes)
        #expect(try NBDOptionReply(from: &reader) == reply)
    }

    /// Every message round-trips, and every shorter prefix is `.truncated`, never a trap.
    @Test func everyMessageRoundTripsAndEveryPrefixIsTruncated() throws {
        func encode(_ write: (inout WireWriter) -> Void) -> [UInt8] {
            var writer = WireWriter()
            write(&writer)
            return writer.bytes
        }
        let cases: [([UInt8], ([UInt8]) throws(WireError) -> Bool)] = [
            (encode(NBDGreeting(flags: [.fixedNewstyle]).write), { bytes throws(WireError) in
                var r = WireReader(bytes); return try NBDGreeting(from: &r) == NBDGreeting(flags: [.fixedNewstyle])
            }),
            (encode(NBDOptionHeader(option: .info, length: 9).write), { bytes throws(WireError) in
                var r = WireReader(bytes); return try NBDOptionHeader(from: &r) == NBDOptionHeader(option: .info, length: 9)
            }),
            (encode(NBDExportRequest(name: Array("disk".utf8), requests: [.blockSize, .name]).write), { bytes throws(WireError) in
                var r = WireReader(bytes)
                return try NBDExportRequest(from: &r) == NBDExportRequest(name: Array("disk".utf8), requests: [.blockSize, .name])
            }),
            (encode(NBDRequest(command: .trim, cookie: 9, offset: 512, length: 4096).write), { bytes throws(WireError) in
                var r = WireReader(bytes); return try NBDRequest(from: &r) == NBDRequest(command: .trim, cookie: 9, offset: 512, length: 4096)
            }),
            (NBDSimpleReply(error: .io, cookie: 3).bytes, { bytes throws(WireError) in
                var r = WireReader(bytes); return try NBDSimpleReply(from: &r) == NBDSimpleReply(error: .io, cookie: 3)
            }),
        ]
        for (bytes, parse) in cases {
            #expect(try parse(bytes))
            for cut in 0..<bytes.count {
                #expect(throws: WireError.self) { try parse(Array(bytes[..<cut])) }
            }
        }
    }

    @Test func wrongMagicsAreInvalidFields() {
        var request = [UInt8](repeating: 0, count: NBDRequest.wireSize)
        request[0] = 0x12  // the historic 0x12560953
        var reader = WireReader(request)
        #expect(throws: WireError.invalidField(name: "request magic", value: 0x1200_0000)) { try NBDRequest(from: &reader) }
        var option = WireReader([UInt8](repeating: 0x41, count: NBDOptionHeader.wireSize))
        #expect(throws: WireError.self) { try NBDOptionHeader(from: &option) }
    }

    /// INFO/GO data is checked against its own length before anything is allocated.
    @Test(arguments: [
        ([0xff, 0xff, 0xff, 0xff] as [UInt8], "a 4 GiB name"),
        ([0x00, 0x00, 0x10, 0x01], "a name one byte over the 4096-byte limit"),
        ([0x00, 0x00, 0x00, 0x08, 0x41, 0x41], "a name longer than the data"),
        ([0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x03], "65535 requests in 2 bytes"),
        ([0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x03, 0x00], "a byte after the requests"),
        ([0x00, 0x00, 0x00, 0x00, 0x00], "a count cut short"),
    ])
    func hostileExportRequestsAreRefused(bytes: [UInt8], what: String) {
        var reader = WireReader(bytes)
        #expect(throws: WireError.self, "\(what)") { try NBDExportRequest(from: &reader) }
    }

    // MARK: Export

    @Test func exportFlagsAndBlockSizesFollowTheDevice() throws {
        let writable = NBDExport(device: BackendBlockDevice(try MemoryDisk(sectorCount: 64)), name: "")
        #expect(writable.flags == [.hasFlags, .sendFlush, .sendFUA, .canMultiConn, .sendWriteZeroes, .sendTrim])
        #expect((writable.size, writable.minimumBlockSize, writable.preferredBlockSize, writable.maximumBlockSize) == (32768, 512, 4096, 32 << 20))
        let readOnly = NBDExport(device: BackendBlockDevice(try MemoryDisk(sectorCount: 8, sectorSize: 4096, readOnly: true)), name: "ro")
        #expect(readOnly.flags == [.hasFlags, .sendFlush, .sendFUA, .canMultiConn, .readOnly])
        #expect((readOnly.minimumBlockSize, readOnly.preferredBlockSize) == (4096, 4096))
        let noDiscard = NBDExport(device: TestBlockDevice(try MemoryDisk(sectorCount: 8), supportsDiscard: false), name: "", maximumPayload: 10)
        #expect(!noDiscard.flags.contains(.sendTrim) && noDiscard.flags.contains(.sendWriteZeroes))
        // The maximum is clamped to at least 1 MiB, the protocol's SHOULD.
        #expect(noDiscard.maximumBlockSize == 1 << 20)
    }

    // MARK: Handshake

    static let export = NBDExport(
        name: "disk", size: 1 << 20, flags: [.hasFlags, .sendFlush], minimumBlockSize: 512, preferredBlockSize: 4096,
        maximumBlockSize: 1 << 25)

    /// The replies in `bytes`, parsed.
    static func replies(_ bytes: [UInt8]) throws -> [NBDOptionReply] {
        var reader = WireReader(bytes)
        var replies: [NBDOptionReply] = []
        while reader.remaining > 0 { replies.append(try NBDOptionReply(from: &reader)) }
        return replies
    }

    static func goData(_ name: String, _ requests: [NBDInfoType]) -> [UInt8] {
        var writer = WireWriter()
        NBDExportRequest(name: Array(name.utf8), requests: requests).write(to: &writer)
        return writer.bytes
    }

    @Test func clientFlagsTheServerDidNotOfferCloseTheConnection() {
        var machine = NBDHandshake(export: Self.export)
        #expect(machine.receiveClientFlags(0b11) == nil)
        var other = NBDHandshake(export: Self.export)
        #expect(other.receiveClientFlags(0b100) == .close([], .unknownClientFlags(4)))
    }

    @Test func goAnswersExportInfoBlockSizesThenAckAndStartsTransmission() throws {
        var machine = NBDHandshake(export: Self.export)
        _ = machine.receiveClientFlags(1)
        guard case .transmit(let bytes, let session) = machine.receive(NBDOptionHeader(option: .go, length: 0), data: Self.goData("disk", [.blockSize, .name])) else {
            Issue.record("GO did not start transmission")
            return
        }
        #expect(session == .init(blockSizesAgreed: true, viaExportName: false))
        let replies = try Self.replies(bytes)
        #expect(replies.map(\.type) == [.info, .info, .info, .ack])
        #expect(replies[0].data == [0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x05])
        #expect(replies[1].data == [0, 1] + Array("disk".utf8))
        #expect(replies[2].data == [0, 3, 0, 0, 2, 0, 0, 0, 0x10, 0, 0x02, 0, 0, 0])
    }

    @Test func infoForAnotherNameIsUnknownAndHagglingGoesOn() throws {
        var machine = NBDHandshake(export: Self.export)
        guard case .reply(let bytes) = machine.receive(NBDOptionHeader(option: .info, length: 0), data: Self.goData("other", [])) else {
            Issue.record("INFO for an unknown export ended the handshake")
            return
        }
        #expect(try Self.replies(bytes).map(\.type) == [.errorUnknown])
        guard case .reply(let info) = machine.receive(NBDOptionHeader(option: .info, length: 0), data: Self.goData("disk", [])) else {
            Issue.record("INFO ended the handshake")
            return
        }
        #expect(try Self.replies(info).map(\.type) == [.info, .ack])
        guard case .reply(let malformed) = machine.receive(NBDOptionHeader(option: .go, length: 0), data: [0, 0, 0, 9]) else {
            Issue.record("malformed GO ended the handshake")
            return
        }
        #expect(try Self.replies(malformed).map(\.type) == [.errorInvalid])
    }

    @Test func listAbortAndUnsupportedOptions() throws {
        var machine = NBDHandshake(export: Self.export)
        guard case .reply(let list) = machine.receive(NBDOptionHeader(option: .list, length: 0), data: []) else {
            Issue.record("LIST ended the handshake")
            return
        }
        let listed = try Self.replies(list)
        #expect(listed.map(\.type) == [.server, .ack])
        #expect(listed[0].data == [0, 0, 0, 4] + Array("disk".utf8))
        guard case .reply(let withData) = machine.receive(NBDOptionHeader(option: .list, length: 1), data: [1]) else { return }
        #expect(try Self.replies(withData).map(\.type) == [.errorInvalid])
        for option in [NBDOption.structuredReply, .startTLS, .listMetaContext, .setMetaContext, NBDOption(rawValue: 0xdead_beef)] {
            guard case .reply(let bytes) = machine.receive(NBDOptionHeader(option: option, length: 0), data: []) else {
                Issue.record("option \(option.rawValue) ended the handshake")
                return
            }
            let replies = try Self.replies(bytes)
            #expect(replies.map(\.type) == [.errorUnsupported])
            #expect(replies.first?.option == option)
        }
        guard case .close(let ack, .aborted) = machine.receive(NBDOptionHeader(option: .abort, length: 3), data: [1, 2, 3]) else {
            Issue.record("ABORT did not close")
            return
        }
        #expect(try Self.replies(ack).map(\.type) == [.ack])
    }

    @Test func exportNameSendsSizeFlagsAndZeroesUnlessNoZeroes() {
        var plain = NBDHandshake(export: Self.export)
        _ = plain.receiveClientFlags(1)
        guard case .transmit(let bytes, let session) = plain.receive(NBDOptionHeader(option: .exportName, length: 4), data: Array("disk".utf8)) else {
            Issue.record("EXPORT_NAME did not start transmission")
            return
        }
        #expect(bytes == [0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x05] + [UInt8](repeating: 0, count: 124))
        #expect(session == .init(blockSizesAgreed: false, viaExportName: true))
        var noZeroes = NBDHandshake(export: Self.export)
        _ = noZeroes.receiveClientFlags(3)
        #expect(noZeroes.receive(NBDOptionHeader(option: .exportName, length: 4), data: Array("disk".utf8)) == .transmit(Array(bytes[..<10]), session))
        var wrong = NBDHandshake(export: Self.export)
        #expect(wrong.receive(NBDOptionHeader(option: .exportName, length: 1), data: [0x78]) == .close([], .unknownExport))
    }

    @Test func endlessOptionsAndOversizedOptionsEndTheHandshake() throws {
        var machine = NBDHandshake(export: Self.export)
        for _ in 0..<NBDLimits.maximumOptions {
            guard case .reply = machine.receive(NBDOptionHeader(option: .structuredReply, length: 0), data: []) else {
                Issue.record("closed before the limit")
                return
            }
        }
        #expect(machine.receive(NBDOptionHeader(option: .structuredReply, length: 0), data: []) == .close([], .tooManyOptions))
        guard case .close(let bytes, .optionTooLong(0x4000_0000)) = NBDHandshake.refuse(NBDOptionHeader(option: .go, length: 0x4000_0000)) else {
            Issue.record("an oversized option was not refused")
            return
        }
        #expect(try Self.replies(bytes).map(\.type) == [.errorTooBig])
        #expect(NBDHandshake.refuse(nil) == .close([], .badMagic))
    }

    // MARK: Requests

    static let writable = NBDExport(
        name: "", size: 1 << 20, flags: [.hasFlags, .sendFlush, .sendFUA, .sendTrim, .sendWriteZeroes], minimumBlockSize: 512,
        preferredBlockSize: 4096, maximumBlockSize: 1 << 25)
    static let readOnly = NBDExport(
        name: "", size: 1 << 20, flags: [.hasFlags, .sendFlush, .readOnly], minimumBlockSize: 512, preferredBlockSize: 4096,
        maximumBlockSize: 1 << 25)

    static func operation(
        _ command: NBDCommand, _ flags: NBDCommandFlags = [], offset: UInt64, length: UInt32, on export: NBDExport = writable
    ) -> NBDOperation {
        NBDOperation(NBDRequest(flags: flags, command: command, cookie: 1, offset: offset, length: length), export: export)
    }

    @Test func requestsInsideTheExportBecomeOperationsAtAnyAlignment() {
        #expect(Self.operation(.read, offset: 100, length: 1000) == .read(offset: 100, length: 1000))
        #expect(Self.operation(.read, .fua, offset: (1 << 20) - 1, length: 1) == .read(offset: (1 << 20) - 1, length: 1))
        #expect(Self.operation(.write, .fua, offset: 3, length: 5) == .write(offset: 3, length: 5, fua: true))
        #expect(Self.operation(.writeZeroes, .noHole, offset: 0, length: 4096) == .writeZeroes(offset: 0, length: 4096, fua: false, mayTrim: false))
        #expect(Self.operation(.trim, offset: 1, length: 0xffff_ffff, on: NBDExport(
            name: "", size: 1 << 40, flags: Self.writable.flags, minimumBlockSize: 512, preferredBlockSize: 4096, maximumBlockSize: 1 << 25))
            == .trim(offset: 1, length: 0xffff_ffff, fua: false))
        #expect(Self.operation(.flush, offset: 0, length: 0) == .flush)
        #expect(Self.operation(.disconnect, offset: 0, length: 0) == .disconnect)
    }

    @Test func badRequestsGetTheErrorTheProtocolNames() {
        let end: UInt64 = 1 << 20
        let cases: [(NBDOperation, NBDOperation, String)] = [
            (Self.operation(.read, offset: end - 511, length: 512), .reject(.invalid, discardPayload: 0), "read past the end"),
            (Self.operation(.read, offset: UInt64.max, length: 2), .reject(.invalid, discardPayload: 0), "read whose end overflows"),
            (Self.operation(.read, offset: 0, length: (1 << 25) + 1), .reject(.invalid, discardPayload: 0), "read above the maximum"),
            (Self.operation(.write, offset: end, length: 512), .reject(.noSpace, discardPayload: 512), "write past the end"),
            (Self.operation(.write, offset: UInt64.max - 10, length: 512), .reject(.noSpace, discardPayload: 512), "write whose end overflows"),
            (Self.operation(.write, offset: 0, length: 512, on: Self.readOnly), .reject(.permission, discardPayload: 512), "write on read-only"),
            (Self.operation(.write, .noHole, offset: 0, length: 512), .reject(.invalid, discardPayload: 512), "NO_HOLE on a write"),
            (Self.operation(.write, offset: 0, length: 0xffff_ffff), .tooLarge(length: 0xffff_ffff), "a 4 GiB write"),
            (Self.operation(.write, offset: 0, length: (1 << 25) + 1), .tooLarge(length: (1 << 25) + 1), "a write over 32 MiB"),
            (Self.operation(.trim, offset: 0, length: 512, on: Self.readOnly), .reject(.permission, discardPayload: 0), "trim on read-only"),
            (Self.operation(.trim, offset: end, length: 1), .reject(.invalid, discardPayload: 0), "trim past the end"),
            (Self.operation(.writeZeroes, offset: end - 1, length: 2), .reject(.noSpace, discardPayload: 0), "write-zeroes past the end"),
            (Self.operation(.writeZeroes, .fastZero, offset: 0, length: 512), .reject(.invalid, discardPayload: 0), "FAST_ZERO not offered"),
            (Self.operation(.writeZeroes, offset: 0, length: 512, on: Self.readOnly), .reject(.permission, discardPayload: 0), "zeroes on read-only"),
            (Self.operation(.flush, offset: 512, length: 0), .reject(.invalid, discardPayload: 0), "flush with an offset"),
            (Self.operation(.read, NBDCommandFlags(rawValue: 0x8000), offset: 0, length: 512), .reject(.invalid, discardPayload: 0), "unknown flag"),
            (Self.operation(.read, .dontFragment, offset: 0, length: 512), .reject(.invalid, discardPayload: 0), "DF without structured replies"),
            (Self.operation(.cache, offset: 0, length: 512), .reject(.invalid, discardPayload: 0), "CACHE"),
            (Self.operation(.blockStatus, offset: 0, length: 512), .reject(.invalid, discardPayload: 0), "BLOCK_STATUS"),
            (Self.operation(NBDCommand(rawValue: 0xbeef), offset: 0, length: 512), .reject(.invalid, discardPayload: 0), "unknown command"),
            (Self.operation(.read, offset: 0, length: 0), .succeed(discardPayload: 0), "empty read"),
            (Self.operation(.write, offset: end, length: 0), .succeed(discardPayload: 0), "an empty write at the end"),
            (Self.operation(.write, offset: end + 1, length: 0), .reject(.noSpace, discardPayload: 0), "an empty write past the end"),
        ]
        for (got, expected, what) in cases { #expect(got == expected, "\(what)") }
    }

    @Test func trimOnAnExportWithoutTrimIsInvalid() {
        let noTrim = NBDExport(
            name: "", size: 1 << 20, flags: [.hasFlags, .sendWriteZeroes], minimumBlockSize: 512, preferredBlockSize: 4096, maximumBlockSize: 1 << 25)
        #expect(Self.operation(.trim, offset: 0, length: 512, on: noTrim) == .reject(.invalid, discardPayload: 0))
    }

    @Test func aStoppingServerRefusesWhatStillArrivesButSkipsItsData() {
        #expect(NBDOperation.write(offset: 0, length: 4096, fua: false).refusedForShutdown == .reject(.shutdown, discardPayload: 4096))
        #expect(NBDOperation.reject(.invalid, discardPayload: 9).refusedForShutdown == .reject(.shutdown, discardPayload: 9))
        #expect(NBDOperation.read(offset: 0, length: 1).refusedForShutdown == .reject(.shutdown, discardPayload: 0))
        #expect(NBDOperation.flush.refusedForShutdown == .reject(.shutdown, discardPayload: 0))
        #expect(NBDOperation.disconnect.refusedForShutdown == .disconnect)
        #expect(NBDOperation.tooLarge(length: 1 << 30).refusedForShutdown == .tooLarge(length: 1 << 30))
    }

    @Test func deviceErrorsMapToNBDErrors() {
        #expect(NBDError(.outOfRange(lba: 1, count: 1, sectors: 1), writing: true) == .noSpace)
        #expect(NBDError(.outOfRange(lba: 1, count: 1, sectors: 1), writing: false) == .invalid)
        #expect(NBDError(.readOnly, writing: true) == .permission)
        #expect(NBDError(.failed("EIO"), writing: false) == .io)
        #expect(NBDError(.closed("rescinded"), writing: false) == .shutdown)
        #expect(NBDError(.invalidLength(bytes: 1, sectorSize: 512), writing: true) == .invalid)
    }
}
