import VMBusChannel
import VMBusMemory
import VMBusWire

/// Serves one echo channel from the channel's interrupt handler (``Channel/onInterrupt(_:)``,
/// Linux's `HV_CALL_ISR` style): each packet is answered on the thread that saw the guest's
/// signal, with no task switch in between. Answers that find the ring full wait, in order, in a
/// backlog a task sends as room appears; later packets queue behind them so order holds.
final class EchoInterruptServer: @unchecked Sendable {
    // Unchecked: `scratch` is touched only by the handler, which never runs twice at once;
    // everything else is immutable or locked.
    let channel: Channel
    /// Enables sub-channels for a request on the primary; `nil` elsewhere.
    let enableSubChannels: (@Sendable (UInt16) -> UInt16)?
    var scratch: [UInt8] = []

    struct Backlog {
        var queue: [(bytes: [UInt8], transactionID: UInt64?)] = []
        var sending = false
    }
    let backlog = Locked(Backlog())

    init(channel: Channel, enableSubChannels: (@Sendable (UInt16) -> UInt16)?) {
        self.channel = channel
        self.enableSubChannels = enableSubChannels
    }

    func start() { self.channel.onInterrupt { [self] in self.serve() } }

    func stop() { self.channel.onInterrupt(nil) }

    func serve() {
        _ = try? self.channel.drain { descriptor, payload in
            guard descriptor.type == .dataInBand else { return }
            self.scratch.removeAll(keepingCapacity: true)
            self.scratch.append(span: payload)
            if let enable = self.enableSubChannels, let reply = Echo.subChannelAnswer(to: self.scratch, enable: enable) {
                self.scratch = reply
            }
            let id = descriptor.flags.contains(.completionRequested) ? descriptor.transactionID : nil
            self.answer(id)
        }
    }

    /// Sends `scratch` now if nothing waits before it and the ring has room, else queues a copy.
    func answer(_ transactionID: UInt64?) {
        let queued = self.backlog.withLock { !$0.queue.isEmpty }
        if !queued {
            let sent: Bool?
            if let transactionID {
                sent = try? self.channel.trySend(completion: self.scratch[...], transactionID: transactionID)
            } else {
                sent = try? self.channel.trySend(inBand: self.scratch[...])
            }
            // Sent, or the channel is closed (nothing more to do).
            if sent != false { return }
        }
        let start = self.backlog.withLock { backlog in
            backlog.queue.append((self.scratch, transactionID))
            defer { backlog.sending = true }
            return !backlog.sending
        }
        if start { Task { await self.sendBacklog() } }
    }

    /// Sends the queued answers in order, waiting for room; removes each only once sent, so
    /// the handler sees a non-empty queue until every earlier answer is out.
    func sendBacklog() async {
        while let next = self.backlog.withLock({ $0.queue.first }) {
            do {
                if let id = next.transactionID {
                    try await self.channel.send(completion: next.bytes[...], transactionID: id)
                } else {
                    try await self.channel.send(inBand: next.bytes[...])
                }
            } catch {
                self.backlog.withLock { $0 = Backlog() }
                return
            }
            let more = self.backlog.withLock { backlog in
                backlog.queue.removeFirst()
                if backlog.queue.isEmpty { backlog.sending = false }
                return !backlog.queue.isEmpty
            }
            if !more { return }
        }
    }
}

extension EchoInterruptServer {
    /// No answer waits in the backlog: everything this server owes the guest is in the ring.
    var isIdle: Bool { self.backlog.withLock { $0.queue.isEmpty && !$0.sending } }
}
