/// SCSI operation codes (SPC/SBC; the ones 10 §6 names). An open set: a guest may send any
/// byte and a host must answer it (CHECK CONDITION, ILLEGAL REQUEST, 0x20/00).
public struct SCSIOperationCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// TEST UNIT READY, operation code 0x00.
    public static let testUnitReady = Self(rawValue: 0x00)
    /// REQUEST SENSE, operation code 0x03.
    public static let requestSense = Self(rawValue: 0x03)
    /// FORMAT UNIT, operation code 0x04.
    public static let formatUnit = Self(rawValue: 0x04)
    /// READ(6), operation code 0x08.
    public static let read6 = Self(rawValue: 0x08)
    /// WRITE(6), operation code 0x0A.
    public static let write6 = Self(rawValue: 0x0A)
    /// INQUIRY, operation code 0x12.
    public static let inquiry = Self(rawValue: 0x12)
    /// MODE SELECT(6), operation code 0x15.
    public static let modeSelect6 = Self(rawValue: 0x15)
    /// RESERVE(6), operation code 0x16.
    public static let reserve6 = Self(rawValue: 0x16)
    /// RELEASE(6), operation code 0x17.
    public static let release6 = Self(rawValue: 0x17)
    /// MODE SENSE(6), operation code 0x1A.
    public static let modeSense6 = Self(rawValue: 0x1A)
    /// START STOP UNIT, operation code 0x1B.
    public static let startStopUnit = Self(rawValue: 0x1B)
    /// SEND DIAGNOSTIC, operation code 0x1D.
    public static let sendDiagnostic = Self(rawValue: 0x1D)
    /// PREVENT ALLOW MEDIUM REMOVAL, operation code 0x1E.
    public static let preventAllowMediumRemoval = Self(rawValue: 0x1E)
    /// READ CAPACITY(10), operation code 0x25.
    public static let readCapacity10 = Self(rawValue: 0x25)
    /// READ(10), operation code 0x28.
    public static let read10 = Self(rawValue: 0x28)
    /// WRITE(10), operation code 0x2A.
    public static let write10 = Self(rawValue: 0x2A)
    /// WRITE AND VERIFY(10), operation code 0x2E.
    public static let writeAndVerify10 = Self(rawValue: 0x2E)
    /// VERIFY(10), operation code 0x2F.
    public static let verify10 = Self(rawValue: 0x2F)
    /// SYNCHRONIZE CACHE(10), operation code 0x35.
    public static let synchronizeCache10 = Self(rawValue: 0x35)
    /// Linux fails it locally at versions ≤ 5.1 and sends it only to "Msft" at ≥ 6.2.
    public static let writeSame10 = Self(rawValue: 0x41)
    /// UNMAP, operation code 0x42.
    public static let unmap = Self(rawValue: 0x42)
    /// MODE SELECT(10), operation code 0x55.
    public static let modeSelect10 = Self(rawValue: 0x55)
    /// MODE SENSE(10), operation code 0x5A.
    public static let modeSense10 = Self(rawValue: 0x5A)
    /// PERSISTENT RESERVE IN, operation code 0x5E.
    public static let persistentReserveIn = Self(rawValue: 0x5E)
    /// PERSISTENT RESERVE OUT, operation code 0x5F.
    public static let persistentReserveOut = Self(rawValue: 0x5F)
    /// ATA PASS-THROUGH(16), operation code 0x85.
    public static let ataPassThrough16 = Self(rawValue: 0x85)
    /// READ(16), operation code 0x88.
    public static let read16 = Self(rawValue: 0x88)
    /// WRITE(16), operation code 0x8A.
    public static let write16 = Self(rawValue: 0x8A)
    /// WRITE AND VERIFY(16), operation code 0x8E.
    public static let writeAndVerify16 = Self(rawValue: 0x8E)
    /// VERIFY(16), operation code 0x8F.
    public static let verify16 = Self(rawValue: 0x8F)
    /// SYNCHRONIZE CACHE(16), operation code 0x91.
    public static let synchronizeCache16 = Self(rawValue: 0x91)
    /// WRITE SAME(16), operation code 0x93.
    public static let writeSame16 = Self(rawValue: 0x93)
    /// SERVICE ACTION IN(16): READ CAPACITY(16) is service action 0x10, GET LBA STATUS 0x12.
    public static let serviceActionIn16 = Self(rawValue: 0x9E)
    /// REPORT LUNS, operation code 0xA0.
    public static let reportLUNs = Self(rawValue: 0xA0)
    /// ATA PASS-THROUGH(12), operation code 0xA1.
    public static let ataPassThrough12 = Self(rawValue: 0xA1)
    /// MAINTENANCE IN, operation code 0xA3.
    public static let maintenanceIn = Self(rawValue: 0xA3)
    /// READ(12), operation code 0xA8.
    public static let read12 = Self(rawValue: 0xA8)
    /// WRITE(12), operation code 0xAA.
    public static let write12 = Self(rawValue: 0xAA)
    /// WRITE AND VERIFY(12), operation code 0xAE.
    public static let writeAndVerify12 = Self(rawValue: 0xAE)
    /// VERIFY(12), operation code 0xAF.
    public static let verify12 = Self(rawValue: 0xAF)

    /// SERVICE ACTION IN(16) service action of READ CAPACITY(16).
    public static let readCapacity16ServiceAction: UInt8 = 0x10
    /// SERVICE ACTION IN(16) service action of GET LBA STATUS.
    public static let getLBAStatusServiceAction: UInt8 = 0x12

    /// The CDB length the operation code's group fixes (SPC: group 0 → 6, 1–2 → 10, 4 → 16,
    /// 5 → 12); `nil` for the reserved, variable-length and vendor groups.
    public var cdbLength: Int? {
        switch self.rawValue >> 5 {
        case 0: return 6
        case 1, 2: return 10
        case 4: return 16
        case 5: return 12
        default: return nil
        }
    }

    public var description: String { "0x" + hex(UInt32(self.rawValue), digits: 2) }
}

