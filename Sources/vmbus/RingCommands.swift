import ArgumentParser
import Foundation
import VMBusMemory
import VMBusRing
import VMBusWire

/// `vmbus ring`: tools over a ring-pair file laid out as a uio mapping.
struct RingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ring",
        abstract: "Create, inspect and stream through a ring-pair file (uio_hv_generic layout).",
        discussion: """
            A ring-pair file holds the outbound (guest → host) ring followed by the inbound \
            (host → guest) ring, each --ring-size bytes including its 4 KiB control page: the \
            layout of map 0 of /dev/uioN. 'send' and 'recv' frame a byte stream as VMBus pipe \
            DATA packets (8-byte pipe header with the exact length; an empty packet ends the \
            stream), so two processes can stream any data through one ring byte-exactly.
            """,
        subcommands: [RingInit.self, RingStat.self, RingDump.self, RingSend.self, RingRecv.self]
    )
}

extension RingPairFile.Ring: ExpressibleByArgument {}

/// The file and ring that `dump`, `send` and `recv` work on.
struct RingTarget: ParsableArguments {
    @Argument(help: "A ring-pair file.")
    var file: String

    @Option(name: .long, help: "Which ring: out (guest → host) or in (host → guest).")
    var ring: RingPairFile.Ring = .outbound

    func memory() throws -> SharedRingMemory {
        try openPair(self.file).ring(self.ring)
    }
}

struct RingInit: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "init", abstract: "Create a ring-pair file.")

    @Argument(help: "The file to create; an existing one is rewritten exactly as a new one (all zero but the feature bits).")
    var file: String

    @Option(name: .long, help: "Bytes per ring, control page included: a multiple of 4096, at least 8192.")
    var ringSize: Int = 16384

    func run() throws {
        do {
            let pair = try RingPairFile.create(path: self.file, ringSize: self.ringSize)
            print("\(self.file): 2 rings of \(pair.ringSize) bytes (\(pair.ringSize - 4096) data bytes each)")
        } catch {
            throw CLIError("cannot create \(self.file): \(error)")
        }
    }
}

struct RingStat: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stat", abstract: "Show both rings' control words, bytes available and packets pending.")

    @Argument(help: "A ring-pair file.")
    var file: String

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        let pair = try openPair(self.file)
        var entries: [String] = []
        for which in RingPairFile.Ring.allCases {
            let ring = try pair.ring(which)
            let words = [RingControlWord.writeIndex, .readIndex, .interruptMask, .pendingSendSize, .featureBits]
                .map { ring.load($0, ordering: .acquiring) }
            var pending = 0
            var state = "ok"
            do {
                var reader = try IncomingRing(memory: ring)
                while try reader.next() != nil { pending += 1 }
            } catch {
                state = "\(error)"
            }
            let read = Int(words[1]), write = Int(words[0]), data = ring.dataSize
            let toRead = write >= read ? write - read : data - read + write
            if self.json {
                entries.append("""
                    "\(which.rawValue)": {"write_index": \(words[0]), "read_index": \(words[1]), \
                    "interrupt_mask": \(words[2]), "pending_send_sz": \(words[3]), "feature_bits": \(words[4]), \
                    "data_size": \(data), "read_avail": \(toRead), "write_avail": \(data - toRead), \
                    "packets": \(pending), "state": "\(state.replacingOccurrences(of: "\"", with: "'"))"}
                    """)
            } else {
                print("""
                    \(which.rawValue)bound ring: write_index \(words[0]) read_index \(words[1]) \
                    interrupt_mask \(words[2]) pending_send_sz \(words[3]) feature_bits \(words[4])
                      data \(data) bytes, read_avail \(toRead), write_avail \(data - toRead), \
                    packets pending \(pending)\(state == "ok" ? "" : ", " + state)
                    """)
            }
        }
        if self.json { print("{" + entries.joined(separator: ", ") + "}") }
    }
}

struct RingDump: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump", abstract: "List the packets in a ring without consuming them.")

    @OptionGroup var target: RingTarget

    func run() throws {
        let memory = try self.target.memory()
        var reader = try IncomingRing(memory: memory)
        var buffer: [UInt8] = []
        var count = 0
        do {
            while let packet = try reader.next() {
                let d = packet.descriptor
                reader.copyPayload(of: packet, into: &buffer)
                print("@\(packet.offset): type 0x\(String(d.type.rawValue, radix: 16)) len8 \(d.len8) offset8 \(d.offset8) "
                    + "flags 0x\(String(d.flags.rawValue, radix: 16)) id \(d.transactionID): \(hexSummary(buffer[...]))")
                count += 1
            }
        } catch {
            throw CLIError("ring corrupt after \(count) packets: \(error)")
        }
        print("\(count) packets")
    }
}

