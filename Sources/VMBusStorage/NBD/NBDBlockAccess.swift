/// Byte-addressed access to a ``BlockDevice``: what NBD requests need from a device that only
/// moves whole sectors, at most ``BlockDevice/maximumTransferSectors`` at a time.
///
/// - Long requests are split into transfers the device accepts, one after another.
/// - An unaligned read reads the sectors that cover it and returns the part asked for.
/// - An unaligned write is a read-modify-write of its first and last sectors. Every such write
///   (on every connection of the server) holds one lock from the read to the write, so two of
///   them touching the same sector cannot undo each other's bytes. Aligned writes never take
///   the lock and stay parallel; an aligned write racing an unaligned one over the same sector
///   has an unspecified outcome, as overlapping writes on any disk do.
///
/// Ranges are checked by the caller (``NBDOperation``) before they get here.
final class NBDBlockAccess: Sendable {
    let device: any BlockDevice
    let sectorSize: Int
    /// Held by every read-modify-write.
    let readModifyWrite = AsyncLock()

    init(_ device: any BlockDevice) {
        self.device = device
        self.sectorSize = device.sectorSize
    }

    /// Sectors per transfer (at least one).
    var transferSectors: Int { max(1, self.device.maximumTransferSectors) }

    // MARK: Reading

    /// Reads `length` bytes at byte `offset`.
    func read(offset: UInt64, length: Int) async throws(BlockDeviceError) -> [UInt8] {
        let sector = UInt64(self.sectorSize)
        let first = offset / sector
        let end = offset + UInt64(length)
        let sectors = (end + sector - 1) / sector - first
        let covering = try await self.readSectors(lba: first, count: Int(sectors))
        let skip = Int(offset - first * sector)
        if skip == 0 && covering.count == length { return covering }
        return Array(covering[skip..<skip + length])
    }

    /// Reads `count` sectors at `lba`, in transfers the device accepts.
    func readSectors(lba: UInt64, count: Int) async throws(BlockDeviceError) -> [UInt8] {
        let step = self.transferSectors
        if count <= step { return try await self.device.read(lba: lba, count: count) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count * self.sectorSize)
        var done = 0
        while done < count {
            let n = min(step, count - done)
            bytes += try await self.device.read(lba: lba + UInt64(done), count: n)
            done += n
        }
        return bytes
    }

    // MARK: Writing

    /// Writes `data` at byte `offset`.
    func write(offset: UInt64, _ data: [UInt8], fua: Bool) async throws(BlockDeviceError) {
        let sector = UInt64(self.sectorSize)
        if offset % sector == 0 && data.count % self.sectorSize == 0 {
            return try await self.writeSectors(lba: offset / sector, data, fua: fua)
        }
        try await self.readModifyWrite.withLock { () async throws(BlockDeviceError) in
            try await self.patch(offset: offset, data, fua: fua)
        }
    }

    /// The read-modify-write of an unaligned write (the lock is held).
    private func patch(offset: UInt64, _ data: [UInt8], fua: Bool) async throws(BlockDeviceError) {
        let sector = UInt64(self.sectorSize)
        let first = offset / sector
        let end = offset + UInt64(data.count)
        let last = (end - 1) / sector
        let head = Int(offset - first * sector)
        let total = Int((last + 1 - first) * sector)
        var buffer = [UInt8](repeating: 0, count: total)
        // The first and last sectors as they are now (one read when they are the same sector).
        let edge = try await self.device.read(lba: first, count: 1)
        buffer.replaceSubrange(0..<self.sectorSize, with: edge)
        if last != first {
            let tail = try await self.device.read(lba: last, count: 1)
            buffer.replaceSubrange(total - self.sectorSize..<total, with: tail)
        }
        buffer.replaceSubrange(head..<head + data.count, with: data)
        try await self.writeSectors(lba: first, buffer, fua: fua)
    }

    /// Writes whole sectors at `lba`, in transfers the device accepts.
    func writeSectors(lba: UInt64, _ data: [UInt8], fua: Bool) async throws(BlockDeviceError) {
        let step = self.transferSectors * self.sectorSize
        if data.count <= step { return try await self.device.write(lba: lba, data, fua: fua) }
        var done = 0
        while done < data.count {
            let n = min(step, data.count - done)
            let at = lba + UInt64(done / self.sectorSize)
            try await self.device.write(lba: at, Array(data[done..<done + n]), fua: fua)
            done += n
        }
    }

    /// Makes `length` bytes at `offset` read as zeros: the whole sectors inside by a discard
    /// when `mayTrim` and the device discards (a discarded sector reads as zeros), otherwise by
    /// writing zeros; the partial sectors at either end by writing zeros into them.
    func writeZeroes(offset: UInt64, length: Int, fua: Bool, mayTrim: Bool) async throws(BlockDeviceError) {
        let sector = UInt64(self.sectorSize)
        let end = offset + UInt64(length)
        let alignedStart = (offset + sector - 1) / sector * sector
        let alignedEnd = end / sector * sector
        guard alignedStart < alignedEnd else {
            // Inside one sector, or across one sector boundary with no whole sector.
            return try await self.write(offset: offset, [UInt8](repeating: 0, count: length), fua: fua)
        }
        if alignedStart > offset {
            try await self.write(offset: offset, [UInt8](repeating: 0, count: Int(alignedStart - offset)), fua: fua)
        }
        let sectors = (alignedEnd - alignedStart) / sector
        if mayTrim && self.device.supportsDiscard {
            try await self.device.discard(lba: alignedStart / sector, count: sectors)
            if fua { try await self.device.flush() }
        } else {
            let chunk = Int(min(sectors, UInt64(self.transferSectors)))
            let zeros = [UInt8](repeating: 0, count: chunk * self.sectorSize)
            var done: UInt64 = 0
            while done < sectors {
                let n = Int(min(UInt64(chunk), sectors - done))
                try await self.device.write(lba: alignedStart / sector + done, n == chunk ? zeros : Array(zeros[..<(n * self.sectorSize)]), fua: fua)
                done += UInt64(n)
            }
        }
        if end > alignedEnd {
            try await self.write(offset: alignedEnd, [UInt8](repeating: 0, count: Int(end - alignedEnd)), fua: fua)
        }
    }

    /// Discards the whole sectors inside `length` bytes at `offset` (the protocol lets a server
    /// round a trim inwards); a trim covering no whole sector does nothing.
    func trim(offset: UInt64, length: UInt64, fua: Bool) async throws(BlockDeviceError) {
        let sector = UInt64(self.sectorSize)
        let first = (offset + sector - 1) / sector
        let end = (offset + length) / sector
        guard first < end else { return }
        try await self.device.discard(lba: first, count: end - first)
        if fua { try await self.device.flush() }
    }

    func flush() async throws(BlockDeviceError) {
        try await self.device.flush()
    }
}
