import VMBusChannel
import VMBusHost
import VMBusMemory
import VMBusWire

extension StorvspDevice {
    /// One EXECUTE_SRB: its data buffer checked (10 §4.3, §8), then answered by the controller
    /// (REPORT LUNS, absent LUNs) or the disk — at once for commands that do not block, on a
    /// disk worker otherwise.
    func execute(_ request: SCSIRequest, ranges: [GpaRange], id: UInt64, replySize: Int, queue: StorvspQueue) -> Accepted {
        let start = ContinuousClock.now
        let length = Int(request.dataTransferLength)
        guard ranges.count <= 1 else { return .fatal("EXECUTE_SRB with \(ranges.count) data ranges") }
        if length > 0 {
            guard let range = ranges.first else { return .fatal("data_transfer_length \(length) with no data buffer") }
            guard Int(range.byteCount) >= length else {
                return .fatal("data_transfer_length \(length) beyond its \(range.byteCount)-byte buffer")
            }
        }
        let (bus, disk, luns) = self.state.withLock { state in
            (state.bus, request.pathID == 0 && request.targetID == 0 ? state.disks[request.lun] : nil, state.disks.keys.sorted())
        }
        func reply(_ outcome: SCSIOutcome, _ counted: Counted = Counted()) -> Accepted {
            var counted = counted
            counted.isIO = true
            counted.failed = !outcome.isGood
            counted.nanoseconds = LatencyHistogram.nanoseconds(since: start)
            return .reply(id: id, bytes: Self.completion(outcome, replySize: replySize), counts: counted)
        }
        var buffer: MemoryExtents?
        if length > 0, let range = ranges.first {
            // Pages outside guest memory: the command fails, the channel lives (10 §8).
            guard let bus, let extents = try? bus.guestExtents(range) else { return reply(.illegal(.invalidFieldInCDB)) }
            buffer = extents.prefix(length)
        }
        // All 16 bytes, whatever cdb_length says (as OpenVMM).
        guard let command = try? SCSICommand(parsing: request.commandOrSense.prefix(SCSIRequest.maximumCDBLength)) else {
            return reply(.illegal(.invalidCommandOperationCode))
        }
        if case .reportLUNs(_, let allocation) = command {
            let list = request.pathID == 0 && request.targetID == 0 ? luns : []
            return reply(Self.reportLUNs(list, allocation: Int(allocation), direction: request.dataDirection, buffer: buffer))
        }
        guard let disk else { return reply(Self.absentLUN(command, lun: request.lun, direction: request.dataDirection, buffer: buffer)) }
        let direction = request.dataDirection
        // Whatever can finish without blocking is answered on the handler: memory disks, and
        // file data already in the page cache (RWF_NOWAIT) — no thread hand-off, no wake-up.
        if let outcome = disk.executeIfReady(command, direction: direction, buffer: buffer) {
            return reply(outcome, Self.counted(command, outcome))
        }
        queue.started()
        self.workers.run { [self, buffer] in
            let outcome = disk.execute(command, direction: direction, buffer: buffer)
            var counted = Self.counted(command, outcome)
            counted.isIO = true
            counted.failed = !outcome.isGood
            counted.nanoseconds = LatencyHistogram.nanoseconds(since: start)
            queue.finished(id: id, bytes: Self.completion(outcome, replySize: replySize)) { counted.apply(to: &$0) }
            queue.runner.kick { self.run(queue) }
        }
        return .started
    }

    static func counted(_ command: SCSICommand, _ outcome: SCSIOutcome) -> Counted {
        var counted = Counted()
        switch command {
        case .read: counted.read = outcome.transferred
        case .write: counted.written = outcome.transferred
        case .synchronizeCache: counted.flush = true
        case .unmap: counted.discard = true
        default: break
        }
        return counted
    }

    /// The completion packet: COMPLETE_IO, the NTSTATUS OpenVMM derives from the SRB status,
    /// the request's completion fields, sized like the request (10 §2.1, §4.4).
    static func completion(_ outcome: SCSIOutcome, replySize: Int) -> [UInt8] {
        let request = SCSIRequest.completion(
            srbStatus: outcome.srbStatus, scsiStatus: outcome.scsiStatus, transferred: UInt32(clamping: outcome.transferred),
            sense: outcome.sense?.encode() ?? [])
        return StoragePacket.completion(status: NTStatus(completing: outcome.srbStatus), body: .request(request)).encode(size: replySize)
    }

    /// REPORT LUNS (10 §6.3): the LUNs with a disk, sorted; a buffer under 8 bytes gets
    /// nothing, with GOOD.
    static func reportLUNs(_ luns: [UInt8], allocation: Int, direction: SCSIDataDirection, buffer: MemoryExtents?) -> SCSIOutcome {
        guard allocation >= 8, (buffer?.byteCount ?? 0) >= 8 else { return .good() }
        return SCSIDisk.answer(ReportLUNsData(luns: luns).encode(), allocation: allocation, direction: direction, buffer: buffer)
    }

    /// A LUN with no disk (10 §6.3): standard INQUIRY answers "no device here" (0x7F); VPD, a
    /// buffer shorter than the allocation, no data in, or an allocation under 5 ⇒ 5/24; any
    /// other command ⇒ INVALID_LUN, which makes Linux forget the LUN.
    static func absentLUN(_ command: SCSICommand, lun: UInt8, direction: SCSIDataDirection, buffer: MemoryExtents?) -> SCSIOutcome {
        guard case .inquiry(let evpd, let cmdDt, _, let allocation) = command else { return .invalidLUN }
        guard !evpd, !cmdDt, direction == .read, allocation >= 5, let buffer, buffer.byteCount >= Int(allocation) else {
            return .illegal(.invalidFieldInCDB)
        }
        let data = lun == 0 ? InquiryData.noDevice(vendor: "Msft", product: "Virtual Disk", revision: "1.0") : InquiryData.noDevice()
        return SCSIDisk.answer(data.encode(), allocation: Int(allocation), direction: direction, buffer: buffer)
    }
}
