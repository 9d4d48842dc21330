import VMBusMemory
import VMBusWire

/// What a disk says about itself: INQUIRY's strings and VPD's identifiers.
public struct SCSIDiskIdentity: Hashable, Sendable {
    /// 8 ASCII characters at most. Linux treats "Msft" as SPC-3 (10 §3).
    public var vendor = "Msft"
    public var product = "Virtual Disk"
    public var revision = "1.0"
    /// VPD 0x80 (ASCII).
    public var serial: String
    /// The 16-byte NAA-6 designator of VPD 0x83 (what `/dev/disk/by-id/wwn-…` is made of).
    public var naa: [UInt8]

    /// An identity derived from a controller's instance GUID and a LUN: stable across runs,
    /// distinct between disks.
    public init(instance: GUID, lun: UInt8) {
        let bytes = instance.wireBytes
        // The instance's wire bytes in hex, then the LUN: 18 ASCII characters.
        self.serial = String(instance.wireHex.prefix(16)) + String(lun >> 4, radix: 16) + String(lun & 0xF, radix: 16)
        // NAA 6 (IEEE registered extended): 0x6 nibble, Microsoft's OUI 00-22-48 as OpenVMM
        // uses, then the vendor-specific bits from the instance and the LUN.
        var naa: [UInt8] = [0x60, 0x02, 0x24, 0x80]
        naa += bytes.prefix(11)
        naa.append(lun)
        self.naa = naa
    }
}

/// One LUN's SCSI target: turns a CDB into moves between a ``DiskBackend`` and the guest's
/// buffer, and the answer the guest expects (10 §6.2, OpenVMM's SimpleScsiDisk §6.3).
///
/// A value with no mutable state: every queue executes commands on it at once.
public struct SCSIDisk: Sendable {
    public let backend: any DiskBackend
    public let identity: SCSIDiskIdentity
    /// Advertise UNMAP (VPD B0/B2, READ CAPACITY(16) LBPME): Linux then discards with it.
    public let unmapSupported: Bool
    /// Largest transfer, for VPD B0 (0: none beyond the controller's).
    public let maximumTransferBytes: Int

    /// Descriptors one UNMAP may carry (OpenVMM: 4096).
    public static let maximumUnmapDescriptors = 4096

    public init(backend: any DiskBackend, identity: SCSIDiskIdentity, unmapSupported: Bool = true, maximumTransferBytes: Int = 0) {
        self.backend = backend
        self.identity = identity
        self.unmapSupported = unmapSupported && !backend.isReadOnly
        self.maximumTransferBytes = maximumTransferBytes
    }

    /// Executes one command.
    /// - Parameters:
    ///   - command: the parsed CDB.
    ///   - direction: `data_in` of the request: only `.read` lets the disk write guest memory.
    ///   - buffer: the guest's data buffer, cut to `data_transfer_length`; `nil` for none.
    public func execute(_ command: SCSICommand, direction: SCSIDataDirection, buffer: MemoryExtents?) -> SCSIOutcome {
        switch command {
        // Without `ifReady` a transfer always answers.
        case .read(let block): return self.transfer(block, write: false, direction: direction, buffer: buffer, ifReady: false) ?? .good()
        case .write(let block): return self.transfer(block, write: true, direction: direction, buffer: buffer, ifReady: false) ?? .good()
        case .testUnitReady: return .good()
        case .inquiry(let evpd, let cmdDt, let page, let allocation):
            guard !cmdDt, evpd || page == 0 else { return .illegal(.invalidFieldInCDB) }
            let answer = evpd ? self.vitalProductData(VPDPageCode(rawValue: page)) : self.inquiryData()
            guard let answer else { return .illegal(.invalidFieldInCDB) }
            return Self.answer(answer, allocation: Int(allocation), direction: direction, buffer: buffer)
        case .readCapacity10:
            let data = ReadCapacity10Data(blockCount: self.backend.sectorCount, blockLength: UInt32(self.backend.sectorSize))
            return Self.answer(data.encode(), allocation: 8, direction: direction, buffer: buffer)
        case .readCapacity16(let allocation):
            let data = ReadCapacity16Data(
                lastLBA: self.backend.sectorCount - 1, blockLength: UInt32(self.backend.sectorSize),
                provisioningManagementEnabled: self.unmapSupported, provisioningReadsZeros: self.unmapSupported)
            return Self.answer(data.encode(), allocation: Int(allocation), direction: direction, buffer: buffer)
        case .modeSense(let sense):
            guard let answer = self.modeSense(sense) else { return .illegal(.invalidFieldInCDB) }
            return Self.answer(answer, allocation: Int(sense.allocationLength), direction: direction, buffer: buffer)
        case .synchronizeCache:
            do { try self.backend.flush() } catch { return SCSIOutcome(error, writing: true) }
            return .good()
        case .unmap(_, let length):
            return self.unmap(parameterListLength: Int(length), direction: direction, buffer: buffer)
        case .requestSense(_, let allocation):
            // Errors are reported with autosense, so nothing is ever left pending.
            let sense = FixedSenseData(senseKey: .noSense, additionalSense: .none).encode()
            return Self.answer(sense, allocation: Int(allocation), direction: direction, buffer: buffer)
        case .reportLUNs:
            // Answered by the controller, which knows every LUN.
            return .illegal(.invalidCommandOperationCode)
        case .other(let code, _):
            return Self.acceptedWithoutAction.contains(code) ? .good() : .illegal(.invalidCommandOperationCode)
        }
    }

