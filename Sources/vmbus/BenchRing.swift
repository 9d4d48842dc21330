import ArgumentParser
import Dispatch
import VMBusMemory
import VMBusRing
import VMBusWire

/// `vmbus bench ring`: two threads on one ring for a fixed time, against memcpy, a pipe and a
/// Unix datagram socket moving the same payloads.
struct BenchRing: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ring",
        abstract: "Two threads on one ring, for a fixed time per run, against memcpy, a pipe and SOCK_SEQPACKET.",
        discussion: """
            For each payload size a writer thread writes in-band packets as fast as the ring \
            takes them while a reader thread reads them, for --seconds per run. --runs rounds \
            interleave every case, so a slow moment of the machine hits all of them alike; each \
            line gives the median packets/s with the range of the rounds. Every run checks that \
            the reader saw every packet.

            Two ring rows: "copy" copies each payload out of the ring (IncomingRing.copyPayload, \
            the validated path devices use); "in-place" reads the payload where it lies \
            (IncomingRing.withPayload, one byte of it). Both ends publish their index every \
            --publish-every packets or every quarter ring of bytes, whichever comes first; \
            --publish-every 1 is Linux's rule (each packet published on its own).

            "copy bound" is what no ring that copies with plain memcpy on both sides (as \
            Linux's do) can beat: the same two threads copy the same payloads into and out of \
            a buffer the size of the ring's data area, slot by slot, publishing counts as often \
            as the ring does — no headers, no validation, no wrapping; only the two copies and \
            the cache lines crossing cores.

            Payloads of 4 KiB and more are written with plain or streaming (non-temporal) \
            stores, whichever the writer measures to move the ring faster where the reader runs now: \
            streaming when the reader's cache is far (then the ring passes the copy bound), plain \
            when the two threads share a cache. For those sizes two more rows fix the choice: \
            "copy, plain" and "copy, streaming".

            The ring is mapped as the local substrate maps it: a memfd with its data area mapped \
            twice, so a wrapping packet is one copy (--single-mapped: as a uio device maps it).

            A last line per size gives the cost of one packet on one thread with no waiting \
            and no cache line crossing cores (a quarter ring written, then read with copy-out): \
            nanoseconds per packet for the write and the read, and instructions where the CPU's \
            counter is available (most virtual machines have none). --solo runs only that, for \
            a profiler or an allocation counter.
            """
    )

    @Option(name: .long, help: "Seconds per run.")
    var seconds: Double = 0.5

    @Option(name: .long, help: "Rounds over all cases (the median and range are reported).")
    var runs: Int = 5

    @Option(name: .long, parsing: .upToNextOption, help: "Payload sizes in bytes.")
    var sizes: [Int] = [64, 1024, 16384]

    @Option(name: .long, help: "Ring size in bytes, its 4 KiB control page included (as Linux counts it).")
    var ringSize: Int = 256 << 10

    @Option(name: .long, help: "Publish the index after this many packets (or a quarter ring of bytes).")
    var publishEvery: Int = 32

    @Flag(name: .long, help: "Map the ring once, as a uio device is (wrapping packets take two copies).")
    var singleMapped = false

    @Flag(name: .long, help: "Measure only the ring (skip memcpy, pipe and socket).")
    var ringOnly = false

    @Option(name: .long, help: "Only move this many packets per size through one thread (write a batch, read it) and print the cost per packet; for profilers and allocation counters.")
    var solo: Int?

    @Flag(name: .long, help: "Print JSON lines.")
    var json = false

    func validate() throws {
        guard self.seconds > 0, self.seconds <= 3600 else { throw ValidationError("--seconds must be in (0, 3600]") }
        guard self.runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard self.publishEvery >= 1 else { throw ValidationError("--publish-every must be at least 1") }
        guard self.ringSize >= RingSize.minimum, self.ringSize % RingSize.pageSize == 0 else {
            throw ValidationError("--ring-size must be a multiple of 4096 and at least 8192")
        }
        let largest = RingSize.maximumPacketLength(dataSize: self.ringSize - RingSize.pageSize)
        for size in self.sizes where size < 1 || PacketSize.inBand(payload: size) > largest / 2 {
            throw ValidationError("payload \(size) does not fit twice in a \(self.ringSize)-byte ring: give a larger --ring-size")
        }
        if let solo, solo < 1 { throw ValidationError("--solo needs a positive packet count") }
    }

    func run() throws {
        let ring =
            self.singleMapped
            ? try SharedRingMemory(memory: MappedMemory.anonymous(size: self.ringSize), offset: 0, ringSize: self.ringSize)
            : try SharedRingMemory.doubleMappedAnonymous(ringSize: self.ringSize)
        if let solo {
            for size in self.sizes {
                self.reportSolo(size, try soloCost(ring, payload: size, packets: solo, publishEvery: self.publishEvery))
            }
            return
        }
        for size in self.sizes {
            var cases: [(name: String, measure: () throws -> Double)] = [
                ("ring copy", { try ringThroughput(ring, payload: size, seconds: self.seconds, publishEvery: self.publishEvery, inPlace: false) }),
                ("ring in-place", { try ringThroughput(ring, payload: size, seconds: self.seconds, publishEvery: self.publishEvery, inPlace: true) }),
            ]
            if size >= SharedRingMemory.streamingThreshold {
                // What the adaptive choice chooses between, in the same rounds.
                for stores in [LargeWriteStores.plain, .streaming] {
                    cases.append(("copy, \(stores.rawValue)", {
                        try ringThroughput(
                            ring, payload: size, seconds: self.seconds, publishEvery: self.publishEvery, inPlace: false, stores: stores)
                    }))
                }
            }
            cases += [
                ("copy bound", {
                    try copyBoundThroughput(payload: size, seconds: self.seconds, publishEvery: self.publishEvery, dataSize: ring.dataSize)
                }),
            ]
            if !self.ringOnly {
                cases.append(("memcpy", { try memcpyThroughput(payload: size, seconds: self.seconds) }))
                cases.append(("pipe", { try pipeThroughput(payload: size, seconds: self.seconds) }))
                cases.append(("seqpacket", { try seqPacketThroughput(payload: size, seconds: self.seconds) }))
            }
            var rates = Array(repeating: [Double](), count: cases.count)
            // A first, unrecorded round faults the pages in and wakes the CPUs up.
            for item in cases { _ = try item.measure() }
            for _ in 0..<self.runs {
                for (n, item) in cases.enumerated() { rates[n].append(try item.measure()) }
            }
            for (n, item) in cases.enumerated() { self.report(size, item.name, rates[n]) }
            let packets = max(10_000, Int(rates[0].max()! * self.seconds / 4))
            self.reportSolo(size, try soloCost(ring, payload: size, packets: packets, publishEvery: self.publishEvery))
        }
    }

    func report(_ size: Int, _ name: String, _ rates: [Double]) {
        let middle = median(rates)
        if self.json {
            let runs = rates.map { String(Int($0)) }.joined(separator: ", ")
            print("{\"bench\": \"ring\", \"case\": \"\(name)\", \"payload\": \(size), \"ring_size\": \(self.ringSize), "
                + "\"publish_every\": \(self.publishEvery), \"packets_per_s\": \(Int(middle)), "
                + "\"gb_per_s\": \(middle * Double(size) / 1e9), \"runs\": [\(runs)]}")
        } else {
            let range = "(\(formatRate(rates.min()!))–\(formatRate(rates.max()!)))"
            print(pad("\(size) B", 9) + pad(name, 17) + pad(formatRate(middle) + " pkt/s", 16) + pad(range, 18)
                + formatBytesPerSecond(middle * Double(size)))
        }
    }

    func reportSolo(_ size: Int, _ cost: SoloCost) {
        let instructions = (cost.writeInstructions, cost.readInstructions)
        if self.json {
            var fields = "\"write_ns\": \(cost.writeNanoseconds), \"read_ns\": \(cost.readNanoseconds)"
            if case (let write?, let read?) = instructions {
                fields += ", \"write_instructions\": \(write), \"read_instructions\": \(read)"
            }
            print("{\"bench\": \"ring\", \"case\": \"one thread\", \"payload\": \(size), \(fields)}")
        } else {
            var line = pad("\(size) B", 9) + pad("one thread", 17)
                + "write \(format1(cost.writeNanoseconds)) ns, copy-out read \(format1(cost.readNanoseconds)) ns per packet"
            if case (let write?, let read?) = instructions {
                line += "; \(write) and \(read) instructions"
            } else {
                line += " (no CPU instruction counter here)"
            }
            print(line)
        }
    }
}

