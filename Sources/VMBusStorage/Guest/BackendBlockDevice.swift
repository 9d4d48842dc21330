/// A block device over a ``DiskBackend`` in this process, with no VMBus in between: the
/// baseline the benchmarks compare the storvsc path with, and a device for testing what sits
/// on a ``BlockDevice`` (the NBD server) without a host.
public final class BackendBlockDevice: BlockDevice {
    public let backend: any DiskBackend
    public let queueDepth: Int
    public let maximumTransferSectors: Int

    public init(_ backend: any DiskBackend, queueDepth: Int = 32, maximumTransferBytes: Int = 256 * 1024) {
        self.backend = backend
        self.queueDepth = queueDepth
        self.maximumTransferSectors = max(1, maximumTransferBytes / backend.sectorSize)
    }

    public var sectorSize: Int { self.backend.sectorSize }
    public var sectorCount: UInt64 { self.backend.sectorCount }
    public var isReadOnly: Bool { self.backend.isReadOnly }
    public var supportsDiscard: Bool { true }

    public func read(lba: UInt64, count: Int) async throws(BlockDeviceError) -> [UInt8] {
        try self.checkTransfer(lba: lba, sectors: count)
        do {
            return try self.backend.read(at: lba * UInt64(self.sectorSize), count: count * self.sectorSize)
        } catch {
            throw BlockDeviceError(error, sectorSize: self.sectorSize)
        }
    }

    public func write(lba: UInt64, _ data: [UInt8], fua: Bool) async throws(BlockDeviceError) {
        guard data.count % self.sectorSize == 0 else { throw BlockDeviceError.invalidLength(bytes: data.count, sectorSize: self.sectorSize) }
        guard !self.isReadOnly else { throw BlockDeviceError.readOnly }
        try self.checkTransfer(lba: lba, sectors: data.count / self.sectorSize)
        do {
            try self.backend.write(at: lba * UInt64(self.sectorSize), from: data)
            if fua { try self.backend.flush() }
        } catch {
            throw BlockDeviceError(error, sectorSize: self.sectorSize)
        }
    }

    public func flush() async throws(BlockDeviceError) {
        do { try self.backend.flush() } catch { throw BlockDeviceError(error, sectorSize: self.sectorSize) }
    }

    public func discard(lba: UInt64, count: UInt64) async throws(BlockDeviceError) {
        guard !self.isReadOnly else { throw BlockDeviceError.readOnly }
        try self.checkRange(lba: lba, count: count)
        do {
            try self.backend.discard(at: lba * UInt64(self.sectorSize), count: count * UInt64(self.sectorSize))
        } catch {
            throw BlockDeviceError(error, sectorSize: self.sectorSize)
        }
    }

    func checkTransfer(lba: UInt64, sectors: Int) throws(BlockDeviceError) {
        guard sectors > 0, sectors <= self.maximumTransferSectors else {
            throw BlockDeviceError.invalidLength(bytes: sectors * self.sectorSize, sectorSize: self.sectorSize)
        }
        try self.checkRange(lba: lba, count: UInt64(sectors))
    }
}

extension BlockDeviceError {
    /// A backend's refusal as a block device reports it.
    init(_ error: DiskError, sectorSize: Int) {
        let sector = UInt64(sectorSize)
        switch error {
        case .outOfRange(let offset, let count, let diskBytes):
            self = .outOfRange(lba: offset / sector, count: count / sector, sectors: diskBytes / sector)
        case .readOnly: self = .readOnly
        case .misaligned(_, let count, let sectorSize): self = .invalidLength(bytes: Int(clamping: count), sectorSize: sectorSize)
        case .io, .directIOUnsupported, .invalidSectorSize, .invalidSize: self = .failed("\(error)")
        }
    }
}
