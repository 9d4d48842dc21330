import Foundation
import VMBusWire

/// A capture file read back: its records in file order and each connection's statistics.
public struct CaptureFile: Sendable {
    /// One record.
    public struct Record: Hashable, Sendable {
        public var header: CaptureRecordHeader
        /// Nanoseconds since the Unix epoch.
        public var timestamp: UInt64
        /// The captured data after the header (cut to the snap length).
        public var data: ArraySlice<UInt8>

        public init(header: CaptureRecordHeader, timestamp: UInt64, data: ArraySlice<UInt8>) {
            self.header = header
            self.timestamp = timestamp
            self.data = data
        }
    }

    /// An interface's Interface Statistics Block.
    public struct Statistics: Hashable, Sendable {
        public var received: UInt64?
        public var dropped: UInt64?

        public init(received: UInt64?, dropped: UInt64?) {
            self.received = received
            self.dropped = dropped
        }
    }

    public var records: [Record] = []
    /// By connection.
    public var statistics: [UInt32: Statistics] = [:]

    /// Reads the capture at `path`.
    /// - Throws: ``CaptureError`` when the file cannot be read or is not a swift-vmbus capture.
    public init(path: String) throws(CaptureError) {
        guard let data = FileManager.default.contents(atPath: path) else { throw CaptureError("cannot read \(path)") }
        do { try self.init(bytes: [UInt8](data)) } catch { throw CaptureError("\(path): \(error)") }
    }

    /// Reads a capture from its bytes.
    /// - Throws: ``WireError`` for a malformed file, a packet on an undescribed interface, an
    ///   interface of another link type or timestamp resolution, or a malformed record.
    public init(bytes: [UInt8]) throws(WireError) {
        var reader = PcapngReader(bytes)
        // Interfaces described so far, and the connection each one's records name.
        var interfaces: [UInt32] = []
        var connections: [UInt32: UInt32] = [:]
        while let block = try reader.next() {
            switch block {
            case .sectionHeader:
                // A new section restarts interface numbering.
                interfaces = []
                connections = [:]
            case .interfaceDescription(let linkType, _, let options):
                guard linkType == Pcapng.linkTypeUser0 else { throw WireError.invalidField(name: "link type", value: UInt64(linkType)) }
                let resolution = options.first { $0.code == Pcapng.Option.timestampResolution }?.value.first
                guard resolution == Pcapng.nanosecondResolution else {
                    throw WireError.invalidField(name: "if_tsresol", value: UInt64(resolution ?? 6))
                }
                interfaces.append(UInt32(interfaces.count))
            case .enhancedPacket(let interface, let timestamp, _, let data, _):
                guard interface < interfaces.count else { throw WireError.invalidField(name: "interface id", value: UInt64(interface)) }
                var r = WireReader(data)
                let header = try CaptureRecordHeader(from: &r)
                connections[interface] = header.connection
                self.records.append(Record(header: header, timestamp: timestamp, data: r.readRemaining()))
            case .interfaceStatistics(let interface, _, let options):
                let statistics = Statistics(
                    received: options.first { $0.code == Pcapng.Option.statisticsReceived }?.uint64,
                    dropped: options.first { $0.code == Pcapng.Option.statisticsDropped }?.uint64)
                // An interface that carried no record names no connection: nothing to report.
                if let connection = connections[interface] { self.statistics[connection] = statistics }
            case .other:
                break
            }
        }
    }
}
