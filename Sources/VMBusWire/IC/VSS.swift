/// A VSS operation (06 §7). An open set.
public struct VSSOperation: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let create = Self(rawValue: 0)
    public static let delete = Self(rawValue: 1)
    /// HOT_BACKUP (OpenVMM: CHECK_HOT_BACKUP).
    public static let hotBackup = Self(rawValue: 2)
    /// GET_DM_INFO: direct-mapped devices info.
    public static let getDMInfo = Self(rawValue: 3)
    public static let backupComplete = Self(rawValue: 4)
    public static let freeze = Self(rawValue: 5)
    public static let thaw = Self(rawValue: 6)
    public static let autoRecover = Self(rawValue: 7)
    /// OpenVMM only.
    public static let queryGuestClusterInformation = Self(rawValue: 8)
}

/// The VSS body (type 5; Linux `hv_vss_msg`, 06 §7), 12 bytes.
public struct VSSMessage: Hashable, Sendable {
    public static let wireSize = 12
    /// `VSS_HBU_NO_AUTO_RECOVERY`: the flags Linux answers HOT_BACKUP with.
    public static let hotBackupNoAutoRecovery: UInt32 = 0x5

    public var operation: VSSOperation
    /// Meaning depends on the operation.
    public var flags: UInt32

    public init(operation: VSSOperation, flags: UInt32 = 0) {
        self.operation = operation
        self.flags = flags
    }

    /// Reads the body; the 7 reserved bytes are skipped. Linux drops shorter packets unanswered.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.wireSize)
        self.operation = VSSOperation(rawValue: try reader.readUInt8())
        try reader.skip(7)
        self.flags = try reader.readUInt32()
    }

    public func write(to writer: inout WireWriter) {
        writer.writeUInt8(self.operation.rawValue)
        writer.writeZeros(7)
        writer.writeUInt32(self.flags)
    }
}
