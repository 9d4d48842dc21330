import Foundation
import Synchronization
import VMBusChannel
import VMBusMemory
import VMBusWire

/// One live connection of a replay, either side: its socket, the channels whose rings it has
/// laid out or mapped, the doorbells both ways, and a thread that puts everything the peer
/// sends into the ``ReplayInbox`` — frames from the socket, packets from every channel's ring
/// (on its doorbell, and every millisecond in case a signal was not owed).
final class ReplayLink: Sendable {
    let socket: LocalSocket
    let inbox = ReplayInbox()
    let channels = Locked<[UInt32: Channel]>([:])
    /// Per channel: the doorbell we ring, and the one the peer rings.
    let doorbells = Locked<[UInt32: (toPeer: EventFD, fromPeer: EventFD)]>([:])
    let stopping = Atomic<Bool>(false)
    let poll: EventPoll
    /// Who the peer is, for reports.
    let peer: String

    init(socket: LocalSocket, peer: String) throws(MemoryError) {
        self.socket = socket
        self.peer = peer
        self.poll = try EventPoll()
        try self.poll.add(socket.fileDescriptor, token: 0)
    }

    /// Starts the receiving thread; `frame` handles each frame (after descriptors it does not
    /// take are closed) and returns whether to go on.
    func start(name: String, frame: @escaping @Sendable (SubstrateFrame, [Int32]) -> Bool) {
        ThreadName.start(name) { [self] in self.receive(frame) }
    }

    func stop() {
        self.stopping.store(true, ordering: .releasing)
        self.socket.shutdown()
        self.inbox.signal.notify()
    }

    /// A channel's doorbells: `toPeer` rung when we write, `fromPeer` watched.
    func addDoorbells(relid: UInt32, toPeer: EventFD, fromPeer: EventFD) {
        self.doorbells.withLock { $0[relid] = (toPeer, fromPeer) }
        try? self.poll.add(fromPeer.fileDescriptor, token: UInt64(relid) + 1)
    }

    /// Rings the peer for `relid`, if its doorbells exist yet.
    func ring(_ relid: UInt32) {
        self.doorbells.withLock { $0[relid]?.toPeer }?.signal()
    }

    /// Writes a packet to its channel's ring, waiting for room up to `timeout`.
    func send(_ packet: [UInt8], relid: UInt32, timeout: Duration) -> Bool {
        guard let channel = self.channels.withLock({ $0[relid] }) else { return false }
        let deadline = ContinuousClock.now + timeout
        while true {
            var written = false
            do {
                _ = try channel.sendBatch { (writer: inout ChannelBatchWriter) throws(ChannelError) in
                    written = try writer.write(encoded: packet[...])
                }
            } catch {
                return false
            }
            if written { return true }
            if ContinuousClock.now >= deadline { return false }
            self.inbox.waitForNews(.milliseconds(1))
        }
    }

    func receive(_ frame: (SubstrateFrame, [Int32]) -> Bool) {
        while !self.stopping.load(ordering: .acquiring) {
            guard let tokens = try? self.poll.wait(timeoutMilliseconds: 1) else { break }
            for token in tokens {
                if token == 0 {
                    if !self.receiveFrame(frame) { return }
                } else {
                    self.doorbells.withLock { $0[UInt32(token - 1)]?.fromPeer }?.drain()
                }
            }
            for channel in self.channels.withLock({ Array($0.values) }) {
                _ = try? channel.drainPackets { _, packet in
                    self.inbox.push(.packet(relid: channel.relid, bytes: (0..<packet.count).map { packet[$0] }))
                }
            }
        }
    }

    func receiveFrame(_ handle: (SubstrateFrame, [Int32]) -> Bool) -> Bool {
        guard let datagram = try? self.socket.receive(maximumLength: SubstrateFrame.maximumDatagram) else {
            self.inbox.end("the socket failed")
            return false
        }
        if datagram.isEndOfStream {
            self.inbox.end("the \(self.peer) closed the connection")
            return false
        }
        guard let frame = try? SubstrateFrame.parse(datagram.bytes[...], descriptors: datagram.fds.count) else {
            for fd in datagram.fds { DescriptorIO.close(fd) }
            self.inbox.end("a malformed frame from the \(self.peer)")
            return false
        }
        switch frame {
        case .message(_, _, let payload):
            self.inbox.push(.message(port: 0, bytes: payload))
            return true
        case .goodbye:
            self.inbox.push(.frame(kind: frame.kind.rawValue, bytes: datagram.bytes))
            self.inbox.end("the \(self.peer) said goodbye")
            return false
        default:
            let goOn = handle(frame, datagram.fds)
            self.inbox.push(.frame(kind: frame.kind.rawValue, bytes: datagram.bytes))
            return goOn
        }
    }
}
