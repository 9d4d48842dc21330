import VMBusWire

/// Where the live peer's answer differs from the capture.
public struct ReplayDifference: Hashable, Sendable, CustomStringConvertible {
    /// The capture's connection.
    public var connection: UInt32
    /// The record (1-based, as tshark numbers them) the answer was compared with.
    public var record: Int
    public var stream: ReplayStream
    /// What the capture has, and what came instead (`nil`: nothing came in time).
    public var expected: String
    public var got: String?

    public var description: String {
        "connection \(self.connection) record \(self.record) (\(self.stream)): expected \(self.expected), "
            + (self.got.map { "got \($0)" } ?? "nothing came")
    }
}

/// How a live item is compared with a captured one. Exact, except for what the peer is free
/// to choose differently from one session to the next:
/// - the transaction id of a packet the peer starts (not a completion): the live id is
///   remembered, and our completions of it carry the live id;
/// - the byte offsets of transfer-page ranges (which receive slot a NIC lends): remembered,
///   so the bytes lent there are compared where they now are.
/// - the body of a heartbeat or time-sync message (a sequence number, the host's clock),
///   which the host sends on a timer: its IC header is compared, its body not.
struct ReplayComparison {
    /// Captured transaction ids of the peer's requests → live ones.
    var transactions: [UInt64: UInt64] = [:]
    /// Per channel: captured transfer-page range offsets → live ones, from the last packet.
    var lent: [UInt32: [UInt64: UInt64]] = [:]
    /// Channels of a timer-driven integration service (heartbeat, time sync), from the offers.
    var timed: Set<UInt32> = []
    /// The guest's GPADL handles, captured → live (a replaying host learns them: a guest that
    /// creates GPADLs from several tasks at once numbers them in whichever order they run).
    var gpadls: [UInt32: UInt32] = [:]
    /// Per timed channel, the last request matched: its body as captured and as live.
    var timedRequest: [UInt32: (captured: [UInt8], live: [UInt8])] = [:]

    /// Learns which channels are timer-driven from an offer the capture has.
    mutating func learn(offer bytes: [UInt8], version: VMBusVersion?) {
        guard case .offerChannel(let offer)? = try? ChannelMessage.parse(bytes[...], version: version, features: [], trailingBytes: .ignore)
        else { return }
        if offer.interfaceType == DeviceClass.heartbeat.classID || offer.interfaceType == DeviceClass.timeSync.classID {
            self.timed.insert(offer.childRelID)
        }
    }

    /// Whether `live` answers as `captured` did on `relid`; learns the peer's choices.
    mutating func packetMatches(_ captured: [UInt8], _ live: [UInt8], relid: UInt32) -> Bool {
        guard captured.count == live.count, captured.count >= 16 else { return captured == live }
        var reader = WireReader(captured[...])
        guard let descriptor = try? PacketDescriptor(from: &reader) else { return captured == live }
        // Type, offset, length and flags exactly.
        guard captured[0..<8] == live[0..<8] else { return false }
        let payload = min(captured.count, descriptor.payloadOffset)
        var ignored: [Range<Int>] = []
        if descriptor.type != .completion {
            ignored.append(8..<16)
        }
        // A heartbeat or time sample: the pipe header (8 bytes) and the IC header (20) up to
        // its message type must match; the rest is the timer's.
        let icType = descriptor.payloadOffset + 8 + 4
        var timedBody: Int?
        if self.timed.contains(relid), descriptor.type == .dataInBand, captured.count >= icType + 2 {
            let type = UInt16(captured[icType]) | UInt16(captured[icType + 1]) << 8
            if type == 1 || type == 4, captured.count > descriptor.payloadOffset + 28 {
                timedBody = descriptor.payloadOffset + 28
                ignored.append((descriptor.payloadOffset + 28)..<captured.count)
            }
        }
        var offsets: [UInt64: UInt64] = [:]
        if descriptor.type == .dataUsingTransferPages, payload >= TransferPagePacket.headerSize {
            let count = Int(Self.word(captured, 20))
            for index in 0..<count {
                let at = TransferPagePacket.headerSize + index * TransferPageRange.wireSize
                guard at + TransferPageRange.wireSize <= payload else { break }
                ignored.append((at + 4)..<(at + 8))
                offsets[UInt64(Self.word(captured, at + 4))] = UInt64(Self.word(live, at + 4))
            }
        }
        for index in captured.indices where captured[index] != live[index] {
            if !ignored.contains(where: { $0.contains(index) }) { return false }
        }
        if descriptor.type != .completion {
            self.transactions[descriptor.transactionID] = Self.word64(live, 8)
        }
        if !offsets.isEmpty { self.lent[relid] = offsets }
        if let timedBody { self.timedRequest[relid] = (Array(captured[timedBody...]), Array(live[timedBody...])) }
        return true
    }

