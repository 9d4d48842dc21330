/// The body of a version-negotiation message (type 0; Linux `icmsg_negotiate`, 06 §2.1):
/// two counts, a reserved word, then all framework versions followed by all service versions.
///
/// Trailing bytes after the list are ignored: Linux bounds the list by the packet, and echoes
/// the whole request buffer in its answer.
public struct ICNegotiate: Hashable, Sendable {
    /// Linux `IC_VERSION_NEGOTIATION_MAX_VER_COUNT`: the most versions of either kind.
    public static let maximumVersionCount = 100
    /// Counts and reserved word before the version list.
    public static let fixedSize = 8

    /// `icframe_vercnt` entries: framework versions.
    public var frameworkVersions: [ICVersion]
    /// `icmsg_vercnt` entries: service (message) versions.
    public var messageVersions: [ICVersion]
    /// Zero when sent; kept as read.
    public var reserved: UInt32

    /// A body offering (or, in a response, choosing) these versions.
    public init(frameworkVersions: [ICVersion], messageVersions: [ICVersion], reserved: UInt32 = 0) {
        self.frameworkVersions = frameworkVersions
        self.messageVersions = messageVersions
        self.reserved = reserved
    }

    /// Bytes on the wire: `8 + 4 × (framework + message)`, the `icmsgsize` of a request.
    public var wireSize: Int {
        Self.fixedSize + ICVersion.wireSize * (self.frameworkVersions.count + self.messageVersions.count)
    }

    /// Reads the body. Both counts are checked against ``maximumVersionCount`` and the list
    /// against the bytes present before anything is allocated.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` for a count above 100;
    ///   ``WireError/truncated(needed:available:)`` if the counts, reserved word or list are cut.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.fixedSize)
        let framework = Int(try reader.readUInt16())
        let message = Int(try reader.readUInt16())
        try Self.checkCounts(framework: framework, message: message)
        self.reserved = try reader.readUInt32()
        // Both counts are ≤ 100, so the list is at most 800 bytes: no overflow, small allocation.
        try reader.require(ICVersion.wireSize * (framework + message))
        var versions: [ICVersion] = []
        versions.reserveCapacity(framework + message)
        for _ in 0..<(framework + message) { versions.append(try ICVersion(from: &reader)) }
        self.frameworkVersions = Array(versions[0..<framework])
        self.messageVersions = Array(versions[framework...])
    }

    /// Appends the body.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` for more than 100 versions of a
    ///   kind (the count would not be accepted by Linux).
    public func write(to writer: inout WireWriter) throws(WireError) {
        try Self.checkCounts(framework: self.frameworkVersions.count, message: self.messageVersions.count)
        // Exact: both counts were just checked to be ≤ 100.
        writer.writeUInt16(UInt16(self.frameworkVersions.count))
        writer.writeUInt16(UInt16(self.messageVersions.count))
        writer.writeUInt32(self.reserved)
        for version in self.frameworkVersions { version.write(to: &writer) }
        for version in self.messageVersions { version.write(to: &writer) }
    }

    private static func checkCounts(framework: Int, message: Int) throws(WireError) {
        try WireError.check("framework version count", framework, limit: Self.maximumVersionCount)
        try WireError.check("message version count", message, limit: Self.maximumVersionCount)
    }
}

/// The version lists of 06 §2.3: Linux's in guest preference order (highest first), OpenVMM's
/// host offers and the Windows-side constants (ascending, as hosts send them).
public enum ICVersions {
    /// Linux framework versions: 3.0, 1.0.
    public static let linuxFramework = [ICVersion(3, 0), ICVersion(1, 0)]
    /// Linux heartbeat versions: 3.0, 1.0.
    public static let linuxHeartbeat = [ICVersion(3, 0), ICVersion(1, 0)]
    /// Linux shutdown versions: 3.2, 3.1, 3.0, 1.0.
    public static let linuxShutdown = [ICVersion(3, 2), ICVersion(3, 1), ICVersion(3, 0), ICVersion(1, 0)]
    /// Linux time-sync versions: 4.0, 3.0, 1.0.
    public static let linuxTimeSync = [ICVersion(4, 0), ICVersion(3, 0), ICVersion(1, 0)]
    /// Linux KVP versions: 4.0, 3.0, 1.0 (never 5.0, so never the binary IP form).
    public static let linuxKVP = [ICVersion(4, 0), ICVersion(3, 0), ICVersion(1, 0)]
    /// The framework list Linux's VSS and fcopy use: 3.0 only.
    public static let linuxFrameworkV3Only = [ICVersion(3, 0)]
    /// Linux VSS versions: 5.0 only.
    public static let linuxVSS = [ICVersion(5, 0)]
    /// Linux fcopy versions: 1.1 only.
    public static let linuxFileCopy = [ICVersion(1, 1)]

