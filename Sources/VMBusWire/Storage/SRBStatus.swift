/// The SRB status byte of a completed ``SCSIRequest`` (10 §4.4): a 6-bit code and two flags.
/// Windows' `srb.h` model; an open set, because a host may send codes this library does not
/// name and Linux 6.1 passes unknown ones through.
public struct SRBStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// A code with its flags.
    public init(_ code: SRBStatus, autosenseValid: Bool = false, queueFrozen: Bool = false) {
        self.rawValue = code.rawValue & Self.codeMask
            | (autosenseValid ? Self.autosenseValidFlag : 0) | (queueFrozen ? Self.queueFrozenFlag : 0)
    }

    /// Bits 0–5: the status code.
    public static let codeMask: UInt8 = 0x3F
    /// 0x40 `SRB_STATUS_QUEUE_FROZEN`.
    public static let queueFrozenFlag: UInt8 = 0x40
    /// 0x80 `SRB_STATUS_AUTOSENSE_VALID`: the sense area holds sense data. Linux copies sense
    /// only when this is set *and* the SCSI status is CHECK CONDITION.
    public static let autosenseValidFlag: UInt8 = 0x80

    /// The code without the flags.
    public var code: SRBStatus { SRBStatus(rawValue: self.rawValue & Self.codeMask) }
    /// Whether the sense area holds sense data (flag 0x80).
    public var isAutosenseValid: Bool { self.rawValue & Self.autosenseValidFlag != 0 }
    /// Whether the device's queue is frozen until released (flag 0x40).
    public var isQueueFrozen: Bool { self.rawValue & Self.queueFrozenFlag != 0 }

    /// 0: what a guest puts in a request.
    public static let pending = Self(rawValue: 0x00)
    /// 0x01. Linux compares the whole byte to this, so success never carries flags.
    public static let success = Self(rawValue: 0x01)
    /// 0x02 `SRB_STATUS_ABORTED`.
    public static let aborted = Self(rawValue: 0x02)
    /// 0x03 `SRB_STATUS_ABORT_FAILED`.
    public static let abortFailed = Self(rawValue: 0x03)
    /// 0x04: with CHECK CONDITION and sense for unit attention, write protect and I/O errors.
    public static let error = Self(rawValue: 0x04)
    /// 0x05 `SRB_STATUS_BUSY`.
    public static let busy = Self(rawValue: 0x05)
    /// 0x06: with CHECK CONDITION and ILLEGAL REQUEST sense for unsupported commands and fields.
    public static let invalidRequest = Self(rawValue: 0x06)
    /// 0x07 `SRB_STATUS_INVALID_PATH_ID`.
    public static let invalidPathID = Self(rawValue: 0x07)
    /// 0x08 `SRB_STATUS_NO_DEVICE`.
    public static let noDevice = Self(rawValue: 0x08)
    /// 0x09 `SRB_STATUS_TIMEOUT`.
    public static let timeout = Self(rawValue: 0x09)
    /// 0x0A `SRB_STATUS_SELECTION_TIMEOUT`.
    public static let selectionTimeout = Self(rawValue: 0x0A)
    /// 0x0B `SRB_STATUS_COMMAND_TIMEOUT`.
    public static let commandTimeout = Self(rawValue: 0x0B)
    /// 0x0D `SRB_STATUS_MESSAGE_REJECTED`.
    public static let messageRejected = Self(rawValue: 0x0D)
    /// 0x0E `SRB_STATUS_BUS_RESET`.
    public static let busReset = Self(rawValue: 0x0E)
    /// 0x0F `SRB_STATUS_PARITY_ERROR`.
    public static let parityError = Self(rawValue: 0x0F)
    /// 0x10 `SRB_STATUS_REQUEST_SENSE_FAILED`.
    public static let requestSenseFailed = Self(rawValue: 0x10)
    /// 0x11 `SRB_STATUS_NO_HBA`.
    public static let noHBA = Self(rawValue: 0x11)
    /// 0x12: Linux treats the transfer as done, like success; report short reads as success.
    public static let dataOverrun = Self(rawValue: 0x12)
    /// 0x13 `SRB_STATUS_UNEXPECTED_BUS_FREE`.
    public static let unexpectedBusFree = Self(rawValue: 0x13)
    /// 0x14 `SRB_STATUS_PHASE_SEQUENCE_FAILURE`.
    public static let phaseSequenceFailure = Self(rawValue: 0x14)
    /// 0x15 `SRB_STATUS_BAD_SRB_BLOCK_LENGTH`.
    public static let badSRBBlockLength = Self(rawValue: 0x15)
    /// 0x16 `SRB_STATUS_REQUEST_FLUSHED`.
    public static let requestFlushed = Self(rawValue: 0x16)
    /// 0x20 `SRB_STATUS_INVALID_LUN`.
    public static let invalidLUN = Self(rawValue: 0x20)
    /// 0x21 `SRB_STATUS_INVALID_TARGET_ID`.
    public static let invalidTargetID = Self(rawValue: 0x21)
    /// 0x22 `SRB_STATUS_BAD_FUNCTION`.
    public static let badFunction = Self(rawValue: 0x22)
    /// 0x23 `SRB_STATUS_ERROR_RECOVERY`.
    public static let errorRecovery = Self(rawValue: 0x23)
    /// 0x24 `SRB_STATUS_NOT_POWERED`.
    public static let notPowered = Self(rawValue: 0x24)
    /// 0x25 `SRB_STATUS_LINK_DOWN`.
    public static let linkDown = Self(rawValue: 0x25)
    /// 0x30 `SRB_STATUS_INTERNAL_ERROR`.
    public static let internalError = Self(rawValue: 0x30)

    public var description: String { "0x" + hex(UInt32(self.rawValue), digits: 2) }
}

