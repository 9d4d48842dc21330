/// The SCSI request block as carried in EXECUTE_SRB and its COMPLETE_IO (`vmscsi_request`,
/// 10 §4.1). The guest fills the addressing, the CDB, the direction and the buffer length;
/// the host answers in the same structure with the SRB and SCSI status, the sense data (in
/// the same 20 bytes as the CDB) and the bytes actually transferred.
///
/// ```
/// Req  Pkt  Size
///  0   12   2   length            0x34 (Win8) / 0x24
///  2   14   1   srb_status        SRBStatus
///  3   15   1   scsi_status       SCSIStatus
///  4   16   1   port_number
///  5   17   1   path_id
///  6   18   1   target_id
///  7   19   1   lun
///  8   20   1   cdb_length
///  9   21   1   sense_info_length
/// 10   22   1   data_in           SCSIDataDirection
/// 11   23   1   reserved          ("properties" in OpenVMM)
/// 12   24   4   data_transfer_length
/// 16   28  20   cdb[16] / sense_data[20]
/// 36   48   2   reserve           — the Win8 extension starts here
/// 38   50   1   queue_tag
/// 39   51   1   queue_action
/// 40   52   4   srb_flags         SRBFlags
/// 44   56   4   time_out_value    seconds
/// 48   60   4   queue_sort_key
/// ```
///
/// Reading is lenient in the way OpenVMM is: a request shorter than 52 bytes (a pre-Win8
/// guest's 36, or anything cut short) is zero-extended, because the fields past the end have
/// harmless zero meanings. The reserved bytes (11, 36) are not kept.
public struct SCSIRequest: Hashable, Sendable {
    /// The request with the Win8 extension (versions ≥ 5.1).
    public static let wireSize = 52
    /// The pre-Win8 request (versions 2.0 and 4.2).
    public static let legacyWireSize = 36
    /// Bytes of the shared CDB/sense area.
    public static let senseAreaSize = 20
    /// Sense bytes a pre-Win8 request advertises.
    public static let legacySenseSize = 18
    /// Longest CDB the area holds.
    public static let maximumCDBLength = 16
    /// Where the CDB/sense area starts in the request.
    public static let senseAreaOffset = 16

    /// `length`: the request's own size as the sender saw it (0x34 or 0x24). Kept as read;
    /// OpenVMM does not check it.
    public var length: UInt16
    /// The SRB status: in a completion, how the request went; 0 (pending) in a request.
    public var srbStatus: SRBStatus
    /// The SCSI status byte of a completion; 0 in a request.
    public var scsiStatus: SCSIStatus
    /// The guest's SCSI host number; OpenVMM ignores it and answers 0.
    public var portNumber: UInt8
    /// SCSI channel (Linux: 0–7).
    public var pathID: UInt8
    /// Target (Linux: 0–1).
    public var targetID: UInt8
    /// The logical unit (Linux: 0–255).
    public var lun: UInt8
    /// `cdb_length` as sent: may claim more than 16 (``cdb`` caps it).
    public var cdbLength: UInt8
    /// `sense_info_length`: in a request the room for sense (0x14), in a completion the valid
    /// sense bytes. May claim more than 20 (``senseData`` caps it).
    public var senseInfoLength: UInt8
    /// `data_in`: which way the data buffer goes.
    public var dataDirection: SCSIDataDirection
    /// `data_transfer_length`: the buffer length in a request, the bytes moved in a completion.
    public var dataTransferLength: UInt32
    /// The 20-byte union of the CDB (request) and the sense data (completion), always exactly
    /// ``senseAreaSize`` bytes.
    public var commandOrSense: [UInt8]
    /// Win8 extension: 0xFF ("untagged") from Linux for a tagged device.
    public var queueTag: UInt8
    /// Win8 extension: 0x20 (simple) from Linux for a tagged device.
    public var queueAction: UInt8
    /// Win8 extension: SRB flags (Linux sets some on every request; hosts need not read them).
    public var srbFlags: SRBFlags
    /// Win8 extension: seconds; Linux sends 60.
    public var timeOutValue: UInt32
    /// Win8 extension: the queue sort key (Linux leaves it 0).
    public var queueSortKey: UInt32