    /// OpenVMM host framework offer: 1.0, 3.0.
    public static let openVMMFramework = [ICVersion(1, 0), ICVersion(3, 0)]
    /// OpenVMM host shutdown offer: 1.0, 3.0, 3.1, 3.2.
    public static let openVMMShutdown = [ICVersion(1, 0), ICVersion(3, 0), ICVersion(3, 1), ICVersion(3, 2)]
    /// OpenVMM host time-sync offer: 4.0 only.
    public static let openVMMTimeSync = [ICVersion(4, 0)]
    /// OpenVMM host KVP offer: 3.0, 4.0, 5.0.
    public static let openVMMKVP = [ICVersion(3, 0), ICVersion(4, 0), ICVersion(5, 0)]

    /// Windows-side framework constants (Mile/MsvmPkg): 1.0, 3.0.
    public static let windowsFramework = [ICVersion(1, 0), ICVersion(3, 0)]
    /// Windows-side shutdown constants: 1.0, 3.0, 3.1, 3.2.
    public static let windowsShutdown = [ICVersion(1, 0), ICVersion(3, 0), ICVersion(3, 1), ICVersion(3, 2)]
    /// Windows-side time-sync constants: 1.0, 3.0, 4.0.
    public static let windowsTimeSync = [ICVersion(1, 0), ICVersion(3, 0), ICVersion(4, 0)]
    /// Windows-side KVP constants: 3.0, 4.0, 5.0.
    public static let windowsKVP = [ICVersion(3, 0), ICVersion(4, 0), ICVersion(5, 0)]
    /// Windows-side VSS constants: 4.0 (Win8), 5.0 (Win8.1), 6.0, 7.0.
    public static let windowsVSS = [ICVersion(4, 0), ICVersion(5, 0), ICVersion(6, 0), ICVersion(7, 0)]
}

/// Version negotiation as pure functions over message bytes (06 §2).
public enum ICNegotiation {
    /// `icmsgsize` of a negotiate response: counts, reserved word and two entries.
    public static let responseBodySize = ICNegotiate.fixedSize + 2 * ICVersion.wireSize

    /// The host's negotiate request (06 §2.2 step 1): header versions 0.0, type 0, transaction
    /// id 0, flags 0x03, status 0, body = the host's versions in the order given.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` for more than 100 versions of a kind.
    public static func request(framework: [ICVersion], service: [ICVersion]) throws(WireError) -> ICMessage {
        var writer = WireWriter()
        try ICNegotiate(frameworkVersions: framework, messageVersions: service).write(to: &writer)
        return try ICMessage(header: ICMessageHeader(messageType: .negotiate, messageSize: 0), body: writer.bytes)
    }

    /// The first of `preferred` that `offered` contains: Linux picks by *guest* preference,
    /// whatever order the host lists its versions in (06 §2.3 steps 2, 3 and 5).
    public static func choose(offered: [ICVersion], preferred: [ICVersion]) -> ICVersion? {
        preferred.first { offered.contains($0) }
    }

