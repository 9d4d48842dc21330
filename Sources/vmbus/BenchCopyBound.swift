import Dispatch
import Synchronization
import VMBusMemory

/// What two threads share in ``copyBoundThroughput(payload:seconds:publishEvery:dataSize:)``.
final class CopyBoundCounters: Sendable {
    /// Payloads the writer has published.
    let written = Atomic<Int>(0)
    /// Payloads the reader has copied out and handed back.
    let consumed = Atomic<Int>(0)
    /// The writer's final count, once it stopped (−1 before).
    let total = Atomic<Int>(-1)
}

/// The bound for any ring that moves these payloads between two threads with a plain memcpy
/// on each side (Linux's rings; ours may stream writes of 4 KiB and more past it): the writer
/// copies each payload into the next slot of a buffer the size of the ring's data area and
/// publishes a count every `publishEvery` payloads or quarter buffer, as the ring bench does;
/// the reader copies each slot out and hands it back the same way. No packet headers, no
/// indices to validate, no wrapping: only the two copies and the cache lines crossing from
/// one core to the other. A plain-copy ring at this figure has nothing left to remove; one
/// below it shows what its format and checks cost.
func copyBoundThroughput(payload size: Int, seconds: Double, publishEvery: Int, dataSize: Int) throws -> Double {
    let slots = dataSize / size
    guard slots >= 2 else { return 0 }
    let memory = try MappedMemory.anonymous(size: (slots * size + 4095) & ~4095)
    let quarter = dataSize / 4
    let counters = CopyBoundCounters()
    let checksum = Locked(0)
    let reading = spawn {
        var buffer = [UInt8](repeating: 0, count: size)
        var consumed = 0
        var sum = 0
        var batch = 0
        while true {
            let available = counters.written.load(ordering: .acquiring)
            guard consumed < available else {
                counters.consumed.store(consumed, ordering: .releasing)
                batch = 0
                if consumed == counters.total.load(ordering: .acquiring) { break }
                spinLoopPause()
                continue
            }
            while consumed < available {
                try? memory.read(at: (consumed % slots) * size, count: size, into: &buffer)
                sum &+= Int(buffer[0])
                consumed += 1
                batch += 1
                if batch == publishEvery || batch * size >= quarter {
                    counters.consumed.store(consumed, ordering: .releasing)
                    batch = 0
                }
            }
        }
        checksum.store(sum)
    }
    let payload = [UInt8](repeating: 0x5A, count: size)[...]
    let start = DispatchTime.now().uptimeNanoseconds
    let deadline = start + UInt64(seconds * 1e9)
    var count = 0
    var consumed = 0
    var batch = 0
    while true {
        if count - consumed == slots { consumed = counters.consumed.load(ordering: .acquiring) }
        guard count - consumed < slots else {
            counters.written.store(count, ordering: .releasing)
            batch = 0
            spinLoopPause()
            continue
        }
        try memory.write(payload, at: (count % slots) * size)
        count += 1
        batch += 1
        if batch == publishEvery || batch * size >= quarter {
            counters.written.store(count, ordering: .releasing)
            batch = 0
        }
        if count & 255 == 0, DispatchTime.now().uptimeNanoseconds >= deadline { break }
    }
    counters.written.store(count, ordering: .releasing)
    counters.total.store(count, ordering: .releasing)
    reading.wait()
    let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    guard checksum.load() == count &* 0x5A else {
        throw CLIError("the copy bound's reader saw other bytes than were written")
    }
    return Double(count) / elapsed
}
