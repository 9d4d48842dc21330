import Foundation
import VMBusCapture
import VMBusNetwork
import VMBusWire

/// Turns capture records into one-line descriptions with the repository's own parsers
/// (``ChannelMessage``, ``PacketDescriptor``, ``SubstrateFrame``). Messages are parsed at the
/// version each connection negotiated, followed through its InitiateContact and VersionResponse,
/// as the bus itself parsed them.
struct CaptureDecoder {
    var requested: [UInt32: VMBusVersion] = [:]
    var negotiated: [UInt32: (VMBusVersion, FeatureFlags)] = [:]

    /// What the record is, without its time or addressing.
    mutating func describe(_ record: CaptureFile.Record) -> String {
        let data = record.data
        let cut = record.header.flags.contains(.truncated) ? " [cut at \(data.count) of \(record.header.originalLength)]" : ""
        switch record.header.kind {
        case .channelMessage: return self.message(record) + cut
        case .ringPacket: return Self.packet(data) + cut
        case .substrateFrame: return Self.frame(data, kind: record.header.port) + cut
        case .doorbell: return "DOORBELL"
        case .channelOpen:
            let words = Self.words(data)
            guard words.count == 2 else { return "OPEN (malformed)" }
            return "OPEN rings: outgoing \(words[0]) bytes, incoming \(words[1]) bytes"
        case .channelClose:
            guard let reason = Self.words(data).first else { return "CLOSE (malformed)" }
            return "CLOSE \(CaptureCloseReason(rawValue: reason))"
        case .drops:
            var reader = WireReader(data)
            guard let lost = try? reader.readUInt64(), let total = try? reader.readUInt64() else { return "DROPS (malformed)" }
            return "DROPS \(lost) record(s) lost (\(total) on this connection so far)"
        case .bufferData: return Self.buffer(data) + cut
        default:
            return "record kind \(record.header.kind.rawValue), \(data.count) bytes"
        }
    }

    /// The message type's name, the parsed message's fields on one line.
    mutating func message(_ record: CaptureFile.Record) -> String {
        let data = record.data
        var reader = WireReader(data)
        guard let raw = try? reader.readUInt32() else { return "MESSAGE (shorter than its type)" }
        let type = ChannelMessageType(rawValue: raw)
        let connection = record.header.connection
        let (version, features) = self.negotiated[connection] ?? (self.requested[connection], [])
        let message: ChannelMessage
        do {
            message = try ChannelMessage.parse(data, version: version, features: features, trailingBytes: .ignore)
        } catch {
            return "\(type.name) (not decoded: \(error))"
        }
        switch message {
        case .initiateContact(let contact): self.requested[connection] = contact.versionRequested
        case .versionResponse(let response) where response.versionSupported:
            if let requested = self.requested[connection] {
                self.negotiated[connection] = (requested, response.supportedFeatures ?? [])
            }
        case .unloadResponse: self.negotiated[connection] = nil
        default: break
        }
        let fields = oneLine(message)
        return fields.isEmpty ? type.name : "\(type.name) \(fields)"
    }

    /// A buffer-data record: where the bytes lie, and the RNDIS message they hold (a NIC's
    /// are the only buffers recorded), with a PACKET's Ethernet addresses and type.
    static func buffer(_ data: ArraySlice<UInt8>) -> String {
        var reader = WireReader(data)
        guard let gpadl = try? reader.readUInt32(), (try? reader.readUInt32()) != nil, let offset = try? reader.readUInt64() else {
            return "BUFFER (shorter than its header)"
        }
        let bytes = reader.readRemaining()
        var text = gpadl == 0 ? "BUFFER gpa 0x\(String(offset, radix: 16))" : "BUFFER gpadl \(gpadl) +\(offset)"
        text += " \(bytes.count) bytes"
        var words = WireReader(bytes)
        guard let type = try? words.readUInt32(), let length = try? words.readUInt32() else { return text }
        text += " RNDIS \(RNDISMessageType(rawValue: type)) msg_len \(length)"
        if let header = try? RNDISPacketHeader(parsing: bytes) {
            let frame = bytes.dropFirst(header.frameOffset).prefix(header.frameLength)
            text += " frame \(header.frameLength) bytes"
            if frame.count >= 14 {
                func mac(_ at: Int) -> String { MACAddress(Array(frame.dropFirst(at).prefix(6))).description }
                let etherType = UInt16(frame[frame.startIndex + 12]) << 8 | UInt16(frame[frame.startIndex + 13])
                text += " \(mac(6)) → \(mac(0)) type 0x\(String(etherType, radix: 16))"
            }
        }
        return text
    }

    static func packet(_ data: ArraySlice<UInt8>) -> String {
        var reader = WireReader(data)
        guard let descriptor = try? PacketDescriptor(from: &reader) else { return "PACKET (shorter than its descriptor)" }
        var text = "PACKET \(Self.name(descriptor.type)) len \(descriptor.totalLength) payload \(descriptor.payloadLength)"
            + " tid \(descriptor.transactionID)"
        if descriptor.flags.contains(.completionRequested) { text += " completion-requested" }
        return text
    }

    static func name(_ type: PacketType) -> String {
        switch type {
        case .dataInBand: return "in-band"
        case .dataUsingTransferPages: return "transfer-pages"
        case .dataUsingGpaDirect: return "gpa-direct"
        case .completion: return "completion"
        default: return "type 0x\(String(type.rawValue, radix: 16))"
        }
    }

    static func frame(_ data: ArraySlice<UInt8>, kind: UInt32) -> String {
        let kind = SubstrateFrameKind(rawValue: UInt16(truncatingIfNeeded: kind))
        let names: [SubstrateFrameKind: String] = [
            .hello: "HELLO", .welcome: "WELCOME", .refuse: "REFUSE", .message: "MESSAGE", .doorbells: "DOORBELLS",
            .goodbye: "GOODBYE",
        ]
        let name = "FRAME " + (names[kind] ?? "kind \(kind.rawValue)")
        // The descriptors that travelled beside the frame are not in the capture; say how many it had.
        let descriptors = kind == .hello ? 1 : kind == .doorbells ? 2 : 0
        guard let frame = try? SubstrateFrame.parse(data, descriptors: descriptors) else { return name + " (not decoded)" }
        let fields = oneLine(frame)
        return fields.isEmpty ? name : "\(name) \(fields)"
    }

    static func words(_ data: ArraySlice<UInt8>) -> [UInt32] {
        var reader = WireReader(data)
        var words: [UInt32] = []
        while let word = try? reader.readUInt32() { words.append(word) }
        return words
    }
}

/// ``describe(_:)`` folded onto one line: the fields of the value (a message or frame case),
/// `name: value` separated by commas, at most 200 characters.
func oneLine(_ value: Any) -> String {
    let lines = describe(value).split(separator: "\n").dropFirst()
    let fields = lines.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.hasSuffix(":") && !$0.isEmpty }
    let text = fields.joined(separator: ", ")
    return text.count > 200 ? String(text.prefix(199)) + "…" : text
}

/// Seconds (nanosecond digits) from `start` to `time`.
func elapsed(_ time: UInt64, since start: UInt64) -> String {
    let nanoseconds = time >= start ? time - start : 0
    let fraction = String(nanoseconds % 1_000_000_000)
    return "\(nanoseconds / 1_000_000_000)." + String(repeating: "0", count: 9 - fraction.count) + fraction
}
