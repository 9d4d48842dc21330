import VMBusMemory
import VMBusRing
import VMBusWire

/// A doorbell that records every ring before passing it on: installed only when a channel is
/// captured, so an uncaptured channel rings its doorbell directly.
struct CapturingDoorbell: ChannelDoorbell {
    let inner: any ChannelDoorbell
    let capture: CaptureTap
    let relid: UInt32

    func ring() {
        self.capture.doorbell(outgoing: true, relid: self.relid)
        self.inner.ring()
    }
}

extension CaptureTap {
    /// Records the packet of `length` bytes (descriptor through padding) just written to
    /// `ring`, read back from the ring itself: the capture sees exactly the bytes the peer will.
    /// The packet is not yet published, so the peer has no business writing there.
    func sent(_ ring: borrowing OutgoingRing<SharedRingMemory>, relid: UInt32, length: Int) {
        let dataSize = ring.dataSize
        // The packet and its 8-byte trailer end at the private write position.
        let start = (ring.pendingWriteOffset - length - RingControlPage.trailerSize + 2 * dataSize) % dataSize
        let memory = ring.memory
        self.packet(outgoing: true, relid: relid, length: length) { buffer, count in
            memory.copyOut(from: start, count: count, into: &buffer, at: 0)
        }
    }

    /// Records a packet taken from `ring`: the validated descriptor (not a second read of
    /// shared memory), then the rest of the packet as the ring holds it.
    func received(_ packet: IncomingPacket, from ring: borrowing IncomingRing<SharedRingMemory>, relid: UInt32) {
        let memory = ring.memory
        let rest = (packet.offset + PacketDescriptor.wireSize) % ring.dataSize
        self.packet(outgoing: false, relid: relid, length: packet.length) { buffer, count in
            let words = packet.descriptor.words
            for i in 0..<min(count, PacketDescriptor.wireSize) {
                buffer[i] = UInt8(truncatingIfNeeded: (i < 8 ? words.0 : words.1) >> (8 * UInt64(i % 8)))
            }
            if count > PacketDescriptor.wireSize {
                memory.copyOut(from: rest, count: count - PacketDescriptor.wireSize, into: &buffer, at: PacketDescriptor.wireSize)
            }
        }
    }
}

extension CaptureCloseReason {
    init(_ reason: CloseReason) {
        switch reason {
        case .closedLocally: self = .closedLocally
        case .closedByPeer: self = .closedByPeer
        case .rescinded: self = .rescinded
        case .ringCorrupted: self = .ringCorrupted
        case .connectionLost: self = .connectionLost
        }
    }
}
