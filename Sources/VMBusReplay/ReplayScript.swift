import VMBusCapture
import VMBusWire

/// Which side of a captured session a replay plays.
public enum ReplayRole: String, Hashable, Sendable, CaseIterable {
    /// Sends what the captured guest sent; the live host's answers are compared.
    case guest
    /// Sends what the captured host sent; the live guest's messages are compared.
    case host
}

/// One thing that crossed the bus, as a replay sees it.
public enum ReplayItem: Hashable, Sendable {
    /// A substrate frame other than MESSAGE (spec 09): its kind and whole datagram.
    case frame(kind: UInt16, bytes: [UInt8])
    /// A channel message (spec 04), its 8-byte header included; `port` the connection id
    /// the guest posted to (0 when the capture does not know it).
    case message(port: UInt32, bytes: [UInt8])
    /// A ring packet, descriptor to padding, on channel `relid`.
    case packet(relid: UInt32, bytes: [UInt8])
    /// Bytes a device placed in a buffer a packet points at (``CaptureRecordKind/bufferData``).
    case buffer(relid: UInt32, gpadl: UInt32, offset: UInt64, bytes: [UInt8])
    /// What an operator asked the host to do to this guest (``CaptureRecordKind/operatorRequest``).
    case operatorRequest(OperatorRequest)

    /// The item with its bytes cut to those of `like` (an answer the capture kept only the
    /// start of).
    public func cut(like captured: ReplayItem) -> ReplayItem {
        switch (self, captured) {
        case (.packet(let relid, let bytes), .packet(_, let kept)): return .packet(relid: relid, bytes: Array(bytes.prefix(kept.count)))
        case (.message(let port, let bytes), .message(_, let kept)): return .message(port: port, bytes: Array(bytes.prefix(kept.count)))
        case (.frame(let kind, let bytes), .frame(_, let kept)): return .frame(kind: kind, bytes: Array(bytes.prefix(kept.count)))
        default: return self
        }
    }

    /// What must be in order with what: the socket carries frames and messages in one order;
    /// each channel's ring is its own.
    public var stream: ReplayStream {
        switch self {
        case .frame, .message, .operatorRequest: return .control
        case .packet(let relid, _), .buffer(let relid, _, _, _): return .channel(relid)
        }
    }
}

/// An ordered stream of a session.
public enum ReplayStream: Hashable, Sendable, CustomStringConvertible {
    case control
    case channel(UInt32)

    public var description: String {
        switch self {
        case .control: return "control"
        case .channel(let relid): return "relid \(relid)"
        }
    }
}

/// One step: send an item, or wait for the live peer's and compare it. `record` is the
/// record's index in the capture file, for reports.
public struct ReplayStep: Hashable, Sendable {
    public enum Action: Hashable, Sendable {
        case send, expect
        /// Ask the live host what the operator asked (the replay stands in for them).
        case operate
    }
    public var action: Action
    public var item: ReplayItem
    public var record: Int
    /// The capture kept only the first bytes of this answer (its snap length): the live
    /// answer is compared that far.
    public var cut = false
}

/// A connection of a capture turned into the steps of one side, in capture order.
public struct ReplayScript: Hashable, Sendable {
    public var connection: UInt32
    public var role: ReplayRole
    public var steps: [ReplayStep]
    /// The guest memory the captured guest announced in its HELLO.
    public var memoryBytes: UInt64

    /// Why a capture cannot be replayed.
    public struct Unreplayable: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// The most guest memory a replay creates (1 TiB; sparse until touched).
    public static let largestMemory: UInt64 = 1 << 40

    /// The connections of `capture` that can be replayed: those whose HELLO is in the file.
    public static func connections(in capture: CaptureFile) -> [UInt32] {
        var seen: [UInt32] = []
        for record in capture.records where record.header.kind == .substrateFrame && record.header.port == 1 {
            if !seen.contains(record.header.connection) { seen.append(record.header.connection) }
        }
        return seen
    }

    /// The steps of `role` on `connection`.
    /// - Throws: ``Unreplayable`` when the connection's start (HELLO) is not in the file —
    ///   a capture started mid-session — or a record this side must send was cut to the snap
    ///   length.
    public init(capture: CaptureFile, connection: UInt32, role: ReplayRole) throws(Unreplayable) {
        self.connection = connection
        self.role = role
        var steps: [ReplayStep] = []
        var memoryBytes: UInt64?
        // Records of the side we play travel in this direction.
        let sent: CaptureDirection = role == .guest ? .guestToHost : .hostToGuest
        // A buffer the host recorded before the packet that lends it is read by the guest
        // after that packet; moved behind it so both views replay alike.
        var heldBuffers: [UInt32: [ReplayStep]] = [:]
        for (index, record) in capture.records.enumerated() where record.header.connection == connection {
            let header = record.header
            let bytes = Array(record.data)
            let item: ReplayItem
            switch header.kind {
            case .substrateFrame:
                guard let kind = UInt16(exactly: header.port) else { continue }
                // The HELLO's memory descriptor did not travel into the file: parse it as if it had.
                if kind == 1, case .hello(_, _, let bytes)? = try? SubstrateFrame.parse(record.data, descriptors: 1) {
                    memoryBytes = bytes
                }
                item = .frame(kind: kind, bytes: bytes)
            case .channelMessage: item = .message(port: header.port, bytes: bytes)
            case .ringPacket: item = .packet(relid: header.relid, bytes: bytes)
            case .bufferData:
                var reader = WireReader(record.data)
                guard let gpadl = try? reader.readUInt32(), (try? reader.readUInt32()) != nil, let offset = try? reader.readUInt64() else {
                    continue
                }
                item = .buffer(relid: header.relid, gpadl: gpadl, offset: offset, bytes: Array(reader.readRemaining()))
            case .operatorRequest:
                guard let request = try? OperatorRequest(parsing: record.data) else { continue }
                item = .operatorRequest(request)
            default:
                continue
            }
            var action: ReplayStep.Action = header.direction == sent ? .send : .expect
            if case .operatorRequest = item { action = .operate }
            if action != .expect, header.flags.contains(.truncated) {
                throw Unreplayable(
                    "record \(index + 1) (\(header.kind) \(header.direction)) was cut to the snap length; capture again with a larger --snaplen")
            }
            let step = ReplayStep(action: action, item: item, record: index, cut: header.flags.contains(.truncated))
            if header.observer == .host, header.direction == .hostToGuest, case .buffer(let relid, _, _, _) = item {
                heldBuffers[relid, default: []].append(step)
                continue
            }
            steps.append(step)
            if case .packet(let relid, _) = item, header.direction == .hostToGuest, let held = heldBuffers.removeValue(forKey: relid) {
                steps += held
            }
        }
        for (_, held) in heldBuffers.sorted(by: { $0.key < $1.key }) { steps += held }
        guard let memoryBytes else {
            throw Unreplayable("connection \(connection) has no HELLO in the capture (it started mid-session): nothing to replay from")
        }
        // The file is input too: a guest memory the replay could actually create.
        guard memoryBytes > 0, memoryBytes <= Self.largestMemory, memoryBytes % UInt64(GpaRange.pageSize) == 0 else {
            throw Unreplayable("connection \(connection)'s HELLO announces \(memoryBytes) bytes of guest memory, not a size a replay can create")
        }
        self.steps = steps
        self.memoryBytes = memoryBytes
    }
}
