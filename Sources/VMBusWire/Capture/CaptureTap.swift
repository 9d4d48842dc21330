/// Where capture records go (VMBusCapture's `CaptureSink` is one). The hooks in the channel,
/// the buses and the substrates call it through a ``CaptureTap``; it is defined here, at the
/// bottom of the stack, so those layers need not depend on the capture library.
public protocol CaptureRecorder: AnyObject, Sendable {
    /// The most bytes of data a record keeps after its header (the snap length).
    var snapLength: Int { get }

    /// Records one event. `fill` is called at most once, with a buffer of at least `count`
    /// bytes, `count` being the smaller of the header's original length and ``snapLength``; it
    /// writes the record's first `count` data bytes to `buffer[0..<count]`.
    ///
    /// Called on the data path, often under a channel lock: it must not block or wait for I/O.
    /// A recorder with no room drops the record (and counts it) without calling `fill`.
    func record(_ header: CaptureRecordHeader, _ fill: (inout [UInt8], Int) -> Void)
}

/// One side's hook into a capture for one guest connection: which recorder, which connection
/// number, and whether the host or the guest is looking (that and "outgoing" give the
/// direction). A layer that can capture keeps a `CaptureTap?`, `nil` by default, so capture
/// costs one branch when it is off.
public struct CaptureTap: Sendable {
    /// Where this side's records go.
    public let recorder: any CaptureRecorder
    /// The capture's number for this guest connection.
    public let connection: UInt32
    /// Which side is looking: with a record's "outgoing" flag it gives the direction.
    public let observer: CaptureObserver

    /// A tap for one side of connection `connection` of `recorder`.
    public init(recorder: any CaptureRecorder, connection: UInt32, observer: CaptureObserver) {
        self.recorder = recorder
        self.connection = connection
        self.observer = observer
    }

    /// The direction of something this side sends (`outgoing`) or receives.
    public func direction(outgoing: Bool) -> CaptureDirection {
        (self.observer == .host) == outgoing ? .hostToGuest : .guestToHost
    }

    /// A channel message sent or received; `port` is the connection id posted to (guest →
    /// host) or the SINT (host → guest), 0 if unknown.
    public func message(outgoing: Bool, port: UInt32, _ bytes: ArraySlice<UInt8>) {
        self.record(.channelMessage, outgoing: outgoing, port: port, bytes: bytes)
    }

    /// A substrate frame sent or received (whole: header and body), of frame kind `kind`.
    public func frame(outgoing: Bool, kind: UInt16, _ bytes: ArraySlice<UInt8>) {
        self.record(.substrateFrame, outgoing: outgoing, port: UInt32(kind), bytes: bytes)
    }

    /// A ring packet of `length` bytes (descriptor through padding) sent or received on
    /// `relid`; `fill` copies its first `count` bytes (see ``CaptureRecorder/record(_:_:)``).
    public func packet(outgoing: Bool, relid: UInt32, length: Int, _ fill: (inout [UInt8], Int) -> Void) {
        let header = CaptureRecordHeader(
            kind: .ringPacket, direction: self.direction(outgoing: outgoing), observer: self.observer,
            connection: self.connection, relid: relid, originalLength: UInt32(clamping: length))
        self.recorder.record(header, fill)
    }

    /// A doorbell this side rang (`outgoing`) or that rang on this side, for `relid`.
    public func doorbell(outgoing: Bool, relid: UInt32) {
        self.record(.doorbell, outgoing: outgoing, relid: relid, bytes: [][...])
    }

    /// Bytes a device wrote to guest memory for the peer (`outgoing`) or read from it, at
    /// `offset` into GPADL `gpadl` (or at guest physical address `offset` when `gpadl` is 0),
    /// on channel `relid` (``CaptureRecordKind/bufferData``).
    public func bufferData(outgoing: Bool, relid: UInt32, gpadl: UInt32, offset: UInt64, _ bytes: ArraySlice<UInt8>) {
        let header = CaptureRecordHeader(
            kind: .bufferData, direction: self.direction(outgoing: outgoing), observer: self.observer,
            connection: self.connection, relid: relid, originalLength: UInt32(clamping: Self.bufferPrefix + bytes.count))
        self.recorder.record(header) { buffer, count in
            var prefix = WireWriter(capacity: Self.bufferPrefix)
            prefix.writeUInt32(gpadl)
            prefix.writeUInt32(0)
            prefix.writeUInt64(offset)
            let head = min(count, Self.bufferPrefix)
            buffer.replaceSubrange(0..<head, with: prefix.bytes[0..<head])
            if count > head { buffer.replaceSubrange(head..<count, with: bytes.prefix(count - head)) }
        }
    }

    /// An operator's request to the host for this connection's guest: the command, its
    /// parameters, and the bytes of a host file it reads (``CaptureRecordKind/operatorRequest``).
    public func operatorRequest(_ command: String, _ parameters: [String], attachment: [UInt8] = []) {
        let bytes = OperatorRequest(command: command, parameters: parameters, attachment: attachment).encode()
        self.record(.operatorRequest, outgoing: self.observer == .host, bytes: bytes[...])
    }

    /// The bytes before a buffer-data record's data: GPADL handle, zero, offset.
    public static let bufferPrefix = 16

    /// A channel's rings were attached on this side.
    public func channelOpened(relid: UInt32, outgoingRingBytes: Int, incomingRingBytes: Int) {
        self.record(.channelOpen, outgoing: true, relid: relid, words: UInt32(clamping: outgoingRingBytes), UInt32(clamping: incomingRingBytes))
    }

    /// A channel stopped on this side.
    public func channelClosed(relid: UInt32, reason: CaptureCloseReason) {
        self.record(.channelClose, outgoing: true, relid: relid, words: reason.rawValue)
    }

    func record(_ kind: CaptureRecordKind, outgoing: Bool, relid: UInt32 = 0, port: UInt32 = 0, bytes: ArraySlice<UInt8>) {
        let header = CaptureRecordHeader(
            kind: kind, direction: self.direction(outgoing: outgoing), observer: self.observer, connection: self.connection,
            relid: relid, port: port, originalLength: UInt32(clamping: bytes.count))
        self.recorder.record(header) { buffer, count in
            buffer.replaceSubrange(0..<count, with: bytes.prefix(count))
        }
    }

    func record(_ kind: CaptureRecordKind, outgoing: Bool, relid: UInt32, words: UInt32...) {
        let header = CaptureRecordHeader(
            kind: kind, direction: self.direction(outgoing: outgoing), observer: self.observer, connection: self.connection,
            relid: relid, originalLength: UInt32(words.count * 4))
        self.recorder.record(header) { buffer, count in
            for i in 0..<count { buffer[i] = UInt8(truncatingIfNeeded: words[i / 4] >> (8 * UInt32(i % 4))) }
        }
    }
}
