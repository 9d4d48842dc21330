/// An IC framework or service version: major then minor, u16 each (06 §1.2).
public struct ICVersion: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var major: UInt16
    public var minor: UInt16

    public init(_ major: UInt16, _ minor: UInt16) {
        self.major = major
        self.minor = minor
    }

    /// Linux's internal form `major << 16 | minor`.
    public var packed: UInt32 { UInt32(self.major) << 16 | UInt32(self.minor) }

    public static func < (lhs: ICVersion, rhs: ICVersion) -> Bool { lhs.packed < rhs.packed }

    public var description: String { "\(self.major).\(self.minor)" }

    public init(from reader: inout WireReader) throws(WireError) {
        self.major = try reader.readUInt16()
        self.minor = try reader.readUInt16()
    }

    public func write(to writer: inout WireWriter) {
        writer.writeUInt16(self.major)
        writer.writeUInt16(self.minor)
    }
}

/// `icmsgtype` (06 §1.3). An open set.
public struct ICMessageType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// 0: version negotiation (every service).
    public static let negotiate = Self(rawValue: 0)
    public static let heartbeat = Self(rawValue: 1)
    public static let kvpExchange = Self(rawValue: 2)
    public static let shutdown = Self(rawValue: 3)
    public static let timeSync = Self(rawValue: 4)
    public static let vss = Self(rawValue: 5)
    /// 6: remote desktop virtualisation (not supported by Linux).
    public static let rdv = Self(rawValue: 6)
    /// 7: file copy ("guest service interface").
    public static let fileCopy = Self(rawValue: 7)
    /// 8: VM session (not supported by Linux).
    public static let vmSession = Self(rawValue: 8)
}

/// `icflags` (06 §1.4). Unknown bits are kept.
public struct ICFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// 0x01: a response is expected / part of a transaction.
    public static let transaction = ICFlags(rawValue: 0x01)
    /// 0x02: a request.
    public static let request = ICFlags(rawValue: 0x02)
    /// 0x04: a response.
    public static let response = ICFlags(rawValue: 0x04)
    /// 0x03: what every host request carries (Windows ignores time-sync requests without
    /// TRANSACTION).
    public static let hostRequest: ICFlags = [.transaction, .request]
    /// 0x05: what every guest response carries.
    public static let guestResponse: ICFlags = [.transaction, .response]
}

/// The 20-byte IC message header, after the pipe header (06 §1.2).
public struct ICMessageHeader: Hashable, Sendable {
    public static let wireSize = 20

    /// Framework version (0.0 in the negotiate request).
    public var frameworkVersion: ICVersion
    public var messageType: ICMessageType
    /// Service version (0.0 in the negotiate request).
    public var messageVersion: ICVersion
    /// Size of the body after this header.
    public var messageSize: UInt16
    /// Set by the responder.
    public var status: ICStatus
    /// Host-chosen, echoed (OpenVMM always 0).
    public var transactionID: UInt8
    public var flags: ICFlags
    /// Bytes 18–19: zero when sent; kept as read.
    public var reserved: UInt16

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
