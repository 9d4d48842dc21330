/// One vstor packet (`vstor_packet`, 10 §2): the payload of every in-band, GPA-direct and
/// completion packet on a storage channel.
///
/// ```
/// 0   4   operation   StorageOperation
/// 4   4   flags       StoragePacketFlags
/// 8   4   status      NTStatus (host → guest; 0 in requests)
/// 12  52  body        union: SCSIRequest, version, properties, WWN block, sub-channel count
/// ```
///
/// The body is a union whose member follows from the operation — except for COMPLETE_IO,
/// whose body is that of the request it completes, which only the guest's transaction table
/// knows. So the reader takes that request's operation as an argument.
///
/// Size (10 §2.1): 64 bytes from version 5.1 on, 48 before; ``encode(size:)`` pads or cuts to
/// the size the peer wants, and the reader accepts any length that holds the fields it reads
/// (a SCSI request is zero-extended, as OpenVMM does). Whether a short packet is acceptable
/// at all (Linux ≥ 5.19 drops completions shorter than 64) is the channel's policy.
public struct StoragePacket: Hashable, Sendable {
    /// The member of the body union a packet carries.
    public enum Body: Hashable, Sendable {
        /// Nothing is read: BEGIN/END_INITIALIZATION, QUERY_PROPERTIES requests, the resets,
        /// ENUMERATE_BUS, REMOVE_DEVICE, and completions that carry only a status.
        case none
        /// QUERY_PROTOCOL_VERSION and its completion: `major_minor` @12 and `revision` @14
        /// (Windows build information: send 0, ignore).
        case version(StorageVersion, revision: UInt16)
        /// The QUERY_PROPERTIES completion.
        case properties(StorageChannelProperties)
        /// EXECUTE_SRB and its completion.
        case request(SCSIRequest)
        /// CREATE_SUB_CHANNELS: u16 @12.
        case subChannelCount(UInt16)
        /// FCHBA_DATA (Fibre Channel only).
        case fibreChannel(FibreChannelWWN)
        /// An operation this library does not know, or a COMPLETE_IO read without saying what
        /// it completes: every byte after the header, as received.
        case raw([UInt8])
    }

    /// What the packet asks for, or COMPLETE_IO for an answer.
    public var operation: StorageOperation
    /// Packet flags: a guest's requests ask for completion.
    public var flags: StoragePacketFlags
    /// The host's answer status; 0 in requests.
    public var status: NTStatus
    /// What follows the 12-byte header.
    public var body: Body

    /// A packet with these fields; see ``request(_:body:)`` and ``completion(status:body:)`` for the usual ones.
    public init(operation: StorageOperation, flags: StoragePacketFlags = [], status: NTStatus = .success, body: Body = .none) {
        self.operation = operation
        self.flags = flags
        self.status = status
        self.body = body
    }

    /// A guest request: completion requested, status 0, as Linux sends every one.
    public static func request(_ operation: StorageOperation, body: Body = .none) -> StoragePacket {
        StoragePacket(operation: operation, flags: .requestCompletion, body: body)
    }

    /// A host completion: COMPLETE_IO, flags 0.
    public static func completion(status: NTStatus = .success, body: Body = .none) -> StoragePacket {
        StoragePacket(operation: .completeIO, status: status, body: body)
    }

    /// The body member a packet of `operation` carries. For COMPLETE_IO that of `request`, the
    /// operation being completed; `nil` there gives ``Body/raw(_:)``.
    public static func bodyKind(of operation: StorageOperation, completing request: StorageOperation? = nil) -> BodyKind {
        switch operation {
        case .completeIO:
            guard let request else { return .raw }
            switch request {
            case .queryProtocolVersion: return .version
            case .queryProperties: return .properties
            case .executeSRB: return .request
            case .fibreChannelData: return .fibreChannel
            // The other requests are answered with a status only.
            default: return .none
            }
        case .queryProtocolVersion: return .version
        case .executeSRB: return .request
        case .createSubChannels: return .subChannelCount
        case .fibreChannelData: return .fibreChannel
        case .removeDevice, .resetLUN, .resetAdapter, .resetBus, .beginInitialization, .endInitialization,
            .enumerateBus, .queryProperties, .eventNotification:
            return .none
        default:
            return .raw
        }
    }

