import VMBusChannel
import VMBusMemory
import VMBusWire

extension StorvscController {
    /// Sends one SCSI command to `lun` and waits for its completion (10 §4).
    /// - Parameters:
    ///   - data: what a write sends (its length is the transfer).
    ///   - readCount: bytes a read asks for.
    /// - Returns: the outcome, and for a read the bytes that came (at most `readCount`).
    func command(
        lun: UInt8, cdb: [UInt8], direction: SCSIDataDirection, data: ArraySlice<UInt8> = [], readCount: Int = 0
    ) async throws(BlockDeviceError) -> (SCSIOutcome, [UInt8]) {
        let length = direction == .write ? data.count : direction == .read ? readCount : 0
        guard length <= self.maximumTransferBytes else {
            throw BlockDeviceError.invalidLength(bytes: length, sectorSize: 1)
        }
        guard let slot = await self.slots.acquire() else { throw BlockDeviceError.closed("the controller shut down") }
        defer { self.slots.release(slot) }
        let start = ContinuousClock.now
        do {
            if direction == .write, !data.isEmpty { try self.slots.memory.write(data, at: slot.offset) }
        } catch {
            throw BlockDeviceError.failed("guest memory: \(error)")
        }
        let request = SCSIRequest.request(cdb: cdb, direction: direction, transferLength: UInt32(length), lun: lun)
        let payload = StoragePacket.request(.executeSRB, body: .request(request)).encode()
        guard let channel = self.nextChannel() else { throw BlockDeviceError.closed("the controller shut down") }
        let answer: [UInt8]
        do {
            if length > 0 {
                let range = try self.slots.range(slot, bytes: length)
                answer = try await channel.request(gpaDirect: [range], payload: payload[...], form: .mpb)
            } else {
                answer = try await channel.request(payload[...])
            }
        } catch let error as ChannelError {
            throw BlockDeviceError.closed("channel: \(error)")
        } catch {
            throw BlockDeviceError.failed("\(error)")
        }
        let outcome = try Self.outcome(answer, requested: length)
        var bytes: [UInt8] = []
        if direction == .read, outcome.transferred > 0 {
            bytes = [UInt8](repeating: 0, count: outcome.transferred)
            do { try self.slots.memory.read(at: slot.offset, count: outcome.transferred, into: &bytes) } catch {
                throw BlockDeviceError.failed("guest memory: \(error)")
            }
        }
        let nanoseconds = LatencyHistogram.nanoseconds(since: start)
        self.state.withLock { state in
            state.statistics.requests += 1
            if direction == .read, outcome.transferred > 0 {
                state.statistics.reads += 1
                state.statistics.bytesRead += UInt64(outcome.transferred)
            }
            if direction == .write, outcome.transferred > 0 {
                state.statistics.writes += 1
                state.statistics.bytesWritten += UInt64(outcome.transferred)
            }
            if !outcome.isGood { state.statistics.failed += 1 }
            state.statistics.latency.record(nanoseconds: nanoseconds)
        }
        return (outcome, bytes)
    }

    /// Reads a completion as Linux does (10 §4.4, §8): 64 bytes, COMPLETE_IO; sense only with
    /// CHECK CONDITION and AUTOSENSE_VALID, at most 20 bytes; bytes moved only on SUCCESS or
    /// DATA_OVERRUN, clamped to the buffer.
    static func outcome(_ answer: [UInt8], requested: Int) throws(BlockDeviceError) -> SCSIOutcome {
        guard answer.count >= StorageProtocol.packetSize else { throw BlockDeviceError.failed("a \(answer.count)-byte completion") }
        guard let packet = try? StoragePacket(parsing: answer[...], completing: .executeSRB), packet.operation == .completeIO,
            case .request(let request) = packet.body
        else { throw BlockDeviceError.failed("malformed completion") }
        var outcome = SCSIOutcome(srbStatus: request.srbStatus, scsiStatus: request.scsiStatus)
        if request.scsiStatus == .checkCondition, request.srbStatus.isAutosenseValid {
            outcome.sense = try? FixedSenseData(parsing: request.senseData)
        }
        let code = request.srbStatus.code
        if code == .success || code == .dataOverrun {
            outcome.transferred = min(Int(request.dataTransferLength), requested)
        }
        return outcome
    }