/// The sense key of sense data (SPC). An open set.
public struct SenseKey: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// NO SENSE (sense key 0x0).
    public static let noSense = Self(rawValue: 0x0)
    /// RECOVERED ERROR (sense key 0x1).
    public static let recoveredError = Self(rawValue: 0x1)
    /// NOT READY (sense key 0x2).
    public static let notReady = Self(rawValue: 0x2)
    /// I/O failures: ASC 0x11 for reads, 0x03 for writes (10 §6.2).
    public static let mediumError = Self(rawValue: 0x3)
    /// HARDWARE ERROR (sense key 0x4).
    public static let hardwareError = Self(rawValue: 0x4)
    /// Unsupported commands and fields, out-of-range LBAs.
    public static let illegalRequest = Self(rawValue: 0x5)
    /// Capacity changed (2A/09) and similar events; Linux rescans and retries.
    public static let unitAttention = Self(rawValue: 0x6)
    /// A write to a read-only disk (27/00).
    public static let dataProtect = Self(rawValue: 0x7)
    /// ABORTED COMMAND (sense key 0xB).
    public static let abortedCommand = Self(rawValue: 0xB)
}

/// An additional sense code and qualifier (ASC/ASCQ, SPC): what went wrong, within a sense
/// key. The named pairs are those 10 §4.4 and §6 use.
public struct AdditionalSense: Hashable, Sendable, CustomStringConvertible {
    /// The additional sense code (ASC).
    public var code: UInt8
    /// The additional sense code qualifier (ASCQ).
    public var qualifier: UInt8
    /// The pair `code`/`qualifier`.
    public init(code: UInt8, qualifier: UInt8) {
        self.code = code
        self.qualifier = qualifier
    }

    /// 00/00 NO ADDITIONAL SENSE INFORMATION.
    public static let none = Self(code: 0x00, qualifier: 0x00)
    /// 03/00 PERIPHERAL DEVICE WRITE FAULT: a failed write.
    public static let writeFault = Self(code: 0x03, qualifier: 0x00)
    /// 11/00 UNRECOVERED READ ERROR: a failed read.
    public static let unrecoveredReadError = Self(code: 0x11, qualifier: 0x00)
    /// 1A/00 PARAMETER LIST LENGTH ERROR.
    public static let parameterListLengthError = Self(code: 0x1A, qualifier: 0x00)
    /// 20/00 INVALID COMMAND OPERATION CODE: the answer to anything not implemented.
    public static let invalidCommandOperationCode = Self(code: 0x20, qualifier: 0x00)
    /// 21/00 LOGICAL BLOCK ADDRESS OUT OF RANGE.
    public static let lbaOutOfRange = Self(code: 0x21, qualifier: 0x00)
    /// 24/00 INVALID FIELD IN CDB.
    public static let invalidFieldInCDB = Self(code: 0x24, qualifier: 0x00)
    /// 25/00 LOGICAL UNIT NOT SUPPORTED.
    public static let logicalUnitNotSupported = Self(code: 0x25, qualifier: 0x00)
    /// 26/00 INVALID FIELD IN PARAMETER LIST.
    public static let invalidFieldInParameterList = Self(code: 0x26, qualifier: 0x00)
    /// 27/00 WRITE PROTECTED.
    public static let writeProtected = Self(code: 0x27, qualifier: 0x00)
    /// 2A/09 CAPACITY DATA HAS CHANGED: Linux rescans the device and retries.
    public static let capacityDataChanged = Self(code: 0x2A, qualifier: 0x09)
    /// 3F/0E REPORTED LUNS DATA HAS CHANGED (Linux does not rescan for 3F/03 and 3F/0E).
    public static let reportedLUNsDataChanged = Self(code: 0x3F, qualifier: 0x0E)

    public var description: String { hex(UInt32(self.code), digits: 2) + "/" + hex(UInt32(self.qualifier), digits: 2) }
}
