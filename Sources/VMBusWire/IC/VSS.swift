/// A VSS operation (06 §7). An open set: Linux knows 0–7, OpenVMM adds 8.
public struct VSSOperation: RawRepresentable, Hashable, Sendable {
    /// The u8 at body offset 0.
    public var rawValue: UInt8
    /// Wraps any wire value, named or not.
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// 0 CREATE: Linux answers status 0 without acting.
    public static let create = Self(rawValue: 0)
    /// 1 DELETE: status 0.
    public static let delete = Self(rawValue: 1)
    /// 2 HOT_BACKUP (OpenVMM: CHECK_HOT_BACKUP): Linux answers flags
    /// ``VSSMessage/hotBackupNoAutoRecovery``.
    public static let hotBackup = Self(rawValue: 2)
    /// 3 GET_DM_INFO: direct-mapped devices info; flags 0, status 0.
    public static let getDMInfo = Self(rawValue: 3)
    /// 4 BU_COMPLETE: backup complete; status 0.
    public static let backupComplete = Self(rawValue: 4)
    /// 5 FREEZE: the daemon freezes file systems (15 min timeout).
    public static let freeze = Self(rawValue: 5)
    /// 6 THAW: the daemon thaws file systems.
    public static let thaw = Self(rawValue: 6)
    /// 7 AUTO_RECOVER: status 0.
    public static let autoRecover = Self(rawValue: 7)
    /// 8 QUERY_GUEST_CLUSTER_INFORMATION (OpenVMM only; unknown to Linux).
    public static let queryGuestClusterInformation = Self(rawValue: 8)
}

/// The VSS body (type 5; Linux `hv_vss_msg`, 06 §7), 12 bytes: `operation` u8 @0, 7 reserved
/// bytes, `flags` u32 @8 whose meaning depends on the operation.
///
/// Linux drops a packet shorter than 28 + 12 bytes unanswered; the whole body is required here
/// too. The reserved bytes are written as zeros and ignored when read; trailing bytes (larger
/// VSS 6.0/7.0 messages) are ignored.
public struct VSSMessage: Hashable, Sendable {
    /// Bytes on the wire.
    public static let wireSize = 12
    /// `VSS_HBU_NO_AUTO_RECOVERY` (0x5): the flags Linux answers HOT_BACKUP with.
    public static let hotBackupNoAutoRecovery: UInt32 = 0x5

    /// `vss_hdr.operation`.
    public var operation: VSSOperation
    /// `flags`; meaning depends on the operation.
    public var flags: UInt32

    /// A body.
    public init(operation: VSSOperation, flags: UInt32 = 0) {
        self.operation = operation
        self.flags = flags
    }

    /// Reads the 12 bytes.
    /// - Throws: ``WireError/truncated(needed:available:)`` for fewer than 12 bytes.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize)
        self.operation = VSSOperation(rawValue: try reader.readUInt8())
        try reader.skip(7)
        self.flags = try reader.readUInt32()
    }

    /// Appends the 12 bytes.
    public func write(to writer: inout WireWriter) {
        writer.writeUInt8(self.operation.rawValue)
        writer.writeZeros(7)
        writer.writeUInt32(self.flags)
    }
}
