import VMBusChannel
import VMBusHost
import VMBusMemory
import VMBusWire

/// A storage controller across a host takeover (docs/SERVICING.md). Quiescing waits until no
/// command runs on a disk thread and every completion is in the guest's ring: then nothing of
/// the controller lives only in this process — the requests the guest wrote meanwhile wait in
/// the rings, where the new process reads them. The saved state is the set-up the guest
/// negotiated and, per LUN, which disk it is: the new process opens its disks from its own
/// arguments, and a takeover onto different disks is refused rather than served.
extension StorvspDevice: ServiceableDevice {
    enum Tag {
        static let stage: UInt16 = 1
        static let version: UInt16 = 2
        static let subChannelsCreated: UInt16 = 3
        static let disk: UInt16 = 4
    }

    enum DiskTag {
        static let lun: UInt16 = 1
        static let identity: UInt16 = 2
        static let sectorSize: UInt16 = 3
        static let sectorCount: UInt16 = 4
        static let readOnly: UInt16 = 5
    }

    public func quiesce(timeout: Duration) async -> Bool {
        // Once per takeover, for at most a disk command's time.
        await pollUntil(timeout: timeout) {
            var idle = true
            for queue in self.state.withLock({ Array($0.queues.values) }) {
                let (owed, inFlight) = queue.pending.withLock { ($0.owed.count, $0.inFlight) }
                guard owed > 0 || inFlight > 0 else { continue }
                idle = false
                // The channel is held, so its interrupt handler does not run: a completion that
                // waited for ring room is sent from here (the run reads no request while held).
                if owed > 0 { queue.runner.kick { self.run(queue) } }
            }
            return idle
        }
    }

    public func resumeAfterQuiesce() {
        let queues = self.state.withLock { Array($0.queues.values) }
        for queue in queues { queue.runner.kick { self.run(queue) } }
    }

    /// Every channel saves the whole set-up, so whichever the new process restores first
    /// finds the controller ready: a sub-channel's command must never meet a set-up not yet
    /// restored.
    public func saveState(relid: UInt32) throws(SavedStateError) -> [UInt8] {
        let (negotiation, disks) = self.state.withLock { ($0.negotiation, $0.disks) }
        var w = StateWriter()
        w.write(Tag.stage, negotiation.stage.code)
        if let version = negotiation.version { w.write(Tag.version, version.rawValue) }
        w.write(Tag.subChannelsCreated, negotiation.subChannelsCreated)
        for lun in disks.keys.sorted() {
            guard let disk = disks[lun], let saved = SavedDisk(disk.backend) else {
                throw SavedStateError("the disk at LUN \(lun) lives only in this process's memory")
            }
            w.nested(Tag.disk) { d in
                d.write(DiskTag.lun, lun)
                d.write(DiskTag.identity, text: saved.identity)
                d.write(DiskTag.sectorSize, UInt32(saved.sectorSize))
                d.write(DiskTag.sectorCount, saved.sectorCount)
                d.write(DiskTag.readOnly, saved.readOnly)
            }
        }
        return w.bytes
    }

    public func restored(_ channel: Channel, info: HostChannelInfo, state saved: [UInt8]) throws(SavedStateError) {
        let r = try StateReader(saved[...])
        guard let stage = StorvspNegotiation.Stage(code: try r.uint8(Tag.stage)) else {
            throw SavedStateError("storage set-up stage \(try r.uint8(Tag.stage))")
        }
        let version = try r.optionalUInt16(Tag.version).map(StorageVersion.init(rawValue:))
        let subChannelsCreated = try r.bool(Tag.subChannelsCreated)
        var savedDisks: [UInt8: SavedDisk] = [:]
        for d in try r.all(Tag.disk) {
            savedDisks[try d.uint8(DiskTag.lun)] = SavedDisk(
                identity: try d.text(DiskTag.identity), sectorSize: Int(try d.uint32(DiskTag.sectorSize)),
                sectorCount: try d.uint64(DiskTag.sectorCount), readOnly: try d.bool(DiskTag.readOnly))
        }
        try self.state.withLock { (state: inout State) throws(SavedStateError) in
            let luns = state.disks.keys.sorted()
            guard luns == savedDisks.keys.sorted() else {
                throw SavedStateError("the guest knows disks at LUNs \(savedDisks.keys.sorted()), this host has \(luns)")
            }
            for lun in luns {
                guard let saved = savedDisks[lun], let disk = state.disks[lun]?.backend, SavedDisk(disk) != saved else { continue }
                throw SavedStateError(
                    "LUN \(lun) is not the disk the guest knows (\(saved.identity), \(saved.sectorCount) × \(saved.sectorSize) bytes\(saved.readOnly ? ", read-only" : ""))")
            }
            // The first channel restored brings the set-up; the others carry the same.
            guard state.queues.isEmpty else { return }
            state.negotiation = try StorvspNegotiation(
                restoring: stage, version: version, subChannelsCreated: subChannelsCreated,
                acceptedVersions: self.configuration.acceptedVersions, maximumSubChannels: self.configuration.maximumSubChannels,
                maximumTransferBytes: self.configuration.maximumTransferBytes)
        }
        self.opened(channel, info: info)
    }
}

/// What names a disk across processes, as saved for its LUN: a restored controller serves the
/// guest only the disks it knew.
struct SavedDisk: Equatable {
    var identity: String
    var sectorSize: Int
    var sectorCount: UInt64
    var readOnly: Bool

    init(identity: String, sectorSize: Int, sectorCount: UInt64, readOnly: Bool) {
        self.identity = identity
        self.sectorSize = sectorSize
        self.sectorCount = sectorCount
        self.readOnly = readOnly
    }

    /// `nil` for a disk whose contents live only in this process (a memory disk).
    init?(_ backend: any DiskBackend) {
        guard let identity = backend.persistentIdentity else { return nil }
        self.init(identity: identity, sectorSize: backend.sectorSize, sectorCount: backend.sectorCount, readOnly: backend.isReadOnly)
    }
}

extension StorvspNegotiation.Stage {
    /// The stage's number in saved state.
    var code: UInt8 {
        switch self {
        case .awaitingBegin: return 0
        case .awaitingVersion: return 1
        case .awaitingProperties: return 2
        case .awaitingEnd: return 3
        case .ready: return 4
        }
    }

    init?(code: UInt8) {
        switch code {
        case 0: self = .awaitingBegin
        case 1: self = .awaitingVersion
        case 2: self = .awaitingProperties
        case 3: self = .awaitingEnd
        case 4: self = .ready
        default: return nil
        }
    }
}

extension StorvspNegotiation {
    /// A set-up as a saved state left it.
    /// - Throws: ``SavedStateError`` for a stage that needs a version it lacks, or a version
    ///   this host does not accept.
    init(
        restoring stage: Stage, version: StorageVersion?, subChannelsCreated: Bool, acceptedVersions: [StorageVersion],
        maximumSubChannels: UInt16, maximumTransferBytes: UInt32
    ) throws(SavedStateError) {
        self.init(acceptedVersions: acceptedVersions, maximumSubChannels: maximumSubChannels, maximumTransferBytes: maximumTransferBytes)
        let needsVersion = stage == .awaitingProperties || stage == .awaitingEnd || stage == .ready
        guard needsVersion == (version != nil) else { throw SavedStateError("storage set-up at \(stage) with version \(String(describing: version))") }
        if let version, !acceptedVersions.contains(version) {
            throw SavedStateError("storage protocol \(version) is not accepted by this host")
        }
        self.stage = stage
        self.version = version
        self.subChannelsCreated = subChannelsCreated
    }
}