func formatRate(_ rate: Double) -> String {
    rate >= 1e6 ? String(format1(rate / 1e6)) + " M" : String(Int(rate / 1e3)) + " k"
}

func formatBytesPerSecond(_ rate: Double) -> String {
    rate >= 1e9 ? format1(rate / 1e9) + " GB/s" : String(Int(rate / 1e6)) + " MB/s"
}

/// One decimal, without Foundation's formatter.
func format1(_ value: Double) -> String {
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}

/// Packets per second from one writer and one reader thread on `ring` for `seconds`.
func ringThroughput(
    _ ring: SharedRingMemory, payload size: Int, seconds: Double, publishEvery: Int, inPlace: Bool,
    stores: LargeWriteStores = .adaptive
) throws -> Double {
    ring.initializeControlPage()
    ring.largeWriteStores = stores
    let quarter = ring.dataSize / 4
    let sent = Locked(-1)
    let checksum = Locked(0)
    let reading = spawn {
        do {
            var reader = try IncomingRing(memory: ring)
            var buffer = [UInt8](repeating: 0, count: size + 8)
            var received = 0
            var sum = 0
            var batch = 0
            while true {
                if let packet = try reader.next() {
                    if inPlace, let first = reader.withPayload(of: packet, { $0[0] }) {
                        sum &+= Int(first)
                    } else {
                        reader.copyPayload(of: packet, into: &buffer)
                        sum &+= Int(buffer[0])
                    }
                    received += 1
                    batch += 1
                    if batch == publishEvery || reader.uncommittedBytes >= quarter {
                        _ = try reader.commit()
                        batch = 0
                    }
                } else {
                    _ = try reader.commit()
                    batch = 0
                    // The writer publishes its count only after its last commit.
                    if received == sent.load() { break }
                    spinLoopPause()
                }
            }
            checksum.store(sum)
        } catch {
            fatalError("ring reader: \(error)")
        }
    }
    // One slice for the whole run: forming it per packet retains and releases the array.
    let payload = [UInt8](repeating: 0x5A, count: size)[...]
    let start = DispatchTime.now().uptimeNanoseconds
    let deadline = start + UInt64(seconds * 1e9)
    var writer = try OutgoingRing(memory: ring)
    var count = 0
    var batch = 0
    while true {
        if try writer.write(payload: payload) {
            count += 1
            batch += 1
            if batch == publishEvery || writer.uncommittedBytes >= quarter {
                _ = try writer.commit()
                batch = 0
            }
            if count & 255 == 0, DispatchTime.now().uptimeNanoseconds >= deadline { break }
        } else {
            _ = try writer.commit()
            batch = 0
            spinLoopPause()
        }
    }
    _ = try writer.commit()
    sent.store(count)
    reading.wait()
    let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    guard checksum.load() == count &* 0x5A else {
        throw ValidationError("the reader saw other bytes than were written: the ring is broken")
    }
    return Double(count) / elapsed
}

