/// A disk as a guest program sees it: numbered sectors to read, write, flush and discard, with
/// several requests in flight. The guest's storvsc disk (``StorvscDisk``) is one; the NBD
/// server (``NBDServer``) serves any.
///
/// Every method may be called from many tasks at once, up to ``queueDepth`` requests in flight
/// (more wait their turn). A request is whole sectors and at most ``maximumTransferSectors``
/// long; callers split longer ones.
public protocol BlockDevice: AnyObject, Sendable {
    /// Bytes per logical sector: 512 or 4096.
    var sectorSize: Int { get }
    /// Sectors on the disk.
    var sectorCount: UInt64 { get }
    /// Whether writes and discards are refused (the disk is write-protected).
    var isReadOnly: Bool { get }
    /// Whether ``discard(lba:count:)`` frees sectors (they read as zeros afterwards); without
    /// it a discard is refused with ``BlockDeviceError/unsupported(_:)``.
    var supportsDiscard: Bool { get }
    /// Requests the device serves at once.
    var queueDepth: Int { get }
    /// Sectors one read or write may move at most.
    var maximumTransferSectors: Int { get }

    /// Reads `count` sectors from `lba`.
    func read(lba: UInt64, count: Int) async throws(BlockDeviceError) -> [UInt8]
    /// Writes `data` (a whole number of sectors) at `lba`. Durable after ``flush()``, or at once
    /// when `fua` (force unit access) is set.
    func write(lba: UInt64, _ data: [UInt8], fua: Bool) async throws(BlockDeviceError)
    /// Makes every completed write durable.
    func flush() async throws(BlockDeviceError)
    /// Forgets `count` sectors from `lba`: they read as zeros afterwards.
    func discard(lba: UInt64, count: UInt64) async throws(BlockDeviceError)
}

extension BlockDevice {
    /// The capacity in bytes.
    public var byteCount: UInt64 { self.sectorCount * UInt64(self.sectorSize) }

    /// Writes without forcing unit access.
    public func write(lba: UInt64, _ data: [UInt8]) async throws(BlockDeviceError) {
        try await self.write(lba: lba, data, fua: false)
    }

    /// The checks every request passes first: a non-empty whole number of sectors (for data),
    /// inside the disk, its end computed without overflow.
    /// - Throws: ``BlockDeviceError/outOfRange(lba:count:sectors:)``.
    public func checkRange(lba: UInt64, count: UInt64) throws(BlockDeviceError) {
        let (end, overflow) = lba.addingReportingOverflow(count)
        guard !overflow, end <= self.sectorCount else {
            throw BlockDeviceError.outOfRange(lba: lba, count: count, sectors: self.sectorCount)
        }
    }
}

/// Why a block device refused or failed a request.
public enum BlockDeviceError: Error, Hashable, Sendable {
    /// Sectors that do not lie inside the disk.
    case outOfRange(lba: UInt64, count: UInt64, sectors: UInt64)
    /// A write or discard on a write-protected disk.
    case readOnly
    /// Data that is not a whole number of sectors, or more than one request may carry.
    case invalidLength(bytes: Int, sectorSize: Int)
    /// The device cannot do this (a discard on a disk without UNMAP).
    case unsupported(String)
    /// The device failed the request: what it said (a SCSI sense, an errno).
    case failed(String)
    /// The device is gone: its channel closed, the host removed the LUN.
    case closed(String)
}

extension BlockDeviceError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .outOfRange(let lba, let count, let sectors): return "\(count) sectors at \(lba) lie outside the disk's \(sectors)"
        case .readOnly: return "the disk is write-protected"
        case .invalidLength(let bytes, let sectorSize): return "\(bytes) bytes is not a whole number of \(sectorSize)-byte sectors"
        case .unsupported(let what): return "not supported: \(what)"
        case .failed(let why): return "the device failed the request: \(why)"
        case .closed(let why): return "the device is gone: \(why)"
        }
    }
}
