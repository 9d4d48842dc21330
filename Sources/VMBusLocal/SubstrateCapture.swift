import VMBusMemory
import VMBusWire

extension CaptureTap {
    /// Records a substrate frame sent or received. MESSAGE frames are left to the bus, which
    /// records their payload as a channel message (the frame would only repeat it).
    func frame(outgoing: Bool, _ frame: SubstrateFrame) {
        if case .message = frame { return }
        // Received frames were parsed exactly, so encoding one again gives the bytes that came.
        self.frame(outgoing: outgoing, kind: frame.kind.rawValue, frame.encode()[...])
    }
}

extension LocalSocket {
    /// Sends a frame (with `fds` as SCM_RIGHTS), recording it first when `capture` is set.
    func send(_ frame: SubstrateFrame, fds: [Int32] = [], capture: CaptureTap?) throws(MemoryError) {
        capture?.frame(outgoing: true, frame)
        try self.send(frame.encode(), fds: fds)
    }
}
