import VMBusWire

/// How a SCSI command ended, as the completion reports it (10 §4.4): the SRB status, the SAM
/// status, sense data for a CHECK CONDITION, and the bytes actually moved.
public struct SCSIOutcome: Hashable, Sendable {
    public var srbStatus: SRBStatus
    public var scsiStatus: SCSIStatus
    /// Fixed-format sense; set with CHECK CONDITION (and AUTOSENSE_VALID in the SRB status).
    public var sense: FixedSenseData?
    /// Bytes moved to or from the data buffer (`data_transfer_length` in the completion).
    public var transferred: Int

    public init(srbStatus: SRBStatus, scsiStatus: SCSIStatus, sense: FixedSenseData? = nil, transferred: Int = 0) {
        self.srbStatus = srbStatus
        self.scsiStatus = scsiStatus
        self.sense = sense
        self.transferred = transferred
    }

    /// SUCCESS / GOOD with `transferred` bytes. A short answer (INQUIRY, VPD, mode pages) is
    /// SUCCESS with the short length, never DATA_OVERRUN (Linux 6.12 fails that, 10 §4.4).
    public static func good(transferred: Int = 0) -> SCSIOutcome {
        SCSIOutcome(srbStatus: .success, scsiStatus: .good, transferred: transferred)
    }

    /// CHECK CONDITION with autosense: the SRB status a failing command pairs with it (never
    /// GOOD with a failing SRB status, 10 §4.4) and the sense.
    public static func check(_ srb: SRBStatus, _ key: SenseKey, _ sense: AdditionalSense) -> SCSIOutcome {
        SCSIOutcome(
            srbStatus: SRBStatus(srb, autosenseValid: true), scsiStatus: .checkCondition,
            sense: FixedSenseData(senseKey: key, additionalSense: sense))
    }

    /// ILLEGAL REQUEST with INVALID_REQUEST: an unsupported command or field (10 §6.2).
    public static func illegal(_ sense: AdditionalSense) -> SCSIOutcome { .check(.invalidRequest, .illegalRequest, sense) }

    /// A LUN with no disk (10 §6.3): CHECK CONDITION and SRB INVALID_LUN, no sense — Linux
    /// forgets the LUN.
    public static let invalidLUN = SCSIOutcome(srbStatus: .invalidLUN, scsiStatus: .checkCondition)

    /// Whether the command succeeded.
    public var isGood: Bool { self.srbStatus.code == .success && self.scsiStatus == .good }
}

extension SCSIOutcome {
    /// A disk backend's refusal as the SCSI answer OpenVMM gives (10 §6.2, §6.3): out of range
    /// ⇒ 5/21, read-only ⇒ 7/27, an I/O failure ⇒ MEDIUM ERROR (3/11 on reads, 3/03 on
    /// writes); all but the range check with SRB ERROR.
    init(_ error: DiskError, writing: Bool) {
        switch error {
        case .outOfRange, .misaligned: self = .illegal(.lbaOutOfRange)
        case .readOnly: self = .check(.error, .dataProtect, .writeProtected)
        case .io, .directIOUnsupported, .invalidSectorSize, .invalidSize:
            self = .check(.error, .mediumError, writing ? .writeFault : .unrecoveredReadError)
        }
    }
}