    /// The members of ``Body``, for ``bodyKind(of:completing:)``.
    public enum BodyKind: Hashable, Sendable {
        /// One per member of ``Body``, without its value.
        case none, version, properties, request, subChannelCount, fibreChannel, raw
    }

    /// Bytes the body needs beyond the header before it can be read (10 §8): a version needs
    /// 4 (16 in all), a sub-channel count 2 (14), properties 24, a WWN block 36. A SCSI
    /// request needs none (it is zero-extended), nor does a body that is not read.
    public static func minimumBodySize(_ kind: BodyKind) -> Int {
        switch kind {
        case .none, .request, .raw: return 0
        case .version: return 4
        case .subChannelCount: return 2
        case .properties: return StorageChannelProperties.wireSize
        case .fibreChannel: return FibreChannelWWN.wireSize
        }
    }

    /// Reads a packet.
    /// - Parameters:
    ///   - payload: the packet's payload (bytes after the VMBus packet header).
    ///   - request: for COMPLETE_IO, the operation of the request it completes (the guest
    ///     looks it up by transaction id); ignored for other operations.
    /// - Throws: ``WireError/truncated(needed:available:)`` when the payload is shorter than
    ///   the header plus ``minimumBodySize(_:)``. Unknown operations are not an error: they
    ///   come back with a ``Body/raw(_:)`` body for the caller to refuse.
    public init(parsing payload: ArraySlice<UInt8>, completing request: StorageOperation? = nil) throws(WireError) {
        var reader = WireReader(payload)
        try reader.require(StorageProtocol.headerSize)
        self.operation = StorageOperation(rawValue: try reader.readUInt32())
        self.flags = StoragePacketFlags(rawValue: try reader.readUInt32())
        self.status = NTStatus(rawValue: try reader.readUInt32())
        let kind = Self.bodyKind(of: self.operation, completing: request)
        try reader.require(Self.minimumBodySize(kind))
        switch kind {
        case .none:
            self.body = .none
        case .version:
            let version = StorageVersion(rawValue: try reader.readUInt16())
            self.body = .version(version, revision: try reader.readUInt16())
        case .properties:
            self.body = .properties(try StorageChannelProperties(from: &reader))
        case .request:
            self.body = .request(SCSIRequest(from: &reader))
        case .subChannelCount:
            self.body = .subChannelCount(try reader.readUInt16())
        case .fibreChannel:
            self.body = .fibreChannel(try FibreChannelWWN(from: &reader))
        case .raw:
            self.body = .raw(Array(reader.readRemaining()))
        }
    }

    /// The payload, zero-padded or cut to `size` bytes (10 §2.1): 64 for versions ≥ 5.1 and
    /// every Linux ≥ 5.19 request, 48 before, or ``StorageProtocol/replySize(forRequestOfSize:)``
    /// for a host echoing its guest. `nil` gives the natural size: the header and the body's
    /// fields, nothing more. A SCSI request is written in its pre-Win8 36-byte form when the
    /// size leaves no room for the extension.
    public func encode(size: Int? = StorageProtocol.packetSize) -> [UInt8] {
        var writer = WireWriter(capacity: max(size ?? 0, StorageProtocol.packetSize))
        writer.writeUInt32(self.operation.rawValue)
        writer.writeUInt32(self.flags.rawValue)
        writer.writeUInt32(self.status.rawValue)
        switch self.body {
        case .none:
            break
        case .version(let version, let revision):
            writer.writeUInt16(version.rawValue)
            writer.writeUInt16(revision)
        case .properties(let properties):
            properties.write(to: &writer)
        case .request(let request):
            let extended = size.map { $0 >= StorageProtocol.packetSize } ?? true
            request.write(to: &writer, win8Extension: extended)
        case .subChannelCount(let count):
            writer.writeUInt16(count)
        case .fibreChannel(let wwn):
            wwn.write(to: &writer)
        case .raw(let bytes):
            writer.writeBytes(bytes)
        }
        guard let size else { return writer.bytes }
        if writer.count < size { writer.writeZeros(size - writer.count) }
        return writer.count > size ? Array(writer.bytes.prefix(max(size, StorageProtocol.headerSize))) : writer.bytes
    }
}
