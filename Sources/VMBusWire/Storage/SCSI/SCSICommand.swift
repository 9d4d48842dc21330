/// The length form of a CDB family that exists in several sizes (READ/WRITE 6/10/12/16,
/// MODE SENSE 6/10, SYNCHRONIZE CACHE 10/16). Its raw value is the CDB length.
public enum SCSICDBForm: Int, Hashable, Sendable {
    /// A 6-byte CDB.
    case six = 6
    /// A 10-byte CDB.
    case ten = 10
    /// A 12-byte CDB.
    case twelve = 12
    /// A 16-byte CDB.
    case sixteen = 16
}

/// A READ or WRITE CDB (SBC), any form.
///
/// ```
/// (6)   0 op | 1–3 LBA (21 bits) | 4 blocks (0 = 256) | 5 control
/// (10)  0 op | 1 flags | 2–5 LBA | 6 group | 7–8 blocks  | 9 control
/// (12)  0 op | 1 flags | 2–5 LBA | 6–9 blocks | 10 group | 11 control
/// (16)  0 op | 1 flags | 2–9 LBA | 10–13 blocks | 14 group | 15 control
/// ```
public struct SCSIBlockCommand: Hashable, Sendable {
    /// Byte 1 bit 3: force unit access (Linux sets it when the disk reports DPOFUA).
    public static let fuaFlag: UInt8 = 0x08
    /// Byte 1 bit 4: disable page out.
    public static let dpoFlag: UInt8 = 0x10
    /// Byte 1 bit 0: the obsolete RelAdr, which OpenVMM answers with 5/24.
    public static let relativeAddressFlag: UInt8 = 0x01

    /// Which CDB size carries the command.
    public var form: SCSICDBForm
    /// The first logical block (21 bits in the 6-byte form, 32 in 10 and 12, 64 in 16).
    public var lba: UInt64
    /// Blocks to move; READ(6)'s 0 is read as 256.
    public var blockCount: UInt32
    /// Byte 1 of the 10/12/16 forms (RDPROTECT/WRPROTECT, DPO, FUA, RelAdr); 0 for (6).
    public var flags: UInt8

    /// A CDB of `form`; `flags` is byte 1 (ignored for the 6-byte form).
    public init(form: SCSICDBForm, lba: UInt64, blockCount: UInt32, flags: UInt8 = 0) {
        self.form = form
        self.lba = lba
        self.blockCount = blockCount
        self.flags = flags
    }

    /// The form Linux picks (10 §6.1): (10) unless the LBA needs more than 32 bits or the
    /// count more than 16, then (16).
    public init(linuxLBA lba: UInt64, blockCount: UInt32, fua: Bool = false) {
        let form: SCSICDBForm = lba > 0xFFFF_FFFF || blockCount > 0xFFFF ? .sixteen : .ten
        self.init(form: form, lba: lba, blockCount: blockCount, flags: fua ? Self.fuaFlag : 0)
    }

    /// Whether force unit access is set: the data must reach stable storage before completion.
    public var fua: Bool { self.flags & Self.fuaFlag != 0 }

    /// Reads the fields after the operation code (the form is already known).
    init(form: SCSICDBForm, from reader: inout WireReader) throws(WireError) {
        self.form = form
        switch form {
        case .six:
            let high = try reader.readUInt8() & 0x1F
            let low = try reader.readBigEndianUInt16()
            self.lba = UInt64(high) << 16 | UInt64(low)
            let count = try reader.readUInt8()
            self.blockCount = count == 0 ? 256 : UInt32(count)
            self.flags = 0
        case .ten:
            self.flags = try reader.readUInt8()
            self.lba = UInt64(try reader.readBigEndianUInt32())
            try reader.skip(1)
            self.blockCount = UInt32(try reader.readBigEndianUInt16())
        case .twelve:
            self.flags = try reader.readUInt8()
            self.lba = UInt64(try reader.readBigEndianUInt32())
            self.blockCount = try reader.readBigEndianUInt32()
            try reader.skip(1)
        case .sixteen:
            self.flags = try reader.readUInt8()
            self.lba = try reader.readBigEndianUInt64()
            self.blockCount = try reader.readBigEndianUInt32()
            try reader.skip(1)
        }
        try reader.skip(1)
    }

