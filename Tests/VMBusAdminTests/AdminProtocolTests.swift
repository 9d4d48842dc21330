import Testing
@testable import VMBusAdmin

/// The request and answer datagrams as pure functions: what a client and a server put on the
/// socket, and what each makes of bytes from a peer it cannot trust.
@Suite struct AdminProtocolTests {
    static let header: [UInt8] = Array("VMBA".utf8) + [1, 0, 0, 0]

    @Test func aRequestHasTheDocumentedBytes() throws {
        let bytes = try AdminProtocol.encodeRequest(AdminRequest(command: "kvp", guest: "2", parameters: ["get", "0", "Key"]))
        #expect(bytes == Self.header + Array("kvp\u{0}2\u{0}get\u{0}0\u{0}Key".utf8))
    }

    @Test(arguments: [
        AdminRequest(command: "status"),
        AdminRequest(command: "kvp", guest: "uio", parameters: ["set", "0", "Owner", "Ünïcode ✓"]),
        // Empty parameters are values: a leading, a middle and a trailing one survive.
        AdminRequest(command: "kvp", guest: "1", parameters: ["", "x", ""]),
        AdminRequest(command: "x", guest: "0", parameters: [""]),
    ] as [AdminRequest])
    func aRequestSurvivesARoundTrip(_ request: AdminRequest) throws {
        #expect(try AdminProtocol.parseRequest(try AdminProtocol.encodeRequest(request)) == request)
    }

    /// An unversioned request of an older `vmbus ctl` ("status NUL 0") is refused with the
    /// versions this server speaks, so its user learns why.
    @Test func aRequestWithoutTheMagicIsRefusedNamingTheVersions() {
        let old = Array("status\u{0}0".utf8)
        #expect(throws: AdminProtocolError.badMagic) { try AdminProtocol.parseRequest(old) }
        #expect(AdminProtocolError.badMagic.description.hasSuffix("this server speaks admin protocol version(s) 1"))
        #expect(throws: AdminProtocolError.badMagic) { try AdminProtocol.parseRequest(Array("VMBX".utf8) + [1, 0, 0, 0, 0x61, 0, 0x30]) }
    }

