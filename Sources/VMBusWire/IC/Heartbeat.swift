/// The heartbeat body (type 1; 06 §3). The guest adds 1 to `sequenceNumber` and answers.
///
/// Linux declares 40 bytes and OpenVMM/Windows 16; Linux needs only the sequence number, since
/// the host may not fill the rest, so the tail is optional here too.
public struct HeartbeatMessage: Hashable, Sendable {
    /// Bytes Linux requires.
    public static let minimumSize = 8
    /// Bytes OpenVMM and Windows send.
    public static let wireSize = 16

    /// `application_state` values (OpenVMM / Windows).
    public struct ApplicationState: RawRepresentable, Hashable, Sendable {
        public var rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let unknown = Self(rawValue: 0)
        public static let healthy = Self(rawValue: 1)
        public static let critical = Self(rawValue: 2)
        public static let stopped = Self(rawValue: 3)
    }

    public var sequenceNumber: UInt64
    /// State and reserved word when the sender included them (`nil`: an 8-byte body).
    public var applicationState: ApplicationState?
    public var reserved: UInt32

    public init(sequenceNumber: UInt64, applicationState: ApplicationState? = .healthy, reserved: UInt32 = 0) {
        self.sequenceNumber = sequenceNumber
        self.applicationState = applicationState
        self.reserved = reserved
    }

    public init(from reader: inout WireReader) throws(WireError) {
        self.sequenceNumber = try reader.readUInt64()
        if reader.remaining >= 8 {
            self.applicationState = ApplicationState(rawValue: try reader.readUInt32())
            self.reserved = try reader.readUInt32()
        } else {
            self.applicationState = nil
            self.reserved = 0
        }
    }

    public func write(to writer: inout WireWriter) {
        writer.writeUInt64(self.sequenceNumber)
        if let state = self.applicationState {
            writer.writeUInt32(state.rawValue)
            writer.writeUInt32(self.reserved)
        }
    }
}