    /// Writes the fields after the operation code. Values wider than the form are cut
    /// (callers pick the form with ``init(linuxLBA:blockCount:fua:)``); 256 blocks in (6) is 0.
    func write(to writer: inout WireWriter) {
        switch self.form {
        case .six:
            writer.writeUInt8(UInt8(truncatingIfNeeded: self.lba >> 16) & 0x1F)
            writer.writeBigEndianUInt16(UInt16(truncatingIfNeeded: self.lba))
            writer.writeUInt8(UInt8(truncatingIfNeeded: self.blockCount))
        case .ten:
            writer.writeUInt8(self.flags)
            writer.writeBigEndianUInt32(UInt32(truncatingIfNeeded: self.lba))
            writer.writeUInt8(0)
            writer.writeBigEndianUInt16(UInt16(truncatingIfNeeded: self.blockCount))
        case .twelve:
            writer.writeUInt8(self.flags)
            writer.writeBigEndianUInt32(UInt32(truncatingIfNeeded: self.lba))
            writer.writeBigEndianUInt32(self.blockCount)
            writer.writeUInt8(0)
        case .sixteen:
            writer.writeUInt8(self.flags)
            writer.writeBigEndianUInt64(self.lba)
            writer.writeBigEndianUInt32(self.blockCount)
            writer.writeUInt8(0)
        }
        writer.writeUInt8(0)
    }
}

/// MODE SENSE (6) or (10) (SPC).
///
/// ```
/// (6)   0 0x1A | 1 DBD 0x08 | 2 PC << 6 | page | 3 subpage | 4 allocation      | 5 control
/// (10)  0 0x5A | 1 LLBAA 0x10, DBD 0x08 | 2 PC/page | 3 subpage | 7–8 allocation | 9 control
/// ```
public struct SCSIModeSense: Hashable, Sendable {
    /// Page 0x3F: every page. Linux asks for it (allocation 4) to learn write protection.
    public static let allPages: UInt8 = 0x3F
    /// Page 0x08: caching (WCE, RCD).
    public static let cachingPage: UInt8 = 0x08

    /// Which CDB size carries the command (6 or 10).
    public var form: SCSICDBForm
    /// Byte 1 bit 3, DBD: answer without block descriptors.
    public var disableBlockDescriptors: Bool
    /// (10) only: long-LBA block descriptors accepted.
    public var longLBAAccepted: Bool
    /// 0 current, 1 changeable, 2 default, 3 saved (OpenVMM refuses 3 with 5/24).
    public var pageControl: UInt8
    /// The mode page asked for (6 bits; ``allPages`` for every page).
    public var pageCode: UInt8
    /// The subpage asked for (0 for the page itself).
    public var subpageCode: UInt8
    /// Bytes of answer the guest has room for (one byte in the 6-byte form).
    public var allocationLength: UInt16

    /// A MODE SENSE; fields out of their form's range are cut to it.
    public init(
        form: SCSICDBForm = .six, pageCode: UInt8, subpageCode: UInt8 = 0, pageControl: UInt8 = 0,
        disableBlockDescriptors: Bool = false, longLBAAccepted: Bool = false, allocationLength: UInt16
    ) {
        self.form = form
        self.pageCode = pageCode & 0x3F
        self.subpageCode = subpageCode
        self.pageControl = pageControl & 0x3
        self.disableBlockDescriptors = disableBlockDescriptors
        self.longLBAAccepted = form == .ten && longLBAAccepted
        self.allocationLength = form == .six ? allocationLength & 0xFF : allocationLength
    }
}

/// SYNCHRONIZE CACHE (10) or (16) (SBC): (10) LBA @2–5, blocks @7–8; (16) LBA @2–9, blocks
/// @10–13; IMMED is byte 1 bit 1. Zero blocks means "to the end of the disk".
public struct SCSISynchronizeCache: Hashable, Sendable {
    /// Which CDB size carries the command (10 or 16).
    public var form: SCSICDBForm
    /// Byte 1 bit 1, IMMED: complete before the cache is written back.
    public var immediate: Bool
    /// The first logical block to write back.
    public var lba: UInt64
    /// Logical blocks to write back; 0 means to the end of the disk.
    public var blockCount: UInt32

    /// A SYNCHRONIZE CACHE; by default of the whole disk, in the 10-byte form.
    public init(form: SCSICDBForm = .ten, immediate: Bool = false, lba: UInt64 = 0, blockCount: UInt32 = 0) {
        self.form = form == .sixteen ? .sixteen : .ten
        self.immediate = immediate
        self.lba = lba
        self.blockCount = blockCount
    }
}