/// The physical limit: the same payloads copied by one thread into a 1 MiB buffer, slot after
/// slot.
func memcpyThroughput(payload size: Int, seconds: Double) throws -> Double {
    let target = try MappedMemory.anonymous(size: 1 << 20)
    let source = [UInt8](repeating: 0x5A, count: size)
    let slots = (1 << 20) / size
    let start = DispatchTime.now().uptimeNanoseconds
    let deadline = start + UInt64(seconds * 1e9)
    var count = 0
    while true {
        try target.write(source[...], at: (count % slots) * size)
        count += 1
        if count & 255 == 0, DispatchTime.now().uptimeNanoseconds >= deadline { break }
    }
    return Double(count) / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
}

func pipeThroughput(payload size: Int, seconds: Double) throws -> Double {
    let (readEnd, writeEnd) = try DescriptorIO.pipe()
    return try descriptorThroughput(payload: size, seconds: seconds, readEnd: readEnd, writeEnd: writeEnd, datagrams: false)
}

func seqPacketThroughput(payload size: Int, seconds: Double) throws -> Double {
    let (a, b) = try DescriptorIO.seqPacketPair()
    return try descriptorThroughput(payload: size, seconds: seconds, readEnd: b, writeEnd: a, datagrams: true)
}

/// Payloads per second written to `writeEnd` for `seconds` and read on another thread until
/// the end of the stream; both descriptors are closed.
func descriptorThroughput(payload size: Int, seconds: Double, readEnd: Int32, writeEnd: Int32, datagrams: Bool) throws -> Double {
    let received = Locked(0)
    let reading = spawn {
        var buffer = [UInt8](repeating: 0, count: datagrams ? size : 1 << 16)
        var bytes = 0
        while let n = try? DescriptorIO.readSome(readEnd, into: &buffer, count: buffer.count), n > 0 { bytes += n }
        received.store(bytes)
    }
    let payload = [UInt8](repeating: 0x5A, count: size)
    let start = DispatchTime.now().uptimeNanoseconds
    let deadline = start + UInt64(seconds * 1e9)
    var count = 0
    while true {
        try DescriptorIO.writeAll(writeEnd, payload[...])
        count += 1
        if count & 63 == 0, DispatchTime.now().uptimeNanoseconds >= deadline { break }
    }
    DescriptorIO.close(writeEnd)
    reading.wait()
    DescriptorIO.close(readEnd)
    let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    guard received.load() == count * size else { throw ValidationError("the reader lost bytes") }
    return Double(count) / elapsed
}

