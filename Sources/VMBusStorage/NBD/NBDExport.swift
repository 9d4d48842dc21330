/// An export as clients see it: its name, size, transmission flags and block sizes, fixed when
/// the server is made.
public struct NBDExport: Hashable, Sendable {
    /// The name clients ask for (`""` is the default export).
    public var name: String
    /// Bytes on the export: the device's sectors times its sector size.
    public var size: UInt64
    public var flags: NBDTransmissionFlags
    /// The sector size: requests aligned to it need no read-modify-write. Unaligned requests
    /// are served anyway (see ``NBDServer``).
    public var minimumBlockSize: UInt32
    /// 4096, or the sector size if larger.
    public var preferredBlockSize: UInt32
    /// The most one read, write or write-zeroes may cover: the server's payload limit (it
    /// splits requests longer than the device's transfer size itself).
    public var maximumBlockSize: UInt32

    public init(
        name: String, size: UInt64, flags: NBDTransmissionFlags, minimumBlockSize: UInt32, preferredBlockSize: UInt32,
        maximumBlockSize: UInt32
    ) {
        self.name = name
        self.size = size
        self.flags = flags
        self.minimumBlockSize = minimumBlockSize
        self.preferredBlockSize = preferredBlockSize
        self.maximumBlockSize = maximumBlockSize
    }

    /// The export of `device`:
    /// - always `HAS_FLAGS`, `SEND_FLUSH`, `SEND_FUA` and `CAN_MULTI_CONN` (the server keeps no
    ///   cache, and a flush asks the device to make every completed write durable, whichever
    ///   connection wrote it);
    /// - `READ_ONLY` for a write-protected device, otherwise `SEND_WRITE_ZEROES`, and
    ///   `SEND_TRIM` if the device discards.
    /// - Parameter maximumPayload: the maximum block size; clamped to 1 MiB…32 MiB and rounded
    ///   down to whole sectors.
    public init(device: any BlockDevice, name: String, maximumPayload: Int = NBDLimits.maximumPayload) {
        var flags: NBDTransmissionFlags = [.hasFlags, .sendFlush, .sendFUA, .canMultiConn]
        if device.isReadOnly {
            flags.insert(.readOnly)
        } else {
            flags.insert(.sendWriteZeroes)
            if device.supportsDiscard { flags.insert(.sendTrim) }
        }
        let sector = max(1, device.sectorSize)
        // The protocol: the maximum SHOULD be at least 1 MiB, a multiple of the minimum.
        let payload = min(max(maximumPayload, 1 << 20), NBDLimits.maximumPayload) / sector * sector
        self.init(
            name: name, size: device.byteCount, flags: flags, minimumBlockSize: UInt32(sector),
            preferredBlockSize: UInt32(max(4096, sector)), maximumBlockSize: UInt32(payload))
    }

    /// Whether the export refuses writes.
    public var isReadOnly: Bool { self.flags.contains(.readOnly) }
}