struct RingSend: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send", abstract: "Write standard input into a ring as pipe DATA packets.",
        discussion: "Waits for space when the ring is full, asking the reader through pending_send_sz.")

    @OptionGroup var target: RingTarget

    /// The largest packet data of the smallest ring `init` makes (8192 bytes: 4096 of data),
    /// so the default fits every ring: 4096 − 16 (admission rule and trailer) − 16 (descriptor)
    /// − 8 (pipe header) = 4056.
    static let defaultPacketSize = RingSize.maximumPacketLength(dataSize: RingSize.minimum - RingControlPage.size)
        - PacketDescriptor.wireSize - PipeHeader.wireSize

    @Option(name: .long, help: "Most data bytes per packet (at most the ring's data size − 40).")
    var packetSize: Int = Self.defaultPacketSize

    @Option(name: .long, help: "Stop after this many packets (default: until end of input).")
    var count: Int?

    func run() throws {
        let memory = try self.target.memory()
        var writer = try OutgoingRing(memory: memory)
        let limit = writer.maximumPacketLength - PacketDescriptor.wireSize - PipeHeader.wireSize
        guard self.packetSize > 0, self.packetSize <= limit else {
            throw CLIError("--packet-size must be 1…\(limit) for this ring")
        }
        let input = FileHandle.standardInput
        var frame = [UInt8](repeating: 0, count: PipeHeader.wireSize + self.packetSize)
        var sent = 0
        var bytes = 0
        while self.count.map({ sent < $0 }) ?? true {
            let chunk = try input.read(upToCount: self.packetSize) ?? Data()
            writeFrame(&frame, chunk)
            try sendBlocking(&writer, frame[0..<PipeHeader.wireSize + chunk.count])
            sent += 1
            bytes += chunk.count
            if chunk.isEmpty { break }  // the empty packet is the end of the stream
            if sent % 16 == 0 { _ = try writer.commit() }
        }
        _ = try writer.commit()
        FileHandle.standardError.write(Data("sent \(bytes) bytes in \(sent) packets\n".utf8))
    }
}

struct RingRecv: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recv", abstract: "Read pipe DATA packets from a ring to standard output.",
        discussion: "Waits for data; stops at the end-of-stream packet or after --count packets.")

    @OptionGroup var target: RingTarget

    @Option(name: .long, help: "Stop after this many packets.")
    var count: Int?

    func run() throws {
        let memory = try self.target.memory()
        var reader = try IncomingRing(memory: memory)
        let output = FileHandle.standardOutput
        var buffer: [UInt8] = []
        var received = 0
        var idle = 0
        while self.count.map({ received < $0 }) ?? true {
            guard let packet = try reader.next() else {
                _ = try reader.commit()
                idle = backOff(idle)
                continue
            }
            idle = 0
            reader.copyPayload(of: packet, into: &buffer)
            let data: ArraySlice<UInt8>
            do {
                data = try pipeData(buffer[...])
            } catch {
                throw CLIError("packet \(received) is not a pipe DATA packet: \(error)")
            }
            received += 1
            if data.isEmpty { break }
            output.write(Data(data))
            // Free space in batches of 16, but promptly, so a blocked writer resumes.
            if received % 16 == 0 { _ = try reader.commit() }
        }
        _ = try reader.commit()
    }
}

func openPair(_ path: String) throws -> RingPairFile {
    do {
        return try RingPairFile.open(path: path)
    } catch {
        throw CLIError("cannot open ring-pair file \(path): \(error)")
    }
}

/// The data of one packet `ring send` wrote: a DATA pipe header and exactly that many bytes
/// (padding after them is ignored). Unlike hvsock's packets (``HvSockData``) there is no
/// 16 KiB limit: `send` fills packets as large as the ring takes, and `recv` takes them all.
/// - Throws: ``WireError`` for a short header or data, or a pipe type other than DATA.
func pipeData(_ payload: ArraySlice<UInt8>) throws(WireError) -> ArraySlice<UInt8> {
    var reader = WireReader(payload)
    let header = try PipeHeader(from: &reader)
    guard header.type == .data else {
        throw WireError.invalidField(name: "pipe packet type", value: UInt64(header.type.rawValue))
    }
    guard let size = Int(exactly: header.length) else {
        throw WireError.invalidField(name: "pipe data length", value: UInt64(header.length))
    }
    return try reader.readBytes(size)
}

/// Fills `frame` with a DATA pipe header and `chunk`.
func writeFrame(_ frame: inout [UInt8], _ chunk: Data) {
    var header = WireWriter(capacity: PipeHeader.wireSize)
    PipeHeader(type: .data, length: UInt32(chunk.count)).write(to: &header)
    frame.replaceSubrange(0..<PipeHeader.wireSize, with: header.bytes)
    frame.replaceSubrange(PipeHeader.wireSize..<PipeHeader.wireSize + chunk.count, with: chunk)
}

/// Writes one packet, waiting for space (02 §8): on a full ring, publish what is written, ask
/// for the space through pending_send_sz (which re-checks), then poll until the reader frees it.
func sendBlocking(_ writer: inout OutgoingRing<SharedRingMemory>, _ payload: ArraySlice<UInt8>) throws {
    while try !writer.write(payload: payload) {
        _ = try writer.commit()
        let needed = PacketSize.ringBytes(length: PacketSize.inBand(payload: payload.count))
        if try writer.setPendingSendSize(needed) { continue }
        var idle = 0
        while try writer.bytesAvailableToWrite() <= needed { idle = backOff(idle) }
        writer.clearPendingSendSize()
    }
}

/// Spins briefly, then yields, then sleeps in short steps: a file has no doorbell.
func backOff(_ idle: Int) -> Int {
    if idle > 1000 {
        usleep(50)
    } else if idle > 100 {
        sched_yield()
    }
    return idle + 1
}
