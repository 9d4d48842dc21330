import VMBusRing
import VMBusWire

/// A writer and a reader over one flat ring, as a guest and host would share it.
struct RingPair {
    let memory: FlatRingMemory
    var writer: OutgoingRing<FlatRingMemory>
    var reader: IncomingRing<FlatRingMemory>

    /// A fresh ring; with `start`, both indices begin there (every wrap position is reachable).
    init(ringSize: Int, start: Int = 0, maximumPacketLength: Int? = nil) throws {
        self.memory = FlatRingMemory(ringSize: ringSize)
        self.memory.initializeControlPage()
        self.memory.store(.writeIndex, UInt32(start), ordering: .relaxed)
        self.memory.store(.readIndex, UInt32(start), ordering: .relaxed)
        self.writer = try OutgoingRing(memory: self.memory)
        self.reader = try IncomingRing(memory: self.memory, maximumPacketLength: maximumPacketLength)
    }

    /// Writes and commits one in-band packet; returns (written, signal).
    mutating func send(_ payload: [UInt8], transactionID: UInt64 = 0) throws -> (Bool, Bool) {
        let written = try self.writer.write(transactionID: transactionID, payload: payload[...])
        return (written, try self.writer.commit())
    }

    /// Reads every available packet's payload, then commits.
    mutating func drain() throws -> [[UInt8]] {
        var payloads: [[UInt8]] = []
        var buffer: [UInt8] = []
        while let packet = try self.reader.next() {
            self.reader.copyPayload(of: packet, into: &buffer)
            payloads.append(buffer)
        }
        _ = try self.reader.commit()
        return payloads
    }
}

/// `payload` padded with zeros to a multiple of 8, as it comes back out of a ring.
func padded(_ payload: [UInt8]) -> [UInt8] {
    payload + [UInt8](repeating: 0, count: (8 - payload.count % 8) % 8)
}