/// The SAM status byte of a completed ``SCSIRequest`` (10 §4.1). An open set.
public struct SCSIStatus: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// 0x00 GOOD.
    public static let good = Self(rawValue: 0x00)
    /// Sense data describes the failure; never pair a failing SRB status with ``good``.
    public static let checkCondition = Self(rawValue: 0x02)
    /// 0x04 CONDITION MET.
    public static let conditionMet = Self(rawValue: 0x04)
    /// 0x08 BUSY.
    public static let busy = Self(rawValue: 0x08)
    /// 0x18 RESERVATION CONFLICT.
    public static let reservationConflict = Self(rawValue: 0x18)
    /// 0x28 TASK SET FULL.
    public static let taskSetFull = Self(rawValue: 0x28)
    /// 0x30 ACA ACTIVE.
    public static let acaActive = Self(rawValue: 0x30)
    /// 0x40 TASK ABORTED.
    public static let taskAborted = Self(rawValue: 0x40)
}

/// SRB flags in a request (10 §4.2). Hosts need not interpret them: direction comes from
/// ``SCSIRequest/dataDirection``.
public struct SRBFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// 0x2: set by Linux for a tagged (CmdQue) device.
    public static let queueActionEnable = Self(rawValue: 0x0000_0002)
    /// 0x8: set by Linux on every request.
    public static let disableSynchronousTransfer = Self(rawValue: 0x0000_0008)
    /// 0x40: the device writes the buffer (a read).
    public static let dataIn = Self(rawValue: 0x0000_0040)
    /// 0x80: the device reads the buffer (a write).
    public static let dataOut = Self(rawValue: 0x0000_0080)
    /// 0x100: set by Linux for a tagged device.
    public static let noQueueFreeze = Self(rawValue: 0x0000_0100)
}

/// `data_in` of a request (10 §4.1): the only direction a host honours. OpenVMM lets the disk
/// write guest memory only when it is non-zero. An open set.
public struct SCSIDataDirection: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// 0 (`WRITE_TYPE`): the buffer goes to the device.
    public static let write = Self(rawValue: 0)
    /// 1 (`READ_TYPE`): the device fills the buffer.
    public static let read = Self(rawValue: 1)
    /// 2 (`UNKNOWN_TYPE`): no data buffer.
    public static let none = Self(rawValue: 2)
}

extension NTStatus {
    /// 0xC0000059 STATUS_REVISION_MISMATCH: the host refuses the offered storage version.
    public static let revisionMismatch = NTStatus(rawValue: 0xC000_0059)
    /// 0xC0000184 STATUS_INVALID_DEVICE_STATE: an operation out of order (OpenVMM).
    public static let invalidDeviceState = NTStatus(rawValue: 0xC000_0184)
    /// 0xC000000D STATUS_INVALID_PARAMETER: more sub-channels than offered (OpenVMM).
    public static let invalidParameter = NTStatus(rawValue: 0xC000_000D)
    /// 0x80000011 STATUS_DEVICE_BUSY.
    public static let deviceBusy = NTStatus(rawValue: 0x8000_0011)
    /// 0xC00000C0 STATUS_DEVICE_DOES_NOT_EXIST.
    public static let deviceDoesNotExist = NTStatus(rawValue: 0xC000_00C0)
    /// 0xC00000B5 STATUS_IO_TIMEOUT.
    public static let ioTimeout = NTStatus(rawValue: 0xC000_00B5)
    /// 0xC000009D STATUS_DEVICE_NOT_CONNECTED.
    public static let deviceNotConnected = NTStatus(rawValue: 0xC000_009D)
    /// 0xC0000010 STATUS_INVALID_DEVICE_REQUEST.
    public static let invalidDeviceRequest = NTStatus(rawValue: 0xC000_0010)
    /// 0x80000005 STATUS_BUFFER_OVERFLOW.
    public static let bufferOverflow = NTStatus(rawValue: 0x8000_0005)
    /// 0xC0000120 STATUS_CANCELLED.
    public static let cancelled = NTStatus(rawValue: 0xC000_0120)
    /// 0xC0000185 STATUS_IO_DEVICE_ERROR.
    public static let ioDeviceError = NTStatus(rawValue: 0xC000_0185)

    /// The packet status OpenVMM puts on an I/O completion with this SRB status (10 §2.3).
    /// Linux only logs it, but Windows guests read it.
    public init(completing srbStatus: SRBStatus) {
        switch srbStatus.code {
        case .success: self = .success
        case .busy: self = .deviceBusy
        case .invalidLUN, .invalidTargetID, .noDevice, .noHBA: self = .deviceDoesNotExist
        case .timeout, .commandTimeout: self = .ioTimeout
        case .selectionTimeout: self = .deviceNotConnected
        case .badFunction, .badSRBBlockLength: self = .invalidDeviceRequest
        case .dataOverrun: self = .bufferOverflow
        case .requestFlushed: self = .unsuccessful
        case .aborted: self = .cancelled
        default: self = .ioDeviceError
        }
    }
}