    /// A request or completion with every field given; `commandOrSense` is zero-padded or cut
    /// to 20 bytes.
    public init(
        length: UInt16 = UInt16(SCSIRequest.wireSize), srbStatus: SRBStatus = .pending, scsiStatus: SCSIStatus = .good,
        portNumber: UInt8 = 0, pathID: UInt8 = 0, targetID: UInt8 = 0, lun: UInt8 = 0, cdbLength: UInt8 = 0,
        senseInfoLength: UInt8 = 0, dataDirection: SCSIDataDirection = .none, dataTransferLength: UInt32 = 0,
        commandOrSense: [UInt8] = [], queueTag: UInt8 = 0, queueAction: UInt8 = 0, srbFlags: SRBFlags = [],
        timeOutValue: UInt32 = 0, queueSortKey: UInt32 = 0
    ) {
        self.length = length
        self.srbStatus = srbStatus
        self.scsiStatus = scsiStatus
        self.portNumber = portNumber
        self.pathID = pathID
        self.targetID = targetID
        self.lun = lun
        self.cdbLength = cdbLength
        self.senseInfoLength = senseInfoLength
        self.dataDirection = dataDirection
        self.dataTransferLength = dataTransferLength
        self.commandOrSense = Self.fitArea(commandOrSense)
        self.queueTag = queueTag
        self.queueAction = queueAction
        self.srbFlags = srbFlags
        self.timeOutValue = timeOutValue
        self.queueSortKey = queueSortKey
    }

    /// A request as Linux builds it (10 §4.1–4.2): sense room 0x14, timeout 60 s, the
    /// direction flags, and the queue fields and flags of a tagged device when `tagged`.
    /// - Precondition: `cdb` is at most 16 bytes (local input, never from a peer).
    public static func request(
        cdb: [UInt8], direction: SCSIDataDirection, transferLength: UInt32, pathID: UInt8 = 0, targetID: UInt8 = 0,
        lun: UInt8 = 0, portNumber: UInt8 = 0, tagged: Bool = true
    ) -> SCSIRequest {
        precondition(cdb.count <= Self.maximumCDBLength, "a CDB has at most 16 bytes")
        var flags: SRBFlags = [.disableSynchronousTransfer]
        if tagged { flags.formUnion([.queueActionEnable, .noQueueFreeze]) }
        if direction == .read { flags.insert(.dataIn) }
        if direction == .write { flags.insert(.dataOut) }
        return SCSIRequest(
            portNumber: portNumber, pathID: pathID, targetID: targetID, lun: lun, cdbLength: UInt8(cdb.count),
            senseInfoLength: UInt8(Self.senseAreaSize), dataDirection: direction, dataTransferLength: transferLength,
            commandOrSense: cdb, queueTag: tagged ? 0xFF : 0, queueAction: tagged ? 0x20 : 0, srbFlags: flags,
            timeOutValue: 60)
    }

    /// The completion of a request as OpenVMM writes it (10 §4.4): length 0x34, CDB length
    /// 16, the addressing and queue fields zero, the sense data (if any) in the area with
    /// its length. `sense` longer than 20 bytes is cut.
    public static func completion(
        srbStatus: SRBStatus, scsiStatus: SCSIStatus, transferred: UInt32, sense: [UInt8] = []
    ) -> SCSIRequest {
        let senseBytes = Self.fitArea(sense)
        return SCSIRequest(
            srbStatus: srbStatus, scsiStatus: scsiStatus, cdbLength: UInt8(Self.maximumCDBLength),
            senseInfoLength: sense.isEmpty ? UInt8(Self.senseAreaSize) : UInt8(min(sense.count, Self.senseAreaSize)),
            dataDirection: .write, dataTransferLength: transferred, commandOrSense: senseBytes)
    }