    /// The guest's answer to a negotiate request, by Linux's algorithm (06 §2.3).
    ///
    /// The answer is the request buffer with: counts 1/1 (0/0 when the framework or the service
    /// has no common version), entry 0 the chosen framework version, entry 1 the chosen service
    /// version, `icmsgsize` 16 and flags 0x05. Every other byte — the pipe header, the status,
    /// the transaction id, the rest of the list, padding — is echoed as received, and the answer
    /// is as long as the request. On failure the entries hold what Linux leaves there: the
    /// chosen framework version if there was one, otherwise the request's framework count as a
    /// major version; then the request's service count as a major version.
    ///
    /// One deliberate difference: a request whose list holds fewer than two entries is answered
    /// with the buffer grown to 44 bytes, so the answer's `icmsgsize` of 16 is always true
    /// (Linux writes the entries past the bytes it sends back). Such a request always fails.
    ///
    /// - Parameters:
    ///   - payload: the request's in-band payload (pipe header onwards).
    ///   - framework: the guest's framework versions, preferred first.
    ///   - service: the guest's service versions, preferred first.
    /// - Returns: the response payload and the chosen versions (`nil` when negotiation failed).
    /// - Throws: ``WireError/invalidField(name:value:)`` unless the message is type 0; the
    ///   errors of ``ICMessage/init(payload:)`` and ``ICNegotiate/init(from:)`` for a malformed
    ///   request (short, counts above 100, a list longer than the packet). Linux answers some of
    ///   these with counts 0/0; a caller that wants that can answer ``failureResponse(to:)``.
    public static func respond(to payload: ArraySlice<UInt8>, framework: [ICVersion], service: [ICVersion])
        throws(WireError) -> (response: [UInt8], chosen: (framework: ICVersion, service: ICVersion)?)
    {
        let message = try ICMessage(payload: payload)
        guard message.header.messageType == .negotiate else {
            throw WireError.invalidField(name: "icmsgtype", value: UInt64(message.header.messageType.rawValue))
        }
        // Linux bounds the list by the packet, not by icmsgsize.
        var reader = WireReader(message.remainder)
        let offer = try ICNegotiate(from: &reader)
        let chosenFramework = Self.choose(offered: offer.frameworkVersions, preferred: framework)
        let chosenService = chosenFramework.flatMap { _ in Self.choose(offered: offer.messageVersions, preferred: service) }

        // Exact: counts were checked to be ≤ 100.
        let frameworkCount = ICVersion(UInt16(offer.frameworkVersions.count), 0)
        let serviceCount = ICVersion(UInt16(offer.messageVersions.count), 0)
        let entries = (chosenFramework ?? frameworkCount, chosenService ?? serviceCount)
        let response = Self.rewrite(Array(payload), succeeded: chosenService != nil, entries: entries)
        if let chosenFramework, let chosenService {
            return (response, (chosenFramework, chosenService))
        }
        return (response, nil)
    }

    /// The "no common version" answer to any buffer that holds at least the 28-byte prefix:
    /// counts 0/0, entries 0.0, `icmsgsize` 16, flags 0x05, the rest echoed (grown to 44 bytes
    /// if shorter). Linux answers requests with impossible counts this way, except that it leaves
    /// the raw counts in the entries.
    /// - Throws: ``WireError/truncated(needed:available:)`` for fewer than 28 bytes.
    public static func failureResponse(to payload: ArraySlice<UInt8>) throws(WireError) -> [UInt8] {
        guard payload.count >= ICMessage.bodyOffset else {
            throw WireError.truncated(needed: ICMessage.bodyOffset, available: payload.count)
        }
        return Self.rewrite(Array(payload), succeeded: false, entries: (ICVersion(0, 0), ICVersion(0, 0)))
    }

    /// The versions a guest's negotiate response selected, as the host reads it (06 §2.2):
    /// `nil` for counts 0/0 ("no common version").
    /// - Throws: ``WireError/invalidField(name:value:)`` for counts other than 1/1 or 0/0; the
    ///   errors of ``ICNegotiate/init(from:)`` for a malformed body.
    public static func chosen(in response: ICMessage) throws(WireError) -> (framework: ICVersion, service: ICVersion)? {
        var reader = WireReader(response.body)
        let negotiate = try ICNegotiate(from: &reader)
        switch (negotiate.frameworkVersions.first, negotiate.messageVersions.first) {
        case (nil, nil):
            return nil
        case (let framework?, let service?)
        where negotiate.frameworkVersions.count == 1 && negotiate.messageVersions.count == 1:
            return (framework, service)
        default:
            throw WireError.invalidField(
                name: "negotiated version counts",
                value: UInt64(negotiate.frameworkVersions.count) << 16 | UInt64(negotiate.messageVersions.count))
        }
    }

    /// Rewrites a request buffer (≥ 28 bytes) into a negotiate response in place.
    private static func rewrite(
        _ buffer: [UInt8], succeeded: Bool, entries: (ICVersion, ICVersion)
    ) -> [UInt8] {
        var response = buffer
        let base = ICMessage.bodyOffset
        let needed = base + Self.responseBodySize
        if response.count < needed {
            response += [UInt8](repeating: 0, count: needed - response.count)
        }
        // Patch the echoed buffer in place: every offset below is inside the `needed` bytes.
        var writer = WireWriter(bytes: response)
        let header = PipeHeader.wireSize
        writer.setUInt16(UInt16(Self.responseBodySize), at: header + ICMessageHeader.messageSizeOffset)
        writer.setUInt8(ICFlags.guestResponse.rawValue, at: header + ICMessageHeader.flagsOffset)
        let count: UInt16 = succeeded ? 1 : 0
        writer.setUInt16(count, at: base)
        writer.setUInt16(count, at: base + 2)
        writer.setUInt16(entries.0.major, at: base + 8)
        writer.setUInt16(entries.0.minor, at: base + 10)
        writer.setUInt16(entries.1.major, at: base + 12)
        writer.setUInt16(entries.1.minor, at: base + 14)
        return writer.bytes
    }
}