    // MARK: Scanning (10 §6.1)

    /// Finds the disks: REPORT LUNS on path 0 / target 0, then for each new LUN INQUIRY, READ
    /// CAPACITY(16) and MODE SENSE for write protection. LUNs no longer listed are gone.
    public func scan() async throws(BlockDeviceError) {
        let (report, listing) = try await self.command(
            lun: 0, cdb: SCSICommand.reportLUNs(selectReport: 0, allocationLength: 4096).encode(), direction: .read, readCount: 4096)
        guard report.isGood, let luns = try? ReportLUNsData(parsing: listing[...]) else {
            throw BlockDeviceError.failed("REPORT LUNS: \(Self.describe(report))")
        }
        let listed = Set(luns.entries.map { ReportLUNsData.lun(ofEntry: $0) }.filter { $0 < 256 }.map { UInt8($0) })
        let known = self.state.withLock { Set($0.disks.keys) }
        var found: [UInt8: StorvscDisk] = [:]
        for lun in listed.subtracting(known).sorted() {
            if let disk = try await self.probe(lun: lun) { found[lun] = disk }
        }
        let gone: [StorvscDisk] = self.state.withLock { state in
            let gone = state.disks.filter { !listed.contains($0.key) }
            for lun in gone.keys { state.disks.removeValue(forKey: lun) }
            state.disks.merge(found) { old, _ in old }
            return Array(gone.values)
        }
        for disk in gone { disk.markGone("the host removed LUN \(disk.lun)") }
        if !found.isEmpty || !gone.isEmpty {
            self.changed(self)
            self.changes.wake()
        }
    }

    /// One LUN: a direct-access disk that is there (qualifier 0, type 0), its capacity and
    /// write protection; `nil` for anything else.
    func probe(lun: UInt8) async throws(BlockDeviceError) -> StorvscDisk? {
        let inquiry = SCSICommand.inquiry(vitalProductData: false, commandSupportData: false, pageCode: 0, allocationLength: 36)
        let (asked, standard) = try await self.command(lun: lun, cdb: inquiry.encode(), direction: .read, readCount: 36)
        guard asked.isGood, let data = try? InquiryData(parsing: standard[...]), data.peripheralQualifier == 0,
            data.deviceType == .directAccess
        else { return nil }
        let (capacity, bytes) = try await self.command(
            lun: lun, cdb: SCSICommand.readCapacity16(allocationLength: 32).encode(), direction: .read, readCount: 32)
        guard capacity.isGood, let geometry = try? ReadCapacity16Data(parsing: bytes[...]) else {
            throw BlockDeviceError.failed("READ CAPACITY(16) of LUN \(lun): \(Self.describe(capacity))")
        }
        let sectorSize = Int(geometry.blockLength)
        guard [512, 1024, 2048, 4096].contains(sectorSize), geometry.lastLBA < UInt64.max else {
            throw BlockDeviceError.failed("LUN \(lun) reports \(sectorSize)-byte sectors")
        }
        let sense = SCSIModeSense(form: .six, pageCode: SCSIModeSense.allPages, allocationLength: 4)
        let (mode, header) = try await self.command(lun: lun, cdb: SCSICommand.modeSense(sense).encode(), direction: .read, readCount: 4)
        let writeProtected = mode.isGood && header.count >= 3 && header[2] & ModeParameterHeader.writeProtectFlag != 0
        let fua = mode.isGood && header.count >= 3 && header[2] & ModeParameterHeader.dpoFUAFlag != 0
        return StorvscDisk(
            controller: self, lun: lun, sectorSize: sectorSize, sectorCount: geometry.lastLBA + 1, readOnly: writeProtected,
            discard: geometry.provisioningManagementEnabled && !writeProtected, fua: fua)
    }

    /// A failed command in words: its SRB status and sense.
    static func describe(_ outcome: SCSIOutcome) -> String {
        var text = "SRB status \(outcome.srbStatus), SCSI status 0x\(String(outcome.scsiStatus.rawValue, radix: 16))"
        if let sense = outcome.sense {
            text += ", sense \(String(sense.senseKey.rawValue, radix: 16))/\(sense.additionalSense)"
        }
        return text
    }
}