    /// Whether the guest's live message says what the captured one said, the GPADL handles
    /// it chooses and the pages it puts a GPADL on aside (learnt, for the host's answers).
    mutating func messageMatches(_ captured: [UInt8], _ live: [UInt8]) -> Bool {
        guard captured.count == live.count, captured.count >= 16, captured[0..<4] == live[0..<4] else { return captured == live }
        var ignored: [Range<Int>] = []
        var learnt: (UInt32, UInt32)?
        func handle(at offset: Int) -> Bool {
            guard captured.count >= offset + 4 else { return false }
            let (old, new) = (Self.word(captured, offset), Self.word(live, offset))
            // A handle seen before must map the same way.
            if let known = self.gpadls[old], known != new { return false }
            learnt = (old, new)
            ignored.append(offset..<(offset + 4))
            return true
        }
        switch Self.word(captured, 0) {
        case ChannelMessageType.gpadlHeader.rawValue:
            // relid, gpadl, range bytes, range count, then each range's byte count and offset
            // (compared) and its PFNs (the guest's choice).
            guard handle(at: 12) else { return false }
            if captured.count > 28 { ignored.append(28..<captured.count) }
        case ChannelMessageType.gpadlBody.rawValue:
            // message number, gpadl, PFNs.
            guard handle(at: 12) else { return false }
            ignored.append(16..<captured.count)
        case ChannelMessageType.openChannel.rawValue:
            guard captured.count >= 20, self.gpadls[Self.word(captured, 16)] == Self.word(live, 16) else { return false }
            ignored.append(16..<20)
        case ChannelMessageType.gpadlTeardown.rawValue:
            guard self.gpadls[Self.word(captured, 12)] == Self.word(live, 12) else { return false }
            ignored.append(12..<16)
        default:
            return captured == live
        }
        for index in captured.indices where captured[index] != live[index] {
            if !ignored.contains(where: { $0.contains(index) }) { return false }
        }
        if let (old, new) = learnt { self.gpadls[old] = new }
        return true
    }

    /// A message of ours (the host's) naming one of the guest's GPADLs names its live handle.
    func rewritten(message: [UInt8]) -> [UInt8] {
        guard message.count >= 16 else { return message }
        let at: Int
        switch Self.word(message, 0) {
        case ChannelMessageType.gpadlCreated.rawValue: at = 12
        case ChannelMessageType.gpadlTorndown.rawValue: at = 8
        default: return message
        }
        guard let live = self.gpadls[Self.word(message, at)] else { return message }
        var copy = message
        for i in 0..<4 { copy[at + i] = UInt8(truncatingIfNeeded: live >> (8 * UInt32(i))) }
        return copy
    }

    /// The live handle of a GPADL the capture names (itself if not learnt).
    func liveGpadl(_ captured: UInt32) -> UInt32 { self.gpadls[captured] ?? captured }