    /// Commands a virtual disk accepts and has nothing to do for (OpenVMM: GOOD).
    static let acceptedWithoutAction: Set<SCSIOperationCode> = [
        SCSIOperationCode(rawValue: 0x1B),  // START STOP UNIT
        SCSIOperationCode(rawValue: 0x1E),  // PREVENT ALLOW MEDIUM REMOVAL
        SCSIOperationCode(rawValue: 0x16),  // RESERVE(6)
        SCSIOperationCode(rawValue: 0x17),  // RELEASE(6)
        SCSIOperationCode(rawValue: 0x2F),  // VERIFY(10)
        SCSIOperationCode(rawValue: 0xAF),  // VERIFY(12)
        SCSIOperationCode(rawValue: 0x8F),  // VERIFY(16)
    ]

    /// ``execute(_:direction:buffer:)`` for a command that can finish without blocking: a
    /// READ or WRITE (without FUA) whose data the backend moves at once, or any command the
    /// backend's data is not needed for. `nil`: it would block; execute it on a disk thread.
    public func executeIfReady(_ command: SCSICommand, direction: SCSIDataDirection, buffer: MemoryExtents?) -> SCSIOutcome? {
        if self.backend.completesInline { return self.execute(command, direction: direction, buffer: buffer) }
        switch command {
        case .read(let block): return self.transfer(block, write: false, direction: direction, buffer: buffer, ifReady: true)
        case .write(let block) where !block.fua: return self.transfer(block, write: true, direction: direction, buffer: buffer, ifReady: true)
        case .write, .synchronizeCache, .unmap: return nil
        default: return self.execute(command, direction: direction, buffer: buffer)
        }
    }

    /// READ and WRITE (6/10/12/16): range-checked, then moved between the disk and the guest's
    /// pages in place. Zero blocks, a buffer shorter than the blocks, or blocks beyond the disk
    /// ⇒ 5/21 (as OpenVMM); a buffer in the wrong direction ⇒ 5/24. With `ifReady`, `nil` if the
    /// backend would have to block (checks that fail still answer at once).
    func transfer(_ block: SCSIBlockCommand, write: Bool, direction: SCSIDataDirection, buffer: MemoryExtents?, ifReady: Bool) -> SCSIOutcome? {
        guard block.flags & SCSIBlockCommand.relativeAddressFlag == 0 else { return .illegal(.invalidFieldInCDB) }
        let sector = UInt64(self.backend.sectorSize)
        let bytes = UInt64(block.blockCount) * sector
        guard block.blockCount > 0, let buffer, UInt64(buffer.byteCount) >= bytes else { return .illegal(.lbaOutOfRange) }
        guard direction == (write ? .write : .read) else { return .illegal(.invalidFieldInCDB) }
        let (offset, overflow) = block.lba.multipliedReportingOverflow(by: sector)
        guard !overflow else { return .illegal(.lbaOutOfRange) }
        let data = buffer.prefix(Int(bytes))
        do {
            if ifReady {
                let done = write ? try self.backend.writeIfReady(at: offset, from: data) : try self.backend.readIfReady(at: offset, into: data)
                return done ? .good(transferred: Int(bytes)) : nil
            }
            if write {
                try self.backend.write(at: offset, from: data)
                if block.fua { try self.backend.flush() }
            } else {
                try self.backend.read(at: offset, into: data)
            }
        } catch {
            return SCSIOutcome(error, writing: write)
        }
        return .good(transferred: Int(bytes))
    }

    /// UNMAP (SBC): the parameter list comes in the data buffer; every descriptor is checked
    /// before anything is discarded, so a bad list changes nothing.
    func unmap(parameterListLength: Int, direction: SCSIDataDirection, buffer: MemoryExtents?) -> SCSIOutcome {
        guard self.unmapSupported else {
            return self.backend.isReadOnly ? .check(.error, .dataProtect, .writeProtected) : .illegal(.invalidCommandOperationCode)
        }
        guard parameterListLength > 0 else { return .good() }
        guard direction == .write, let buffer, buffer.byteCount >= parameterListLength else {
            return .illegal(.parameterListLengthError)
        }
        let list: UnmapParameterList
        do { list = try UnmapParameterList(parsing: buffer.bytes(count: parameterListLength)[...]) } catch {
            return .illegal(.invalidFieldInParameterList)
        }
        guard list.descriptors.count <= Self.maximumUnmapDescriptors else { return .illegal(.invalidFieldInParameterList) }
        let sector = UInt64(self.backend.sectorSize)
        for descriptor in list.descriptors {
            let (end, overflow) = descriptor.lba.addingReportingOverflow(UInt64(descriptor.blockCount))
            guard !overflow, end <= self.backend.sectorCount else { return .illegal(.lbaOutOfRange) }
        }
        for descriptor in list.descriptors where descriptor.blockCount > 0 {
            do {
                try self.backend.discard(at: descriptor.lba * sector, count: UInt64(descriptor.blockCount) * sector)
            } catch {
                return SCSIOutcome(error, writing: true)
            }
        }
        return .good(transferred: parameterListLength)
    }

    /// Copies a small answer into the buffer: cut to the allocation length and to the buffer,
    /// reported as SUCCESS with the length moved (10 §4.4). Answers go to the guest only on a
    /// read (data in); otherwise nothing moves.
    static func answer(_ bytes: [UInt8], allocation: Int, direction: SCSIDataDirection, buffer: MemoryExtents?) -> SCSIOutcome {
        guard let buffer, direction == .read else { return .good() }
        let moved = buffer.copy(from: bytes.prefix(min(allocation, buffer.byteCount)))
        return .good(transferred: moved)
    }
}