    /// The CDB: the first `cdb_length` bytes of the area, at most 16 (OpenVMM reads all 16
    /// whatever the length says; callers that want that use ``commandOrSense``).
    public var cdb: ArraySlice<UInt8> { self.commandOrSense.prefix(min(Int(self.cdbLength), Self.maximumCDBLength)) }

    /// The valid sense bytes: `sense_info_length` clamped to the 20-byte area, as Linux does.
    public var senseData: ArraySlice<UInt8> { self.commandOrSense.prefix(min(Int(self.senseInfoLength), Self.senseAreaSize)) }

    /// Reads a request from `reader`, zero-extending it if fewer than 52 bytes are left.
    /// Never throws for short input: every prefix, even empty, is a request with zero fields.
    public init(from reader: inout WireReader) {
        var fields = [UInt8](reader.readRemaining().prefix(Self.wireSize))
        if fields.count < Self.wireSize { fields.append(contentsOf: repeatElement(0, count: Self.wireSize - fields.count)) }
        var r = WireReader(fields)
        // 52 bytes are present, so none of these reads can fail.
        do {
            self.length = try r.readUInt16()
            self.srbStatus = SRBStatus(rawValue: try r.readUInt8())
            self.scsiStatus = SCSIStatus(rawValue: try r.readUInt8())
            self.portNumber = try r.readUInt8()
            self.pathID = try r.readUInt8()
            self.targetID = try r.readUInt8()
            self.lun = try r.readUInt8()
            self.cdbLength = try r.readUInt8()
            self.senseInfoLength = try r.readUInt8()
            self.dataDirection = SCSIDataDirection(rawValue: try r.readUInt8())
            try r.skip(1)
            self.dataTransferLength = try r.readUInt32()
            self.commandOrSense = Array(try r.readBytes(Self.senseAreaSize))
            try r.skip(2)
            self.queueTag = try r.readUInt8()
            self.queueAction = try r.readUInt8()
            self.srbFlags = SRBFlags(rawValue: try r.readUInt32())
            self.timeOutValue = try r.readUInt32()
            self.queueSortKey = try r.readUInt32()
        } catch {
            // Unreachable: `fields` has exactly `wireSize` bytes.
            self = SCSIRequest()
        }
    }

    /// Writes the request: all 52 bytes, or with `win8Extension: false` the first 36
    /// (pre-Win8 peers, where the extension's fields are dropped).
    public func write(to writer: inout WireWriter, win8Extension: Bool = true) {
        writer.writeUInt16(self.length)
        writer.writeUInt8(self.srbStatus.rawValue)
        writer.writeUInt8(self.scsiStatus.rawValue)
        writer.writeUInt8(self.portNumber)
        writer.writeUInt8(self.pathID)
        writer.writeUInt8(self.targetID)
        writer.writeUInt8(self.lun)
        writer.writeUInt8(self.cdbLength)
        writer.writeUInt8(self.senseInfoLength)
        writer.writeUInt8(self.dataDirection.rawValue)
        writer.writeUInt8(0)
        writer.writeUInt32(self.dataTransferLength)
        writer.writeBytes(Self.fitArea(self.commandOrSense))
        guard win8Extension else { return }
        writer.writeUInt16(0)
        writer.writeUInt8(self.queueTag)
        writer.writeUInt8(self.queueAction)
        writer.writeUInt32(self.srbFlags.rawValue)
        writer.writeUInt32(self.timeOutValue)
        writer.writeUInt32(self.queueSortKey)
    }

    /// `bytes` zero-padded or cut to the 20-byte CDB/sense area.
    static func fitArea(_ bytes: [UInt8]) -> [UInt8] {
        if bytes.count == Self.senseAreaSize { return bytes }
        if bytes.count > Self.senseAreaSize { return Array(bytes.prefix(Self.senseAreaSize)) }
        return bytes + [UInt8](repeating: 0, count: Self.senseAreaSize - bytes.count)
    }
}
