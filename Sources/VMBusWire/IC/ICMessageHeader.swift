/// An IC framework or service version: major then minor, u16 each (06 §1.2).
///
/// Ordered as Linux compares them, by its packed form `major << 16 | minor`.
public struct ICVersion: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Bytes on the wire.
    public static let wireSize = 4

    /// The major version (first u16).
    public var major: UInt16
    /// The minor version (second u16).
    public var minor: UInt16

    /// The version `major.minor`.
    public init(_ major: UInt16, _ minor: UInt16) {
        self.major = major
        self.minor = minor
    }

    /// Linux's internal form `major << 16 | minor`.
    public var packed: UInt32 { UInt32(self.major) << 16 | UInt32(self.minor) }

    /// Orders by major, then minor.
    public static func < (lhs: ICVersion, rhs: ICVersion) -> Bool { lhs.packed < rhs.packed }

    /// `major.minor`.
    public var description: String { "\(self.major).\(self.minor)" }

    /// Reads major and minor.
    /// - Throws: ``WireError/truncated(needed:available:)`` if fewer than 4 bytes are left.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize)
        self.major = try reader.readUInt16()
        self.minor = try reader.readUInt16()
    }

    /// Appends major and minor.
    public func write(to writer: inout WireWriter) {
        writer.writeUInt16(self.major)
        writer.writeUInt16(self.minor)
    }
}

/// `icmsgtype` (06 §1.3). An open set: unknown types are kept so they can be answered with
/// HV_E_FAIL or dropped, as each service does (06 §9).
public struct ICMessageType: RawRepresentable, Hashable, Sendable {
    /// The u16 at IC header offset 4.
    public var rawValue: UInt16

    /// Wraps any wire value, named or not.
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// 0 ICMSGTYPE_NEGOTIATE: version negotiation (every service, 06 §2).
    public static let negotiate = Self(rawValue: 0)
    /// 1 ICMSGTYPE_HEARTBEAT (06 §3).
    public static let heartbeat = Self(rawValue: 1)
    /// 2 ICMSGTYPE_KVPEXCHANGE (06 §6).
    public static let kvpExchange = Self(rawValue: 2)
    /// 3 ICMSGTYPE_SHUTDOWN (06 §4).
    public static let shutdown = Self(rawValue: 3)
    /// 4 ICMSGTYPE_TIMESYNC (06 §5).
    public static let timeSync = Self(rawValue: 4)
    /// 5 ICMSGTYPE_VSS (06 §7).
    public static let vss = Self(rawValue: 5)
    /// 6 RDV: remote desktop virtualisation (OpenVMM name; not supported by Linux).
    public static let rdv = Self(rawValue: 6)
    /// 7 ICMSGTYPE_FCOPY: file copy, OpenVMM "guest interface" (06 §8).
    public static let fileCopy = Self(rawValue: 7)
    /// 8 VM_SESSION (OpenVMM name; not supported by Linux).
    public static let vmSession = Self(rawValue: 8)
}

/// `icflags` (06 §1.4). Unknown bits are kept.
public struct ICFlags: OptionSet, Hashable, Sendable {
    /// The u8 at IC header offset 17.
    public var rawValue: UInt8

    /// Wraps any wire value; unknown bits survive.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// 0x01 ICMSGHDRFLAG_TRANSACTION: a response is expected / part of a transaction.
    public static let transaction = ICFlags(rawValue: 0x01)
    /// 0x02 ICMSGHDRFLAG_REQUEST: the message is a request.
    public static let request = ICFlags(rawValue: 0x02)
    /// 0x04 ICMSGHDRFLAG_RESPONSE: the message is a response.
    public static let response = ICFlags(rawValue: 0x04)
    /// 0x03: what every host request carries. Windows ignores time-sync requests without
    /// TRANSACTION, so OpenVMM sets it even where it needs no answer.
    public static let hostRequest: ICFlags = [.transaction, .request]
    /// 0x05: what every guest response carries.
    public static let guestResponse: ICFlags = [.transaction, .response]
}

/// The 20-byte IC message header (`icmsg_hdr`), at payload offset 8 after the pipe header
/// (06 §1.2).
public struct ICMessageHeader: Hashable, Sendable {
    /// Bytes on the wire.
    public static let wireSize = 20
    /// Offset of `icmsgsize` inside the header (patched by responders).
    public static let messageSizeOffset = 10
    /// Offset of `status` inside the header.
    public static let statusOffset = 12
    /// Offset of `icflags` inside the header.
    public static let flagsOffset = 17

    /// Framework version (0.0 in the negotiate request).
    public var frameworkVersion: ICVersion
    /// What the body is (06 §1.3).
    public var messageType: ICMessageType
    /// Service version (0.0 in the negotiate request).
    public var messageVersion: ICVersion
    /// `icmsgsize`: bytes of body after this header.
    public var messageSize: UInt16
    /// Set by the responder (06 §1.5).
    public var status: ICStatus
    /// Host-chosen, echoed by the responder (OpenVMM always uses 0 and rejects others).
    public var transactionID: UInt8
    /// Request/response flags (06 §1.4).
    public var flags: ICFlags
    /// Bytes 18–19: zero when sent; kept as read.
    public var reserved: UInt16

    /// A header; by default a host request with versions 0.0 and status 0.
    public init(
        frameworkVersion: ICVersion = ICVersion(0, 0), messageType: ICMessageType,
        messageVersion: ICVersion = ICVersion(0, 0), messageSize: UInt16, status: ICStatus = .ok,
        transactionID: UInt8 = 0, flags: ICFlags = .hostRequest, reserved: UInt16 = 0
    ) {
        self.frameworkVersion = frameworkVersion
        self.messageType = messageType
        self.messageVersion = messageVersion
        self.messageSize = messageSize
        self.status = status
        self.transactionID = transactionID
        self.flags = flags
        self.reserved = reserved
    }

    /// Reads the 20 bytes. Every field value is accepted: types, statuses and flags are open.
    /// - Throws: ``WireError/truncated(needed:available:)`` if fewer than 20 bytes are left.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize)
        self.frameworkVersion = try ICVersion(from: &reader)
        self.messageType = ICMessageType(rawValue: try reader.readUInt16())
        self.messageVersion = try ICVersion(from: &reader)
        self.messageSize = try reader.readUInt16()
        self.status = ICStatus(rawValue: try reader.readUInt32())
        self.transactionID = try reader.readUInt8()
        self.flags = ICFlags(rawValue: try reader.readUInt8())
        self.reserved = try reader.readUInt16()
    }

    /// Appends the 20 bytes.
    public func write(to writer: inout WireWriter) {
        self.frameworkVersion.write(to: &writer)
        writer.writeUInt16(self.messageType.rawValue)
        self.messageVersion.write(to: &writer)
        writer.writeUInt16(self.messageSize)
        writer.writeUInt32(self.status.rawValue)
        writer.writeUInt8(self.transactionID)
        writer.writeUInt8(self.flags.rawValue)
        writer.writeUInt16(self.reserved)
    }
}