/// A parsed CDB: the commands Linux sends to a Hyper-V disk (10 §6.1) with their fields, and
/// any other command kept whole.
///
/// Reading takes the CDB area as sent. It reads exactly the length the operation code's
/// group fixes and ignores the rest, because OpenVMM reads all 16 bytes whatever
/// `cdb_length` says and Linux leaves the rest zero.
public enum SCSICommand: Hashable, Sendable {
    /// TEST UNIT READY: no fields.
    case testUnitReady
    /// REQUEST SENSE: byte 1 bit 0 DESC, allocation @4.
    case requestSense(descriptorFormat: Bool, allocationLength: UInt8)
    /// INQUIRY: byte 1 bit 0 EVPD, bit 1 CmdDt (obsolete; OpenVMM refuses it), page @2,
    /// allocation @3–4.
    case inquiry(vitalProductData: Bool, commandSupportData: Bool, pageCode: UInt8, allocationLength: UInt16)
    /// READ(6), (10), (12) or (16).
    case read(SCSIBlockCommand)
    /// WRITE(6), (10), (12) or (16).
    case write(SCSIBlockCommand)
    /// READ CAPACITY (10): 8 bytes of answer; the LBA and PMI fields are obsolete and not kept.
    case readCapacity10
    /// READ CAPACITY (16): SERVICE ACTION IN(16) with service action 0x10, allocation @10–13.
    case readCapacity16(allocationLength: UInt32)
    /// MODE SENSE(6) or (10).
    case modeSense(SCSIModeSense)
    /// REPORT LUNS: select report @2, allocation @6–9 (Linux: 0 and 4096).
    case reportLUNs(selectReport: UInt8, allocationLength: UInt32)
    /// SYNCHRONIZE CACHE(10) or (16).
    case synchronizeCache(SCSISynchronizeCache)
    /// UNMAP: byte 1 bit 0 ANCHOR, parameter list length @7–8 (the list is the data buffer).
    case unmap(anchor: Bool, parameterListLength: UInt16)
    /// Anything else: the operation code and the CDB bytes (its group's length, or all of
    /// them up to 16 for groups without a fixed length).
    case other(SCSIOperationCode, cdb: [UInt8])

    /// The operation code this command is sent with.
    public var operationCode: SCSIOperationCode {
        switch self {
        case .testUnitReady: return .testUnitReady
        case .requestSense: return .requestSense
        case .inquiry: return .inquiry
        case .read(let command):
            switch command.form {
            case .six: return .read6
            case .ten: return .read10
            case .twelve: return .read12
            case .sixteen: return .read16
            }
        case .write(let command):
            switch command.form {
            case .six: return .write6
            case .ten: return .write10
            case .twelve: return .write12
            case .sixteen: return .write16
            }
        case .readCapacity10: return .readCapacity10
        case .readCapacity16: return .serviceActionIn16
        case .modeSense(let command): return command.form == .ten ? .modeSense10 : .modeSense6
        case .reportLUNs: return .reportLUNs
        case .synchronizeCache(let command): return command.form == .sixteen ? .synchronizeCache16 : .synchronizeCache10
        case .unmap: return .unmap
        case .other(let code, _): return code
        }
    }

    /// Parses a CDB.
    /// - Throws: ``WireError/truncated(needed:available:)`` when `cdb` is shorter than the
    ///   length its operation code fixes (or empty).
    public init(parsing cdb: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(cdb)
        let code = SCSIOperationCode(rawValue: try reader.readUInt8())
        guard let length = code.cdbLength else {
            self = .other(code, cdb: Array(cdb.prefix(SCSIRequest.maximumCDBLength)))
            return
        }
        try reader.require(length - 1)
        switch code {
        case .testUnitReady:
            self = .testUnitReady
        case .requestSense:
            let desc = try reader.readUInt8() & 0x01 != 0
            try reader.skip(2)
            self = .requestSense(descriptorFormat: desc, allocationLength: try reader.readUInt8())
        case .inquiry:
            let byte1 = try reader.readUInt8()
            let page = try reader.readUInt8()
            self = .inquiry(
                vitalProductData: byte1 & 0x01 != 0, commandSupportData: byte1 & 0x02 != 0, pageCode: page,
                allocationLength: try reader.readBigEndianUInt16())
        case .read6, .read10, .read12, .read16, .write6, .write10, .write12, .write16:
            // The form is the CDB length, fixed by the group.
            let form = SCSICDBForm(rawValue: length) ?? .ten
            let command = try SCSIBlockCommand(form: form, from: &reader)
            let isRead = code == .read6 || code == .read10 || code == .read12 || code == .read16
            self = isRead ? .read(command) : .write(command)
        case .readCapacity10:
            self = .readCapacity10
        case .serviceActionIn16 where cdb[cdb.startIndex + 1] & 0x1F == SCSIOperationCode.readCapacity16ServiceAction:
            try reader.skip(9)
            self = .readCapacity16(allocationLength: try reader.readBigEndianUInt32())
        case .modeSense6, .modeSense10:
            let byte1 = try reader.readUInt8()
            let byte2 = try reader.readUInt8()
            let subpage = try reader.readUInt8()
            let allocation: UInt16
            if code == .modeSense6 {
                allocation = UInt16(try reader.readUInt8())
            } else {
                try reader.skip(3)
                allocation = try reader.readBigEndianUInt16()
            }
            self = .modeSense(
                SCSIModeSense(
                    form: code == .modeSense6 ? .six : .ten, pageCode: byte2 & 0x3F, subpageCode: subpage,
                    pageControl: byte2 >> 6, disableBlockDescriptors: byte1 & 0x08 != 0,
                    longLBAAccepted: byte1 & 0x10 != 0, allocationLength: allocation))
        case .reportLUNs:
            try reader.skip(1)
            let select = try reader.readUInt8()
            try reader.skip(3)
            self = .reportLUNs(selectReport: select, allocationLength: try reader.readBigEndianUInt32())
        case .synchronizeCache10:
            let immediate = try reader.readUInt8() & 0x02 != 0
            let lba = UInt64(try reader.readBigEndianUInt32())
            try reader.skip(1)
            let blocks = UInt32(try reader.readBigEndianUInt16())
            self = .synchronizeCache(SCSISynchronizeCache(form: .ten, immediate: immediate, lba: lba, blockCount: blocks))
        case .synchronizeCache16:
            let immediate = try reader.readUInt8() & 0x02 != 0
            let lba = try reader.readBigEndianUInt64()
            let blocks = try reader.readBigEndianUInt32()
            self = .synchronizeCache(SCSISynchronizeCache(form: .sixteen, immediate: immediate, lba: lba, blockCount: blocks))
        case .unmap:
            let anchor = try reader.readUInt8() & 0x01 != 0
            try reader.skip(5)
            self = .unmap(anchor: anchor, parameterListLength: try reader.readBigEndianUInt16())
        default:
            self = .other(code, cdb: Array(cdb.prefix(length)))
        }
    }

