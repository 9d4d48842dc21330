import ArgumentParser
import VMBusCapture
import VMBusWire

/// `vmbus capture`: read the pcapng files `vmbus host --capture` and `vmbus guest --capture`
/// write (docs/CAPTURE.md).
struct CaptureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Read a capture made with 'vmbus host --capture' or 'vmbus guest --capture'.",
        discussion: """
            A capture is a pcapng file: one interface per guest connection, one record per \
            substrate frame, channel message, ring packet, doorbell, channel open or close, and \
            a record for records lost when the capture could not keep up (docs/CAPTURE.md has \
            the format byte for byte). tshark and Wireshark read it too; \
            Tools/wireshark/vmbus.lua dissects the records.
            """,
        subcommands: [CaptureSummaryCommand.self, CaptureDecodeCommand.self, CaptureReplayCommand.self]
    )
}

struct CaptureDecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Print every record on one line.",
        discussion: """
            Each line: seconds since the first record, direction, connection, relid, then what \
            the record is — a channel message's name and fields (parsed at the version the \
            connection negotiated), a ring packet's type, length and transaction id, a substrate \
            frame's kind and fields, a doorbell, a channel's open or close, or lost records. \
            Records cut by the snap length say so.
            """
    )

    @Argument(help: ArgumentHelp("The capture file.", valueName: "file.pcapng"))
    var file: String

    @Option(name: .long, help: "Only records of this connection.")
    var connection: UInt32?

    @Option(name: .long, help: "Only records of this channel (relid).")
    var relid: UInt32?

    func run() throws {
        let capture: CaptureFile
        do { capture = try CaptureFile(path: self.file) } catch { throw CLIError("\(error)") }
        let start = capture.records.first?.timestamp ?? 0
        var decoder = CaptureDecoder()
        for record in capture.records {
            // Every message goes through the decoder, so the negotiated version is followed
            // even when the filter hides the negotiation.
            let text = decoder.describe(record)
            let h = record.header
            if let connection = self.connection, h.connection != connection { continue }
            if let relid = self.relid, h.relid != relid { continue }
            let relid = h.relid == 0 ? "-" : "\(h.relid)"
            print("\(elapsed(record.timestamp, since: start)) \(h.direction) conn \(h.connection) relid \(relid) \(text)")
        }
    }
}

struct CaptureSummaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summary",
        abstract: "Count what a capture holds, per connection and per channel.",
        discussion: """
            Per connection: records, time span, records lost, substrate frames and channel \
            messages by name and direction. Per channel (relid): packets and bytes each way \
            (original lengths, before the snap length), doorbells each way, opens and closes.
            """
    )

    @Argument(help: ArgumentHelp("The capture file.", valueName: "file.pcapng"))
    var file: String

    struct ChannelCounts {
        var packets: [CaptureDirection: Int] = [:]
        var bytes: [CaptureDirection: UInt64] = [:]
        var doorbells: [CaptureDirection: Int] = [:]
        var buffers: [CaptureDirection: Int] = [:]
        var opens = 0
        var closes: [String] = []
    }

    struct ConnectionCounts {
        var records = 0
        var first = UInt64.max
        var last: UInt64 = 0
        var lost: UInt64 = 0
        var names: [String: Int] = [:]
        var channels: [UInt32: ChannelCounts] = [:]
    }

    func run() throws {
        let capture: CaptureFile
        do { capture = try CaptureFile(path: self.file) } catch { throw CLIError("\(error)") }
        var connections: [UInt32: ConnectionCounts] = [:]
        for record in capture.records {
            let h = record.header
            var c = connections[h.connection] ?? ConnectionCounts()
            c.records += 1
            c.first = min(c.first, record.timestamp)
            c.last = max(c.last, record.timestamp)
            switch h.kind {
            case .channelMessage, .substrateFrame:
                var reader = WireReader(record.data)
                let name = h.kind == .substrateFrame
                    ? CaptureDecoder.frame(record.data, kind: h.port).split(separator: " ").prefix(2).joined(separator: " ")
                    : (try? reader.readUInt32()).map { ChannelMessageType(rawValue: $0).name } ?? "MESSAGE (short)"
                c.names["\(h.direction) \(name)", default: 0] += 1
            case .ringPacket:
                c.channels[h.relid, default: ChannelCounts()].packets[h.direction, default: 0] += 1
                c.channels[h.relid, default: ChannelCounts()].bytes[h.direction, default: 0] += UInt64(h.originalLength)
            case .doorbell:
                c.channels[h.relid, default: ChannelCounts()].doorbells[h.direction, default: 0] += 1
            case .channelOpen:
                c.channels[h.relid, default: ChannelCounts()].opens += 1
            case .channelClose:
                let reason = CaptureDecoder.words(record.data).first.map { "\(CaptureCloseReason(rawValue: $0))" } ?? "?"
                c.channels[h.relid, default: ChannelCounts()].closes.append(reason)
            case .drops:
                var reader = WireReader(record.data)
                c.lost += (try? reader.readUInt64()) ?? 0
            case .bufferData:
                c.channels[h.relid, default: ChannelCounts()].buffers[h.direction, default: 0] += 1
            default:
                c.names["record kind \(h.kind.rawValue)", default: 0] += 1
            }
            connections[h.connection] = c
        }
        if connections.isEmpty { print("no records") }
        for (id, c) in connections.sorted(by: { $0.key < $1.key }) {
            let lost = capture.statistics[id]?.dropped ?? c.lost
            print("connection \(id): \(c.records) record(s) over \(elapsed(c.last, since: c.first)) s, \(lost) lost")
            for (name, count) in c.names.sorted(by: { $0.key < $1.key }) { print("  \(name): \(count)") }
            for (relid, channel) in c.channels.sorted(by: { $0.key < $1.key }) {
                func each<T>(_ values: [CaptureDirection: T], _ zero: T) -> String {
                    "guest→host \(values[.guestToHost] ?? zero), host→guest \(values[.hostToGuest] ?? zero)"
                }
                print("  relid \(relid): packets \(each(channel.packets, 0)); bytes \(each(channel.bytes, 0)); "
                    + "doorbells \(each(channel.doorbells, 0)); opened \(channel.opens)×"
                    + (channel.buffers.isEmpty ? "" : "; buffers \(each(channel.buffers, 0))")
                    + (channel.closes.isEmpty ? "" : "; closed: \(channel.closes.joined(separator: ", "))"))
            }
        }
    }
}
