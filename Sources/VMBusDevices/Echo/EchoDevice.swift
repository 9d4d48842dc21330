import VMBusMemory
import VMBusChannel
import VMBusHost
import VMBusWire

/// The echo device, swift-vmbus's own test device (not a Hyper-V class): the host answers
/// every in-band packet with the same payload — as a completion with the packet's transaction
/// id if one was requested, else as an in-band packet. Payloads come back padded to 8 bytes,
/// as every VMBus packet is.
public enum Echo {
    /// Its class GUID (a random GUID owned by this project).
    public static let classID = GUID("9c54a7b3-4f5e-4d0d-8b8e-2f1c0a6e0a01") ?? .zero
    /// The in-band payload that asks the host for sub-channels: this magic, then the count
    /// as a little-endian u16 (the host answers with the count it enabled, as a u16).
    public static let subChannelRequest: [UInt8] = Array("SUBCHANS".utf8)

    /// The answer to a sub-channel request (the count `enable` returns, as a u16), or `nil`
    /// when `payload` is not one.
    static func subChannelAnswer<C: Collection<UInt8>>(to payload: C, enable: (UInt16) -> UInt16) -> [UInt8]? {
        guard payload.starts(with: Self.subChannelRequest), payload.count >= 10 else { return nil }
        let at = payload.index(payload.startIndex, offsetBy: 8)
        let enabled = enable(UInt16(payload[at]) | UInt16(payload[payload.index(after: at)]) << 8)
        return [UInt8(truncatingIfNeeded: enabled), UInt8(truncatingIfNeeded: enabled >> 8)]
    }
}

/// The host side of the echo device.
public final class EchoDevice: HostDevice {
    public let offer: HostOffer
    let served = Locked<[UInt32: Task<Void, Never>]>([:])
    let interruptServers = Locked<[UInt32: EchoInterruptServer]>([:])
    let bus = Locked<HostBus?>(nil)
    /// Answers from the channel's interrupt handler instead of a reader task.
    public let interruptDriven: Bool

    /// - Parameters:
    ///   - instance: the device instance GUID.
    ///   - maximumSubChannels: sub-channels the guest may ask for.
    ///   - wantsMonitor: ask for monitored notification.
    ///   - interruptDriven: answer on the thread that saw the guest's signal
    ///     (`Channel.onInterrupt(_:)`) rather than from a task: fewer thread hand-offs per
    ///     round trip.
    public init(instance: GUID, maximumSubChannels: UInt16 = 0, wantsMonitor: Bool = false, interruptDriven: Bool = false) {
        self.interruptDriven = interruptDriven
        self.offer = HostOffer(
            interfaceType: Echo.classID, interfaceInstance: instance, maximumSubChannels: maximumSubChannels,
            wantsMonitor: wantsMonitor)
    }

    /// The bus that sub-channel requests go to (set when registering).
    public func attach(to bus: HostBus) { self.bus.withLock { $0 = bus } }

    public func opened(_ channel: Channel, info: HostChannelInfo) {
        let bus = self.bus.withLock { $0 }
        if self.interruptDriven {
            var enable: (@Sendable (UInt16) -> UInt16)?
            if info.subChannelIndex == 0, let bus {
                let primary = info.relid
                enable = { count in UInt16(bus.enableSubChannels(primary: primary, count: count).count) }
            }
            let server = EchoInterruptServer(channel: channel, enableSubChannels: enable)
            self.interruptServers.withLock { $0[info.relid] = server }
            server.start()
            return
        }
        // Answering never blocks, so the reader runs on the thread that takes the guest's
        // signals where the substrate has one: resumed there, it answers without a hand-off.
        let task = Task(executorPreference: channel.taskExecutor) {
            _ = try? await channel.receive { packet in
                guard packet.descriptor.type == .dataInBand else { return }
                var answer = packet.payload
                // A sub-channel request on the primary: enable them, answer with the count.
                if info.subChannelIndex == 0, let bus,
                    let reply = Echo.subChannelAnswer(
                        to: answer, enable: { UInt16(bus.enableSubChannels(primary: info.relid, count: $0).count) })
                {
                    answer = reply[...]
                }
                // The synchronous try first: the common case (room in the ring) then costs no
                // suspension point.
                if packet.descriptor.flags.contains(.completionRequested) {
                    let id = packet.descriptor.transactionID
                    if try !channel.trySend(completion: answer, transactionID: id) {
                        try await channel.send(completion: answer, transactionID: id)
                    }
                } else if try !channel.trySend(inBand: answer) {
                    try await channel.send(inBand: answer)
                }
            }
        }
        self.served.withLock { $0[info.relid] = task }
    }

    public func closed(relid: UInt32) {
        _ = self.served.withLock { $0.removeValue(forKey: relid) }
        // The handler holds the server and the channel holds the handler: break the cycle.
        self.interruptServers.withLock { $0.removeValue(forKey: relid) }?.stop()
    }
}

/// Echo channels carry no state of their own beyond their rings: a held channel's answers are
/// either sent or, for the interrupt-driven server, waiting in its backlog — which quiescing
/// empties before the hand-over.
extension EchoDevice: ServiceableDevice {
    public func quiesce(timeout: Duration) async -> Bool {
        // Short: the backlog drains as fast as the guest reads.
        await pollUntil(timeout: timeout) { self.interruptServers.withLock { $0.values.allSatisfy(\.isIdle) } }
    }
}
