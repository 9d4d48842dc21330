/// The heartbeat body (type 1; 06 §3). The guest adds 1 to ``sequenceNumber`` and answers.
///
/// Only the sequence number is required: Linux checks for 28 + 8 bytes because the host may
/// not fill the rest. OpenVMM and Windows send 16 bytes (state and a reserved word follow);
/// Linux declares 40 (seven more reserved words). The tail is therefore optional here: it is
/// read when all 8 of its bytes are present, and ``applicationState`` is `nil` otherwise.
/// Bytes after the 16 are ignored (Linux echoes its whole buffer).
public struct HeartbeatMessage: Hashable, Sendable {
    /// Bytes Linux requires: the sequence number.
    public static let minimumSize = 8
    /// Bytes OpenVMM and Windows send.
    public static let wireSize = 16
    /// Bytes Linux declares (`heartbeat_msg_data`: seq_num + 8 reserved u32).
    public static let linuxSize = 40

    /// `application_state` (OpenVMM / Windows; part of Linux's `reserved`). An open set.
    public struct ApplicationState: RawRepresentable, Hashable, Sendable {
        /// The u32 at body offset 8.
        public var rawValue: UInt32
        /// Wraps any wire value, named or not.
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// 0: unknown.
        public static let unknown = Self(rawValue: 0)
        /// 1: healthy.
        public static let healthy = Self(rawValue: 1)
        /// 2: critical.
        public static let critical = Self(rawValue: 2)
        /// 3: stopped.
        public static let stopped = Self(rawValue: 3)
    }

    /// `seq_num`.
    public var sequenceNumber: UInt64
    /// State when the sender included the 8-byte tail; `nil` for an 8-byte body.
    public var applicationState: ApplicationState?
    /// The reserved word of the tail (0 when there is no tail); kept as read.
    public var reserved: UInt32

    /// A body; with a state, the 16-byte form is written, without one the 8-byte form.
    public init(sequenceNumber: UInt64, applicationState: ApplicationState? = .healthy, reserved: UInt32 = 0) {
        self.sequenceNumber = sequenceNumber
        self.applicationState = applicationState
        self.reserved = reserved
    }

    /// Reads the sequence number and, if all of it is there, the tail.
    /// - Throws: ``WireError/truncated(needed:available:)`` for fewer than 8 bytes.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.minimumSize)
        self.sequenceNumber = try reader.readUInt64()
        if reader.remaining >= Self.wireSize - Self.minimumSize {
            self.applicationState = ApplicationState(rawValue: try reader.readUInt32())
            self.reserved = try reader.readUInt32()
        } else {
            self.applicationState = nil
            self.reserved = 0
        }
    }

    /// Appends 16 bytes, or 8 when ``applicationState`` is `nil`.
    public func write(to writer: inout WireWriter) {
        writer.writeUInt64(self.sequenceNumber)
        if let state = self.applicationState {
            writer.writeUInt32(state.rawValue)
            writer.writeUInt32(self.reserved)
        }
    }

    /// The guest's answer (06 §3): the same body with the sequence number plus one (wrapping,
    /// as Linux's `seq_num += 1` on a u64 does).
    public var answered: HeartbeatMessage {
        var answer = self
        answer.sequenceNumber &+= 1
        return answer
    }
}
