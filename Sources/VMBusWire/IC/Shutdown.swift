/// Shutdown flags (06 §4). Unknown bits are kept. Linux switches on the whole numeric value
/// (see ``ShutdownMessage/linuxAction``) and ignores ``force``.
public struct ShutdownFlags: OptionSet, Hashable, Sendable {
    /// The u32 at body offset 8.
    public var rawValue: UInt32
    /// Wraps any wire value; unknown bits survive.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Bit 0: force (Linux always acts as if forced).
    public static let force = ShutdownFlags(rawValue: 1)
    /// Bit 1: restart instead of power off.
    public static let restart = ShutdownFlags(rawValue: 2)
    /// Bit 2: hibernate.
    public static let hibernate = ShutdownFlags(rawValue: 4)
}

/// The shutdown body (type 3; 06 §4), 2060 bytes.
///
/// Linux drops a packet shorter than 28 + 2060 bytes without answering, so the whole body is
/// required here too. Trailing bytes are ignored.
public struct ShutdownMessage: Hashable, Sendable {
    /// Bytes on the wire.
    public static let wireSize = 2060
    /// Bytes of the UTF-16 display message field (1023 code units + NUL).
    public static let displayMessageSize = 2048
    /// `SHTDN_REASON_FLAG_PLANNED`, the reason code OpenVMM sends.
    public static let reasonPlanned: UInt32 = 0x8000_0000

    /// What a Linux guest does for a request (06 §4 table).
    public enum Action: Hashable, Sendable {
        /// Flags 0 or 1: orderly power off, status 0.
        case powerOff
        /// Flags 2 or 3: reboot, status 0.
        case reboot
        /// Flags 4 or 5: hibernate if the guest supports it (status 0), else HV_E_FAIL.
        case hibernate
        /// Any other value: nothing is done; answered with HV_E_FAIL.
        case unsupported
    }

    /// `reason_code`.
    public var reasonCode: UInt32
    /// `timeout_seconds` (OpenVMM sends 0).
    public var timeoutSeconds: UInt32
    /// `flags`.
    public var flags: ShutdownFlags
    /// The friendly text, decoded up to its first NUL and at most 1023 units (Linux ignores it).
    public var displayMessage: String

    /// A body; by default a planned request with no timeout and no text, as OpenVMM sends.
    public init(
        reasonCode: UInt32 = reasonPlanned, timeoutSeconds: UInt32 = 0, flags: ShutdownFlags,
        displayMessage: String = ""
    ) {
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

    /// Reads the 2060 bytes; invalid UTF-16 in the message becomes U+FFFD.
    /// - Throws: ``WireError/truncated(needed:available:)`` for fewer than 2060 bytes.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize)
        self.reasonCode = try reader.readUInt32()
        self.timeoutSeconds = try reader.readUInt32()
        self.flags = ShutdownFlags(rawValue: try reader.readUInt32())
        self.displayMessage = UTF16Field.decode(try reader.readBytes(Self.displayMessageSize), fieldSize: Self.displayMessageSize)
    }

    /// Appends the 2060 bytes.
    /// - Throws: ``WireError/limitExceeded(name:value:limit:)`` when the display message and
    ///   its NUL do not fit 2048 bytes.
    public func write(to writer: inout WireWriter) throws(WireError) {
        writer.writeUInt32(self.reasonCode)
        writer.writeUInt32(self.timeoutSeconds)
        writer.writeUInt32(self.flags.rawValue)
        try UTF16Field.write(self.displayMessage, size: Self.displayMessageSize, name: "shutdown message", to: &writer)
    }
}
