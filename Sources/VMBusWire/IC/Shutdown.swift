/// Shutdown flags (06 §4). Linux switches on the whole numeric value; bit 0 is ignored.
public struct ShutdownFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let force = ShutdownFlags(rawValue: 1)
    public static let restart = ShutdownFlags(rawValue: 2)
    public static let hibernate = ShutdownFlags(rawValue: 4)
}

/// The shutdown body (type 3; 06 §4), 2060 bytes. Linux drops shorter packets unanswered.
public struct ShutdownMessage: Hashable, Sendable {
    public static let wireSize = 2060
    /// Bytes of the UTF-16 display message.
    public static let displayMessageSize = 2048
    /// `SHTDN_REASON_FLAG_PLANNED`, OpenVMM's reason code.
    public static let reasonPlanned: UInt32 = 0x8000_0000

    /// What a Linux guest does for a request (06 §4 table).
    public enum Action: Hashable, Sendable {
        case powerOff, reboot, hibernate
        /// Not understood: answered with HV_E_FAIL.
        case unsupported
    }

    public var reasonCode: UInt32
    public var timeoutSeconds: UInt32
    public var flags: ShutdownFlags
    /// The friendly text (Linux ignores it).
    public var displayMessage: String

    public init(reasonCode: UInt32 = reasonPlanned, timeoutSeconds: UInt32 = 0, flags: ShutdownFlags, displayMessage: String = "") {
        self.reasonCode = reasonCode
        self.timeoutSeconds = timeoutSeconds
        self.flags = flags
        self.displayMessage = displayMessage
    }

    /// The action Linux takes: flags 0/1 power off, 2/3 reboot, 4/5 hibernate, else none.
    public var linuxAction: Action {
        switch self.flags.rawValue {
        case 0, 1: return .powerOff
        case 2, 3: return .reboot
        case 4, 5: return .hibernate
        default: return .unsupported
        }
    }

    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize)
        self.reasonCode = try reader.readUInt32()
        self.timeoutSeconds = try reader.readUInt32()
        self.flags = ShutdownFlags(rawValue: try reader.readUInt32())
        self.displayMessage = UTF16Field.decode(try reader.readBytes(Self.displayMessageSize))
    }

    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` for a display message over 1023 units.
    public func write(to writer: inout WireWriter) throws(WireError) {
        writer.writeUInt32(self.reasonCode)
        writer.writeUInt32(self.timeoutSeconds)
        writer.writeUInt32(self.flags.rawValue)
        try UTF16Field.write(self.displayMessage, size: Self.displayMessageSize, name: "shutdown message", to: &writer)
    }
}