    /// The CDB bytes, exactly the command's length (6, 10, 12 or 16); reserved and control
    /// bytes are zero.
    public func encode() -> [UInt8] {
        var writer = WireWriter(capacity: SCSIRequest.maximumCDBLength)
        writer.writeUInt8(self.operationCode.rawValue)
        switch self {
        case .testUnitReady:
            writer.writeZeros(5)
        case .requestSense(let desc, let allocation):
            writer.writeUInt8(desc ? 1 : 0)
            writer.writeZeros(2)
            writer.writeUInt8(allocation)
            writer.writeUInt8(0)
        case .inquiry(let evpd, let cmdDt, let page, let allocation):
            writer.writeUInt8((evpd ? 0x01 : 0) | (cmdDt ? 0x02 : 0))
            writer.writeUInt8(page)
            writer.writeBigEndianUInt16(allocation)
            writer.writeUInt8(0)
        case .read(let command), .write(let command):
            command.write(to: &writer)
        case .readCapacity10:
            writer.writeZeros(9)
        case .readCapacity16(let allocation):
            writer.writeUInt8(SCSIOperationCode.readCapacity16ServiceAction)
            writer.writeZeros(8)
            writer.writeBigEndianUInt32(allocation)
            writer.writeZeros(2)
        case .modeSense(let command):
            writer.writeUInt8((command.disableBlockDescriptors ? 0x08 : 0) | (command.longLBAAccepted ? 0x10 : 0))
            writer.writeUInt8(command.pageControl << 6 | command.pageCode & 0x3F)
            writer.writeUInt8(command.subpageCode)
            if command.form == .ten {
                writer.writeZeros(3)
                writer.writeBigEndianUInt16(command.allocationLength)
            } else {
                writer.writeUInt8(UInt8(truncatingIfNeeded: command.allocationLength))
            }
            writer.writeUInt8(0)
        case .reportLUNs(let select, let allocation):
            writer.writeUInt8(0)
            writer.writeUInt8(select)
            writer.writeZeros(3)
            writer.writeBigEndianUInt32(allocation)
            writer.writeZeros(2)
        case .synchronizeCache(let command):
            writer.writeUInt8(command.immediate ? 0x02 : 0)
            if command.form == .sixteen {
                writer.writeBigEndianUInt64(command.lba)
                writer.writeBigEndianUInt32(command.blockCount)
                writer.writeZeros(2)
            } else {
                writer.writeBigEndianUInt32(UInt32(truncatingIfNeeded: command.lba))
                writer.writeUInt8(0)
                writer.writeBigEndianUInt16(UInt16(truncatingIfNeeded: command.blockCount))
                writer.writeUInt8(0)
            }
        case .unmap(let anchor, let length):
            writer.writeUInt8(anchor ? 1 : 0)
            writer.writeZeros(5)
            writer.writeBigEndianUInt16(length)
            writer.writeUInt8(0)
        case .other(_, let cdb):
            writer.writeBytes(cdb.dropFirst())
        }
        return writer.bytes
    }
}