    @Test func aNewerVersionIsRefusedNamingTheVersionsThisServerSpeaks() throws {
        var bytes = try AdminProtocol.encodeRequest(AdminRequest(command: "status"))
        bytes[4] = 2
        #expect(throws: AdminProtocolError.unsupportedVersion(2)) { try AdminProtocol.parseRequest(bytes) }
        bytes[4] = 0
        bytes[5] = 1
        #expect(throws: AdminProtocolError.unsupportedVersion(256)) { try AdminProtocol.parseRequest(bytes) }
        #expect(AdminProtocolError.unsupportedVersion(2).description
            == "admin protocol version 2 is not supported; this server speaks version(s) 1")
    }

    @Test func theReservedFieldMustBeZero() throws {
        var bytes = try AdminProtocol.encodeRequest(AdminRequest(command: "status"))
        bytes[7] = 0x80
        #expect(throws: AdminProtocolError.reservedNotZero(0x8000)) { try AdminProtocol.parseRequest(bytes) }
    }

    /// Every cut inside the header is truncated; the bare header lacks its command.
    @Test func aTruncatedRequestIsRefused() throws {
        let bytes = try AdminProtocol.encodeRequest(AdminRequest(command: "status"))
        for length in 0..<AdminProtocol.headerLength {
            #expect(throws: AdminProtocolError.truncated, "length \(length)") { try AdminProtocol.parseRequest(Array(bytes.prefix(length))) }
        }
        #expect(throws: AdminProtocolError.missingField("command")) { try AdminProtocol.parseRequest(Self.header) }
        #expect(throws: AdminProtocolError.missingField("guest")) { try AdminProtocol.parseRequest(Self.header + Array("status".utf8)) }
    }

    @Test func anEmptyCommandOrGuestIsRefusedBothWays() {
        #expect(throws: AdminProtocolError.missingField("command")) { try AdminProtocol.parseRequest(Self.header + [0, 0x30]) }
        #expect(throws: AdminProtocolError.missingField("guest")) { try AdminProtocol.parseRequest(Self.header + Array("status\u{0}".utf8)) }
        #expect(throws: AdminProtocolError.missingField("command")) { try AdminProtocol.encodeRequest(AdminRequest(command: "")) }
        #expect(throws: AdminProtocolError.missingField("guest")) { try AdminProtocol.encodeRequest(AdminRequest(command: "status", guest: "")) }
    }

    @Test func aFieldWithNULCannotBeSent() {
        #expect(throws: AdminProtocolError.containsNUL(field: 3)) {
            try AdminProtocol.encodeRequest(AdminRequest(command: "kvp", parameters: ["get", "a\u{0}b"]))
        }
    }

    /// Requests' bodies (after the header) with a field that is not UTF-8, and that field.
    static let notUTF8: [([UInt8], Int)] = [
        ([0xFF, 0, 0x30], 0),
        (Array("status".utf8) + [0, 0xC3], 1),  // a sequence cut short
        (Array("kvp\u{0}0\u{0}get".utf8) + [0, 0xC0, 0x80], 3),  // an overlong NUL
        (Array("kvp\u{0}0".utf8) + [0, 0xED, 0xA0, 0x80], 2),  // a UTF-16 surrogate
    ]

    @Test(arguments: Self.notUTF8)
    func aFieldThatIsNotUTF8IsRefused(_ body: [UInt8], _ field: Int) {
        #expect(throws: AdminProtocolError.notUTF8(field: field)) { try AdminProtocol.parseRequest(Self.header + body) }
    }

    @Test func aRequestLongerThanADatagramIsRefusedNotCut() {
        let long = AdminRequest(command: "kvp", parameters: ["set", "0", "k", String(repeating: "v", count: AdminProtocol.maximumDatagramLength)])
        #expect(throws: AdminProtocolError.tooLong) { try AdminProtocol.encodeRequest(long) }
        let bytes = Self.header + Array("x\u{0}0\u{0}".utf8) + [UInt8](repeating: 0x61, count: AdminProtocol.maximumDatagramLength)
        #expect(throws: AdminProtocolError.tooLong) { try AdminProtocol.parseRequest(bytes) }
    }

    /// Any one byte of a request changed to any value: the parser refuses it, or accepts
    /// exactly what it would itself encode — it never reads something the bytes do not say.
    @Test func everyOneByteChangeIsRefusedOrReadExactly() throws {
        let bytes = try AdminProtocol.encodeRequest(AdminRequest(command: "kvp", guest: "1", parameters: ["set", "0", "é", ""]))
        var accepted = 0
        for index in bytes.indices {
            for value in UInt8.min...UInt8.max where value != bytes[index] {
                var changed = bytes
                changed[index] = value
                guard let request = try? AdminProtocol.parseRequest(changed) else { continue }
                accepted += 1
                #expect(try AdminProtocol.encodeRequest(request) == changed, "byte \(index) = \(value)")
            }
        }
        // Changes inside the fields' text are still requests; the loop above checked them.
        #expect(accepted > 0)
    }

    @Test(arguments: [
        AdminAnswer.output("guest 1: heartbeat answered"), .output(""), .output("Ünïcode ✓"),
        .progress(done: 0, total: 0), .progress(done: 6144, total: 1 << 40),
        .end(succeeded: true, message: ""), .end(succeeded: false, message: "no guest is connected"),
    ] as [AdminAnswer])
    func anAnswerSurvivesARoundTrip(_ answer: AdminAnswer) throws {
        #expect(try AdminAnswer(parsing: answer.encoded) == answer)
    }

    @Test func answersHaveTheDocumentedBytes() {
        #expect(AdminAnswer.output("hi").encoded == Array("Ohi".utf8))
        #expect(AdminAnswer.progress(done: 12, total: 345).encoded == Array("P12 345".utf8))
        #expect(AdminAnswer.end(succeeded: true, message: "").encoded == [UInt8(ascii: "E"), 0])
        #expect(AdminAnswer.end(succeeded: false, message: "no").encoded == [UInt8(ascii: "E"), 1] + Array("no".utf8))
        #expect(AdminAnswer.progress(done: -1, total: 5).encoded == Array("P0 5".utf8))
    }

    /// Answers a client must refuse, and why.
    static let malformedAnswers: [([UInt8], AdminProtocolError)] = [
        ([], AdminProtocolError.truncated),
        ([UInt8(ascii: "E")], .truncated),
        ([UInt8(ascii: "E"), 2], .unknownStatus(2)),
        (Array("X".utf8), .unknownAnswerKind(UInt8(ascii: "X"))),
        ([UInt8(ascii: "O"), 0xFF], .notUTF8(field: 0)),
        ([UInt8(ascii: "E"), 1, 0xC3], .notUTF8(field: 0)),
        (Array("P".utf8), .malformedProgress),
        (Array("P1".utf8), .malformedProgress),
        (Array("P1 2 3".utf8), .malformedProgress),
        (Array("P1  2".utf8), .malformedProgress),
        (Array("P-1 2".utf8), .malformedProgress),
        (Array("P+1 2".utf8), .malformedProgress),
        (Array("P1 ".utf8), .malformedProgress),
        (Array("Pa b".utf8), .malformedProgress),
        (Array("P99999999999999999999 1".utf8), .malformedProgress),
    ]

    @Test(arguments: Self.malformedAnswers)
    func aMalformedAnswerIsRefused(_ bytes: [UInt8], _ error: AdminProtocolError) {
        #expect(throws: error) { try AdminAnswer(parsing: bytes) }
    }

    /// Long text is cut to the limit, never inside a character, so the answer stays UTF-8.
    @Test func longTextIsCutBetweenCharacters() throws {
        let limit = AdminProtocol.maximumTextLength
        let even = String(repeating: "é", count: limit)  // 2 bytes each: the cut falls between two
        let odd = "a" + even  // the cut would fall inside an "é"
        #expect(AdminAnswer.cut(even).utf8.count == limit)
        #expect(AdminAnswer.cut(odd).utf8.count == limit - 1)
        #expect(try AdminAnswer(parsing: AdminAnswer.output(odd).encoded) == .output(String(odd.dropLast(limit / 2 + 1))))
        #expect(AdminAnswer.cut("short") == "short")
    }
}
