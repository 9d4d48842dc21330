import VMBusMemory
import VMBusWire

/// One disk (LUN) of a guest's SCSI controller, as a ``BlockDevice``: each call is one SCSI
/// command over the controller's channels — READ/WRITE(10) or (16) as Linux picks them,
/// SYNCHRONIZE CACHE(10), UNMAP.
public final class StorvscDisk: BlockDevice {
    public let lun: UInt8
    public let sectorSize: Int
    public let sectorCount: UInt64
    public let isReadOnly: Bool
    public let supportsDiscard: Bool
    /// Whether the disk honours FUA (MODE SENSE's DPOFUA): without it a FUA write is a write
    /// and a SYNCHRONIZE CACHE.
    public let supportsFUA: Bool
    let controller: StorvscController
    let gone = Locked<String?>(nil)

    init(controller: StorvscController, lun: UInt8, sectorSize: Int, sectorCount: UInt64, readOnly: Bool, discard: Bool, fua: Bool) {
        self.controller = controller
        self.lun = lun
        self.sectorSize = sectorSize
        self.sectorCount = sectorCount
        self.isReadOnly = readOnly
        self.supportsDiscard = discard
        self.supportsFUA = fua
    }

    public var queueDepth: Int { self.controller.slots.count }
    public var maximumTransferSectors: Int { max(1, self.controller.maximumTransferBytes / self.sectorSize) }

    /// Why the disk is gone (the host removed it, the controller went away), if it is.
    public var goneReason: String? { self.gone.load() }

    func markGone(_ why: String) { self.gone.withLock { $0 = $0 ?? why } }

    public func read(lba: UInt64, count: Int) async throws(BlockDeviceError) -> [UInt8] {
        try self.check(lba: lba, sectors: count)
        let cdb = SCSICommand.read(SCSIBlockCommand(linuxLBA: lba, blockCount: UInt32(count))).encode()
        let (outcome, bytes) = try await self.controller.command(lun: self.lun, cdb: cdb, direction: .read, readCount: count * self.sectorSize)
        try self.check(outcome, expected: count * self.sectorSize)
        return bytes
    }

    public func write(lba: UInt64, _ data: [UInt8], fua: Bool) async throws(BlockDeviceError) {
        guard !data.isEmpty, data.count % self.sectorSize == 0 else {
            throw BlockDeviceError.invalidLength(bytes: data.count, sectorSize: self.sectorSize)
        }
        guard !self.isReadOnly else { throw BlockDeviceError.readOnly }
        let sectors = data.count / self.sectorSize
        try self.check(lba: lba, sectors: sectors)
        let block = SCSIBlockCommand(linuxLBA: lba, blockCount: UInt32(sectors), fua: fua && self.supportsFUA)
        let (outcome, _) = try await self.controller.command(lun: self.lun, cdb: SCSICommand.write(block).encode(), direction: .write, data: data[...])
        try self.check(outcome, expected: data.count)
        if fua && !self.supportsFUA { try await self.flush() }
    }

    public func flush() async throws(BlockDeviceError) {
        try self.checkPresent()
        let (outcome, _) = try await self.controller.command(
            lun: self.lun, cdb: SCSICommand.synchronizeCache(SCSISynchronizeCache()).encode(), direction: .none)
        try self.check(outcome, expected: 0)
    }

    public func discard(lba: UInt64, count: UInt64) async throws(BlockDeviceError) {
        guard self.supportsDiscard else { throw BlockDeviceError.unsupported("the disk does not advertise UNMAP") }
        guard !self.isReadOnly else { throw BlockDeviceError.readOnly }
        try self.checkRange(lba: lba, count: count)
        try self.checkPresent()
        guard count > 0 else { return }
        // One descriptor holds at most 2^32 − 1 blocks.
        var descriptors: [UnmapBlockDescriptor] = []
        var next = lba
        var left = count
        while left > 0 {
            let piece = min(left, UInt64(UInt32.max))
            descriptors.append(UnmapBlockDescriptor(lba: next, blockCount: UInt32(piece)))
            next += piece
            left -= piece
        }
        let list = UnmapParameterList(descriptors: descriptors).encode()
        let cdb = SCSICommand.unmap(anchor: false, parameterListLength: UInt16(clamping: list.count)).encode()
        let (outcome, _) = try await self.controller.command(lun: self.lun, cdb: cdb, direction: .write, data: list[...])
        try self.check(outcome, expected: list.count)
    }

    func check(lba: UInt64, sectors: Int) throws(BlockDeviceError) {
        guard sectors > 0, sectors <= self.maximumTransferSectors else {
            throw BlockDeviceError.invalidLength(bytes: sectors * self.sectorSize, sectorSize: self.sectorSize)
        }
        try self.checkRange(lba: lba, count: UInt64(sectors))
        try self.checkPresent()
    }

    func checkPresent() throws(BlockDeviceError) {
        if let gone = self.gone.load() { throw BlockDeviceError.closed(gone) }
    }

    /// A completed command as the block layer sees it: all the bytes moved, or why not.
    func check(_ outcome: SCSIOutcome, expected: Int) throws(BlockDeviceError) {
        if outcome.isGood {
            guard outcome.transferred >= expected else {
                throw BlockDeviceError.failed("short transfer: \(outcome.transferred) of \(expected) bytes")
            }
            return
        }
        if outcome.srbStatus.code == .invalidLUN {
            self.markGone("the host removed LUN \(self.lun)")
            throw BlockDeviceError.closed("the host removed LUN \(self.lun)")
        }
        switch (outcome.sense?.senseKey, outcome.sense?.additionalSense) {
        case (.dataProtect?, _): throw BlockDeviceError.readOnly
        case (.illegalRequest?, .lbaOutOfRange?): throw BlockDeviceError.outOfRange(lba: 0, count: 0, sectors: self.sectorCount)
        default: throw BlockDeviceError.failed(StorvscController.describe(outcome))
        }
    }
}