    /// A packet of ours to send on `relid`: a completion of the peer's request carries its live
    /// id; an answer to a timed request is made from the live request as the captured one was
    /// made from the captured request (a heartbeat's sequence number plus one).
    func rewritten(_ packet: [UInt8], relid: UInt32) -> [UInt8] {
        var copy = packet
        if packet.count >= 16, packet[0] == UInt8(PacketType.completion.rawValue & 0xFF), packet[1] == 0,
            let live = self.transactions[Self.word64(packet, 8)]
        {
            for i in 0..<8 { copy[8 + i] = UInt8(truncatingIfNeeded: live >> (8 * UInt64(i))) }
        }
        var reader = WireReader(packet[...])
        if let request = self.timedRequest[relid], let descriptor = try? PacketDescriptor(from: &reader) {
            let body = descriptor.payloadOffset + 28
            let answer = packet.count > body ? Array(packet[body...]) : []
            // Only an answer that repeats its request beyond a first 64-bit counter.
            if answer.count == request.captured.count, answer.count >= 8, answer.dropFirst(8) == request.captured.dropFirst(8) {
                let step = Self.word64(answer, 0) &- Self.word64(request.captured, 0)
                var made = request.live
                let counter = Self.word64(request.live, 0) &+ step
                for i in 0..<8 { made[i] = UInt8(truncatingIfNeeded: counter >> (8 * UInt64(i))) }
                copy.replaceSubrange(body..<packet.count, with: made)
            }
        }
        return copy
    }

    /// Where the bytes the capture found at `offset` of a buffer on `relid` are now.
    func liveOffset(_ offset: UInt64, relid: UInt32) -> UInt64 {
        self.lent[relid]?[offset] ?? offset
    }

    static func word(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) }
    }

    static func word64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) }
    }

    /// Whether `live` is the peer's answer to what `expected` answered, even if it differs:
    /// on a channel, any packet (its ring has one order); on the socket, a frame of the same
    /// kind or a message of the same type about the same channel (the first field of every
    /// message that names one, but an offer's).
    static func answersTheSame(_ expected: ReplayItem, _ live: ReplayItem) -> Bool {
        switch (expected, live) {
        case (.packet, .packet): return true
        case (.frame(let kind, let a), .frame(let other, let b)):
            return kind == other && a.dropFirst(8).prefix(4).elementsEqual(b.dropFirst(8).prefix(4))
        case (.message(_, let a), .message(_, let b)):
            guard a.count >= 4, b.count >= 4, a.prefix(4) == b.prefix(4) else { return false }
            if a.prefix(4).elementsEqual([1, 0, 0, 0]) { return true }
            return a.dropFirst(8).prefix(4).elementsEqual(b.dropFirst(8).prefix(4))
        default:
            return false
        }
    }

    /// A short description of an item for reports.
    static func describe(_ item: ReplayItem) -> String {
        switch item {
        case .frame(let kind, let bytes): return "frame \(Self.frameNames[Int(kind)] ?? "kind \(kind)") \(Self.hex(bytes.dropFirst(8).prefix(16)))"
        case .message(_, let bytes):
            guard bytes.count >= 4 else { return "a message of \(bytes.count) bytes" }
            let type = ChannelMessageType(rawValue: word(bytes, 0))
            return "\(type.name) \(Self.hex(bytes.dropFirst(8).prefix(24)))\(bytes.count > 32 ? "…" : "") (\(bytes.count) bytes)"
        case .packet(_, let bytes):
            var reader = WireReader(bytes[...])
            guard let descriptor = try? PacketDescriptor(from: &reader) else { return "a packet of \(bytes.count) bytes" }
            return "packet type 0x\(String(descriptor.type.rawValue, radix: 16)) len \(descriptor.totalLength) tid \(descriptor.transactionID)"
                + " payload \(Self.hex(bytes.dropFirst(descriptor.payloadOffset).prefix(24)))"
        case .buffer(_, let gpadl, let offset, let bytes):
            return "\(bytes.count) buffer bytes at gpadl \(gpadl) +\(offset): \(Self.hex(bytes.prefix(24)))"
        case .operatorRequest(let request): return "operator: \(([request.command] + request.parameters).joined(separator: " "))"
        }
    }

    static let frameNames = [1: "HELLO", 2: "WELCOME", 3: "REFUSE", 4: "MESSAGE", 5: "DOORBELLS", 6: "GOODBYE"]

    static func hex(_ bytes: some Collection<UInt8>) -> String {
        bytes.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }
}
