/// The body of a version-negotiation message (type 0; 06 §2.1).
public struct ICNegotiate: Hashable, Sendable {
    /// Linux `IC_VERSION_NEGOTIATION_MAX_VER_COUNT`: the most versions of either kind.
    public static let maximumVersionCount = 100
    /// Counts and reserved word before the version list.
    public static let fixedSize = 8

    public var frameworkVersions: [ICVersion]
    public var messageVersions: [ICVersion]
    /// Zero when sent; kept as read.
    public var reserved: UInt32

    public init(frameworkVersions: [ICVersion], messageVersions: [ICVersion], reserved: UInt32 = 0) {
        self.frameworkVersions = frameworkVersions
        self.messageVersions = messageVersions
        self.reserved = reserved
    }

    /// Bytes on the wire: `8 + 4 × (framework + message)`.
    public var wireSize: Int { Self.fixedSize + 4 * (self.frameworkVersions.count + self.messageVersions.count) }

    /// Reads the body; both counts are checked against the limit and the list against the
    /// bytes present before anything is allocated.
    public init(from reader: inout WireReader) throws(WireError) {
        let framework = Int(try reader.readUInt16())
        let message = Int(try reader.readUInt16())
        for (name, count) in [("framework version count", framework), ("message version count", message)]
        where count > Self.maximumVersionCount {
            throw WireError.limitExceeded(name: name, value: UInt64(count), limit: UInt64(Self.maximumVersionCount))
        }
        self.reserved = try reader.readUInt32()
        try reader.require(4 * (framework + message))
        var versions: [ICVersion] = []
        versions.reserveCapacity(framework + message)
        for _ in 0..<(framework + message) { versions.append(try ICVersion(from: &reader)) }
        self.frameworkVersions = Array(versions[0..<framework])
        self.messageVersions = Array(versions[framework...])
    }

    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` above 100 versions of a kind.
    public func write(to writer: inout WireWriter) throws(WireError) {
        for (name, count) in [("framework version count", self.frameworkVersions.count),
                              ("message version count", self.messageVersions.count)]
        where count > Self.maximumVersionCount {
            throw WireError.limitExceeded(name: name, value: UInt64(count), limit: UInt64(Self.maximumVersionCount))
        }
        writer.writeUInt16(UInt16(self.frameworkVersions.count))
        writer.writeUInt16(UInt16(self.messageVersions.count))
        writer.writeUInt32(self.reserved)
        for version in self.frameworkVersions + self.messageVersions { version.write(to: &writer) }
    }
}

/// Version lists of 06 §2.3: Linux's in guest preference order (highest first) and OpenVMM's
/// host offers (ascending).
public enum ICVersions {
    public static let linuxFramework = [ICVersion(3, 0), ICVersion(1, 0)]
    public static let linuxHeartbeat = [ICVersion(3, 0), ICVersion(1, 0)]
    public static let linuxShutdown = [ICVersion(3, 2), ICVersion(3, 1), ICVersion(3, 0), ICVersion(1, 0)]
    public static let linuxTimeSync = [ICVersion(4, 0), ICVersion(3, 0), ICVersion(1, 0)]
    public static let linuxKVP = [ICVersion(4, 0), ICVersion(3, 0), ICVersion(1, 0)]
    /// VSS and fcopy negotiate framework 3.0 only.
    public static let linuxFrameworkV3Only = [ICVersion(3, 0)]
    public static let linuxVSS = [ICVersion(5, 0)]
    public static let linuxFileCopy = [ICVersion(1, 1)]

    public static let openVMMFramework = [ICVersion(1, 0), ICVersion(3, 0)]
    public static let openVMMShutdown = [ICVersion(1, 0), ICVersion(3, 0), ICVersion(3, 1), ICVersion(3, 2)]
    public static let openVMMTimeSync = [ICVersion(4, 0)]
    public static let openVMMKVP = [ICVersion(3, 0), ICVersion(4, 0), ICVersion(5, 0)]
}

/// Version negotiation as pure functions over message bytes (06 §2).
public enum ICNegotiation {
    /// The host's negotiate request: header versions 0.0, type 0, transaction id 0, flags 0x03.
    public static func request(framework: [ICVersion], service: [ICVersion]) throws(WireError) -> ICMessage {
        var writer = WireWriter()
        try ICNegotiate(frameworkVersions: framework, messageVersions: service).write(to: &writer)
        return try ICMessage(header: ICMessageHeader(messageType: .negotiate, messageSize: 0), body: writer.bytes)
    }

    /// The guest's answer to a negotiate request, by Linux's algorithm (06 §2.3): the first
    /// framework version in the guest's list that the host offers, likewise for the service;
    /// counts 1/1 (0/0 when either has no match), entries 0 and 1 the chosen versions,
    /// `icmsgsize` 16, flags 0x05; every other byte — the pipe header, the status, the rest of
    /// the list — is echoed as received, and the answer is as long as the request.
    ///
    /// - Parameters:
    ///   - payload: the request's in-band payload (pipe header onwards).
    ///   - framework: the guest's framework versions, preferred first.
    ///   - service: the guest's service versions, preferred first.
    /// - Returns: the response payload and the chosen versions (`nil` when negotiation failed).
    /// - Throws: when the request is not a valid negotiate message (too short, counts above
    ///   100, list longer than the packet).
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
        let chosenFramework = framework.first { offer.frameworkVersions.contains($0) }
        let chosenService = chosenFramework == nil ? nil : service.first { offer.messageVersions.contains($0) }

        var response = Array(payload)
        let base = ICMessage.bodyOffset
        // icmsgsize (IC header +10) and icflags (IC header +17).
        put16(&response, at: PipeHeader.wireSize + 10, 16)
        response[PipeHeader.wireSize + 17] = ICFlags.guestResponse.rawValue
        let count: UInt16 = chosenService == nil ? 0 : 1
        put16(&response, at: base, count)
        put16(&response, at: base + 2, count)
        // The response needs room for two entries even when the request offered fewer.
        let entries = [chosenFramework ?? ICVersion(0, 0), chosenService ?? ICVersion(0, 0)]
        if response.count < base + ICNegotiate.fixedSize + 8 {
            response += [UInt8](repeating: 0, count: base + ICNegotiate.fixedSize + 8 - response.count)
        }
        for (i, version) in entries.enumerated() {
            put16(&response, at: base + 8 + 4 * i, version.major)
            put16(&response, at: base + 10 + 4 * i, version.minor)
        }
        if let chosenFramework, let chosenService {
            return (response, (chosenFramework, chosenService))
        }
        return (response, nil)
    }

    /// The versions a guest's negotiate response selected, as the host reads it (06 §2.2):
    /// `nil` for counts 0/0 ("no common version"); anything other than 1/1 or 0/0 is invalid.
    public static func chosen(in response: ICMessage) throws(WireError) -> (framework: ICVersion, service: ICVersion)? {
        var reader = WireReader(response.body)
        let negotiate = try ICNegotiate(from: &reader)
        switch (negotiate.frameworkVersions.count, negotiate.messageVersions.count) {
        case (0, 0): return nil
        case (1, 1): return (negotiate.frameworkVersions[0], negotiate.messageVersions[0])
        case (let f, _): throw WireError.invalidField(name: "negotiated version count", value: UInt64(f))
        }
    }
}

private func put16(_ bytes: inout [UInt8], at offset: Int, _ value: UInt16) {
    bytes[offset] = UInt8(truncatingIfNeeded: value)
    bytes[offset + 1] = UInt8(truncatingIfNeeded: value >> 8)
}
