// SCSI data (CDBs and everything a command returns) is big-endian, unlike every VMBus
// structure, so these live beside the SCSI types rather than in the little-endian cursor.

extension WireReader {
    /// Reads a big-endian u16 (SCSI byte order).
    @inlinable
    public mutating func readBigEndianUInt16() throws(WireError) -> UInt16 {
        try self.readUInt16().byteSwapped
    }

    /// Reads a big-endian u32 (SCSI byte order).
    @inlinable
    public mutating func readBigEndianUInt32() throws(WireError) -> UInt32 {
        try self.readUInt32().byteSwapped
    }

    /// Reads a big-endian u64 (SCSI byte order).
    @inlinable
    public mutating func readBigEndianUInt64() throws(WireError) -> UInt64 {
        try self.readUInt64().byteSwapped
    }
}

extension WireWriter {
    /// Writes a big-endian u16 (SCSI byte order).
    public mutating func writeBigEndianUInt16(_ value: UInt16) { self.writeUInt16(value.byteSwapped) }
    /// Writes a big-endian u32 (SCSI byte order).
    public mutating func writeBigEndianUInt32(_ value: UInt32) { self.writeUInt32(value.byteSwapped) }
    /// Writes a big-endian u64 (SCSI byte order).
    public mutating func writeBigEndianUInt64(_ value: UInt64) { self.writeUInt64(value.byteSwapped) }
}
