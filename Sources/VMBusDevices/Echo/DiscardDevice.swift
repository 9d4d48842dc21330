import VMBusMemory
import VMBusChannel
import VMBusHost
import VMBusWire

/// The discard device, swift-vmbus's own sink for one-way throughput: the host reads and drops
/// every packet, answering only those that request a completion (so a sender learns when
/// everything before arrived — packets are read in order).
public enum Discard {
    /// Its class GUID (owned by this project).
    public static let classID = GUID("9c54a7b3-4f5e-4d0d-8b8e-2f1c0a6e0a02") ?? .zero
}

/// The host side of the discard device.
public final class DiscardDevice: HostDevice {
    public let offer: HostOffer
    /// Packets are dropped in place by the channel's interrupt handler instead of a reader task.
    public let interruptDriven: Bool
    let served = Locked<[UInt32: Task<Void, Never>]>([:])

    /// - Parameters:
    ///   - instance: the device's instance GUID; its class is ``Discard/classID``.
    ///   - wantsMonitor: ask for monitored notification (MNF).
    ///   - interruptDriven: drop packets where they lie, on the thread that saw the guest's
    ///     signal (`Channel.onInterrupt(_:)`), with no copy and no task switch — a sink as
    ///     cheap as the bus allows, for throughput figures.
    public init(instance: GUID, wantsMonitor: Bool = false, interruptDriven: Bool = false) {
        self.offer = HostOffer(interfaceType: Discard.classID, interfaceInstance: instance, wantsMonitor: wantsMonitor)
        self.interruptDriven = interruptDriven
    }

    public func opened(_ channel: Channel, info: HostChannelInfo) {
        if self.interruptDriven {
            channel.onInterrupt { Self.drop(channel) }
            return
        }
        // Dropping never blocks: the reader runs on the thread that takes the guest's signals
        // where the substrate has one (`Channel.taskExecutor`).
        let task = Task(executorPreference: channel.taskExecutor) {
            _ = try? await channel.receive { packet in
                guard packet.descriptor.flags.contains(.completionRequested) else { return }
                try await channel.send(completion: [][...], transactionID: packet.descriptor.transactionID)
            }
        }
        self.served.withLock { $0[info.relid] = task }
    }

    /// Drains the ring in place; a packet asking for a completion gets it once everything
    /// before it was read (the drain publishes the room first), from a task if the ring back is
    /// full — order with the next drain does not matter, completions carry their own ids.
    static func drop(_ channel: Channel) {
        var asked: [UInt64] = []
        _ = try? channel.drain { descriptor, _ in
            if descriptor.flags.contains(.completionRequested) { asked.append(descriptor.transactionID) }
        }
        for id in asked where (try? channel.trySend(completion: [][...], transactionID: id)) == false {
            Task { try? await channel.send(completion: [][...], transactionID: id) }
        }
    }

    public func closed(relid: UInt32) {
        _ = self.served.withLock { $0.removeValue(forKey: relid) }
    }
}

/// A sink keeps nothing: its held channels are the whole of its state.
extension DiscardDevice: ServiceableDevice {}
