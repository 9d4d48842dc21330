import VMBusMemory

/// Where a SCSI disk's sectors live: a raw image file (``FileDisk``), memory
/// (``MemoryDisk``), later anything else. The storvsp serves one backend per LUN.
///
/// A backend is shared by every queue (sub-channel) of its controller and by many requests in
/// flight on each, so every method may be called from several threads at once: transfers are
/// positional, with no cursor to race on. Requests to different sectors never interfere; the
/// outcome of overlapping concurrent writes is unspecified, as on a real disk.
///
/// Requests are in bytes and must cover whole sectors. The data side is a ``MemoryExtents``:
/// the storvsp builds one from a request's GPA-direct range over its mapping of guest memory,
/// and the backend reads into or writes from the guest's pages in place (`preadv`/`pwritev`
/// for a file, one copy for a memory disk) — never through an intermediate buffer.
///
/// After ``discard(at:count:)`` a range reads as zeros in every backend, which lets the
/// storvsp report LBPRZ (deterministic zeros after UNMAP, VPD page B2).
public protocol DiskBackend: AnyObject, Sendable {
    /// Bytes per logical sector: 512 or 4096 (READ CAPACITY's block length).
    var sectorSize: Int { get }
    /// Sectors on the disk (READ CAPACITY's last LBA + 1).
    var sectorCount: UInt64 { get }
    /// Whether writes and discards are refused (MODE SENSE's write-protect bit).
    var isReadOnly: Bool { get }
    /// Whether a transfer is a memory copy that never blocks: the storvsp then runs it on the
    /// channel's interrupt handler instead of handing it to a disk thread.
    var completesInline: Bool { get }

    /// Fills `buffer` from the disk, starting at `byteOffset`.
    /// - Throws: ``DiskError/misaligned(byteOffset:count:sectorSize:)``,
    ///   ``DiskError/outOfRange(byteOffset:count:diskBytes:)``, ``DiskError/io(operation:errno:)``.
    func read(at byteOffset: UInt64, into buffer: MemoryExtents) throws(DiskError)
    /// Writes `buffer` to the disk at `byteOffset`. Durable only after ``flush()``.
    /// - Throws: ``DiskError/readOnly`` first, then as ``read(at:into:)``.
    func write(at byteOffset: UInt64, from buffer: MemoryExtents) throws(DiskError)
    /// ``read(at:into:)``, but only if it need not block (the data is in memory or the page
    /// cache): the storvsp tries this on the channel's handler before handing a command to a
    /// disk thread. - Returns: `false` if it would block; `buffer` holds nothing useful then.
    func readIfReady(at byteOffset: UInt64, into buffer: MemoryExtents) throws(DiskError) -> Bool
    /// ``write(at:from:)``, but only if it need not block. - Returns: `false` if it would block
    /// (part of `buffer` may be on the disk already; the write is to be done again).
    func writeIfReady(at byteOffset: UInt64, from buffer: MemoryExtents) throws(DiskError) -> Bool
    /// Reads `count` bytes at `byteOffset` into a new array: for tools and tests, not the data
    /// path.
    func read(at byteOffset: UInt64, count: Int) throws(DiskError) -> [UInt8]
    /// Writes `bytes` at `byteOffset`: for tools and tests, not the data path.
    func write(at byteOffset: UInt64, from bytes: [UInt8]) throws(DiskError)
    /// Makes every completed write durable (SYNCHRONIZE CACHE). Succeeds on a read-only disk.
    func flush() throws(DiskError)
    /// Forgets `count` bytes at `byteOffset` (UNMAP, WRITE SAME with UNMAP): they read as
    /// zeros afterwards, and a backend frees their storage where it can.
    /// - Throws: ``DiskError/readOnly`` first, then as ``read(at:into:)``.
    func discard(at byteOffset: UInt64, count: UInt64) throws(DiskError)
    /// What names the disk's contents outside this process (a file's device and inode), so a
    /// host taking over from another can check it serves the same disk; `nil` when the
    /// contents live only in this process (a memory disk), which a takeover cannot carry.
    var persistentIdentity: String? { get }
}

extension DiskBackend {
    public var completesInline: Bool { false }
    public var persistentIdentity: String? { nil }

    /// A backend that never blocks transfers at once; others say they would block.
    public func readIfReady(at byteOffset: UInt64, into buffer: MemoryExtents) throws(DiskError) -> Bool {
        guard self.completesInline else { return false }
        try self.read(at: byteOffset, into: buffer)
        return true
    }

    public func writeIfReady(at byteOffset: UInt64, from buffer: MemoryExtents) throws(DiskError) -> Bool {
        guard self.completesInline else { return false }
        try self.write(at: byteOffset, from: buffer)
        return true
    }

    /// The disk's capacity in bytes.
    public var byteCount: UInt64 { self.sectorCount * UInt64(self.sectorSize) }

    /// The checks every request passes first, in the order the storvsp reports them: whole
    /// sectors, then inside the disk (with the end computed without overflow).
    /// - Throws: ``DiskError/misaligned(byteOffset:count:sectorSize:)``,
    ///   ``DiskError/outOfRange(byteOffset:count:diskBytes:)``.
    public func checkRange(byteOffset: UInt64, count: UInt64) throws(DiskError) {
        let sector = UInt64(self.sectorSize)
        guard byteOffset % sector == 0, count % sector == 0 else {
            throw DiskError.misaligned(byteOffset: byteOffset, count: count, sectorSize: self.sectorSize)
        }
        let (end, overflow) = byteOffset.addingReportingOverflow(count)
        guard !overflow, end <= self.byteCount else {
            throw DiskError.outOfRange(byteOffset: byteOffset, count: count, diskBytes: self.byteCount)
        }
    }

    /// ``checkRange(byteOffset:count:)`` for a write or discard: refused first if read-only.
    public func checkWritable(byteOffset: UInt64, count: UInt64) throws(DiskError) {
        guard !self.isReadOnly else { throw DiskError.readOnly }
        try self.checkRange(byteOffset: byteOffset, count: count)
    }
}

/// The sector sizes a disk may have.
let supportedSectorSizes = [512, 4096]
