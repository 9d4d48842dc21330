import Glibc
import VMBusMemory

/// Why a disk refused or failed a request. Each case maps onto one SCSI answer (spec 10): the
/// storvsp turns ``outOfRange(byteOffset:count:diskBytes:)`` into ILLEGAL REQUEST / LBA out of
/// range, ``readOnly`` into DATA PROTECT / write protected, ``io(operation:errno:)`` into
/// MEDIUM ERROR or HARDWARE ERROR.
public enum DiskError: Error, Hashable, Sendable {
    /// A range that does not lie inside the disk (or whose end overflows).
    case outOfRange(byteOffset: UInt64, count: UInt64, diskBytes: UInt64)
    /// A write or discard on a disk opened read-only.
    case readOnly
    /// A byte offset or count that is not a whole number of sectors.
    case misaligned(byteOffset: UInt64, count: UInt64, sectorSize: Int)
    /// A system call failed: its name and errno. `EIO` for a file that ended before the
    /// capacity the disk reported (it was shrunk behind the disk's back).
    case io(operation: String, errno: Int32)
    /// `O_DIRECT` was required, but the file system refuses it (`EINVAL` from `open`) or needs
    /// offsets aligned more coarsely than the sector size.
    case directIOUnsupported(path: String, reason: String)
    /// A sector size other than 512 or 4096.
    case invalidSectorSize(Int)
    /// A disk of zero sectors, or an image whose size is not a whole number of sectors.
    case invalidSize(bytes: UInt64, sectorSize: Int)
}

extension DiskError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .outOfRange(let offset, let count, let diskBytes):
            return "\(count) bytes at \(offset) lie outside the disk's \(diskBytes) bytes"
        case .readOnly: return "the disk is read-only"
        case .misaligned(let offset, let count, let sectorSize):
            return "\(count) bytes at \(offset) are not whole \(sectorSize)-byte sectors"
        case .io(let operation, let errno): return "\(operation) failed: \(unsafe String(cString: strerror(errno)))"
        case .directIOUnsupported(let path, let reason): return "O_DIRECT on \(path): \(reason)"
        case .invalidSectorSize(let size): return "sector size \(size): must be 512 or 4096"
        case .invalidSize(let bytes, let sectorSize):
            return "a disk of \(bytes) bytes: must be a non-zero multiple of the \(sectorSize)-byte sector"
        }
    }
}

extension DiskError {
    /// The disk's view of a memory-layer failure: a system call keeps its name and errno;
    /// anything else (a bounds check the disk's own checks should have caught) is an I/O error.
    init(_ error: MemoryError) {
        switch error {
        case .system(let call, let errno): self = .io(operation: call, errno: errno)
        case .invalidSize, .outOfBounds, .pageOutOfRange, .pathInUse: self = .io(operation: "\(error)", errno: EIO)
        }
    }
}
