import VMBusMemory
import VMBusWire

/// Guest memory as a replay sees it — the replaying guest's own, or a live guest's that the
/// replaying host mapped — and the GPADLs the guest described, so the bytes a capture recorded
/// "at offset N of GPADL G" can be put back (or looked for) where the peer reads (or wrote) them.
struct ReplayMemory: ~Copyable {
    /// The whole guest memory.
    let memory: MappedMemory
    /// Its file, for mapping a GPADL's pages as one range.
    let fileDescriptor: Int32
    /// GPADLs the guest created, as their ranges.
    var gpadls: [UInt32: [GpaRange]] = [:]
    /// GPADLs whose header went out and whose body messages are still coming.
    var pending: [UInt32: GpadlAssembler] = [:]

    init(memory: MappedMemory, fileDescriptor: Int32) {
        self.memory = memory
        self.fileDescriptor = fileDescriptor
    }

    /// A GPADL's pages mapped one after another, as a host maps a ring GPADL.
    func map(_ ranges: [GpaRange]) throws(MemoryError) -> MappedMemory {
        try MappedMemory.mapPages(of: self.fileDescriptor, memorySize: self.memory.size, pfns: ranges.flatMap(\.pfns))
    }

    /// Follows a GPADL message the guest sends.
    mutating func track(_ message: ChannelMessage) {
        switch message {
        case .gpadlHeader(let header):
            guard let assembler = try? GpadlAssembler(header: header, excessWords: .ignore) else { return }
            if assembler.isComplete {
                if let ranges = try? assembler.finish() { self.gpadls[header.gpadl] = ranges }
            } else {
                self.pending[header.gpadl] = assembler
            }
        case .gpadlBody(let body):
            guard var assembler = self.pending[body.gpadl], (try? assembler.append(body)) != nil else { return }
            if assembler.isComplete {
                self.pending[body.gpadl] = nil
                if let ranges = try? assembler.finish() { self.gpadls[body.gpadl] = ranges }
            } else {
                self.pending[body.gpadl] = assembler
            }
        case .gpadlTeardown(let teardown):
            self.gpadls[teardown.gpadl] = nil
        default:
            break
        }
    }

    /// The guest-physical pieces of `count` bytes at `offset` into GPADL `gpadl` (0: `offset`
    /// is itself a guest physical address); `nil` if they are not all inside it.
    func pieces(gpadl: UInt32, offset: UInt64, count: Int) -> [(address: Int, count: Int)]? {
        if gpadl == 0 {
            guard offset <= UInt64(self.memory.size), UInt64(count) <= UInt64(self.memory.size) - offset else { return nil }
            return [(Int(offset), count)]
        }
        guard let ranges = self.gpadls[gpadl] else { return nil }
        let page = UInt64(GpaRange.pageSize)
        var pieces: [(address: Int, count: Int)] = []
        var skip = offset
        var left = UInt64(count)
        for range in ranges where left > 0 {
            let length = UInt64(range.byteCount)
            if skip >= length {
                skip -= length
                continue
            }
            // Within this range: byte `at` of the bytes that start byteOffset into its first page.
            var at = UInt64(range.byteOffset) + skip
            skip = 0
            var inRange = length - (at - UInt64(range.byteOffset))
            while left > 0, inRange > 0 {
                let index = Int(at / page)
                // The peer's page numbers: inside this memory, or nothing is touched.
                guard index < range.pfns.count, range.pfns[index] < UInt64(self.memory.size) / page else { return nil }
                let within = at % page
                let take = min(left, page - within, inRange)
                pieces.append((Int(range.pfns[index] * page + within), Int(take)))
                at += take
                left -= take
                inRange -= take
            }
        }
        return left == 0 ? pieces : nil
    }

    /// Puts `bytes` where the host will read them.
    func write(_ bytes: [UInt8], gpadl: UInt32, offset: UInt64) -> Bool {
        guard let pieces = self.pieces(gpadl: gpadl, offset: offset, count: bytes.count) else { return false }
        var from = 0
        for piece in pieces {
            guard (try? self.memory.write(bytes[from..<(from + piece.count)], at: piece.address)) != nil else { return false }
            from += piece.count
        }
        return true
    }

    /// The `count` bytes at `offset` of GPADL `gpadl`, as the host left them.
    func read(gpadl: UInt32, offset: UInt64, count: Int) -> [UInt8]? {
        guard let pieces = self.pieces(gpadl: gpadl, offset: offset, count: count) else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        for piece in pieces {
            var chunk = [UInt8](repeating: 0, count: piece.count)
            guard (try? self.memory.read(at: piece.address, count: piece.count, into: &chunk)) != nil else { return nil }
            bytes += chunk
        }
        return bytes
    }
}