/// The cost of one packet on one thread with no waiting (no cache line crosses to another
/// core): batches of a quarter ring written, then read with copy-out. Nanoseconds per packet
/// for each phase, and instructions where the CPU's counter is available.
struct SoloCost {
    var writeNanoseconds: Double
    var readNanoseconds: Double
    var writeInstructions: Int?
    var readInstructions: Int?
}

func soloCost(_ ring: SharedRingMemory, payload size: Int, packets: Int, publishEvery: Int) throws -> SoloCost {
    ring.initializeControlPage()
    ring.largeWriteStores = .adaptive
    var writer = try OutgoingRing(memory: ring)
    var reader = try IncomingRing(memory: ring)
    let payload = [UInt8](repeating: 0x5A, count: size)[...]
    var buffer = [UInt8](repeating: 0, count: size + 8)
    let batch = max(1, ring.dataSize / 4 / PacketSize.ringBytes(length: PacketSize.inBand(payload: size)))
    let counter = InstructionCounter.start()
    var writing = (time: UInt64(0), instructions: UInt64(0))
    var reading = (time: UInt64(0), instructions: UInt64(0))
    var done = 0
    while done < packets {
        let n = min(batch, packets - done)
        let (t0, i0) = (DispatchTime.now().uptimeNanoseconds, counter?.read() ?? 0)
        try soloWritePhase(&writer, payload, count: n, publishEvery: publishEvery)
        let (t1, i1) = (DispatchTime.now().uptimeNanoseconds, counter?.read() ?? 0)
        try soloReadPhase(&reader, &buffer, count: n, publishEvery: publishEvery)
        let (t2, i2) = (DispatchTime.now().uptimeNanoseconds, counter?.read() ?? 0)
        writing.time += t1 - t0
        writing.instructions += i1 - i0
        reading.time += t2 - t1
        reading.instructions += i2 - i1
        done += n
    }
    let count = Double(packets)
    return SoloCost(
        writeNanoseconds: Double(writing.time) / count, readNanoseconds: Double(reading.time) / count,
        writeInstructions: counter.map { _ in Int(writing.instructions / UInt64(packets)) },
        readInstructions: counter.map { _ in Int(reading.instructions / UInt64(packets)) })
}

/// Writes `count` packets (the ring has room) and publishes them as the benchmark does.
@inline(never)
func soloWritePhase(_ writer: inout OutgoingRing<SharedRingMemory>, _ payload: ArraySlice<UInt8>, count: Int, publishEvery: Int) throws {
    for n in 1...count {
        guard try writer.write(payload: payload) else { throw ValidationError("solo: the ring was full") }
        if n % publishEvery == 0 { _ = try writer.commit() }
    }
    _ = try writer.commit()
}

/// Reads `count` packets with copy-out and publishes the room as the benchmark does.
@inline(never)
func soloReadPhase(_ reader: inout IncomingRing<SharedRingMemory>, _ buffer: inout [UInt8], count: Int, publishEvery: Int) throws {
    for n in 1...count {
        guard let packet = try reader.next() else { throw ValidationError("solo: a packet is missing") }
        reader.copyPayload(of: packet, into: &buffer)
        if n % publishEvery == 0 { _ = try reader.commit() }
    }
    _ = try reader.commit()
}
