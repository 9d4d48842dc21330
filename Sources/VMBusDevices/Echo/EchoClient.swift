import VMBusMemory
import VMBusChannel
import VMBusGuest
import VMBusWire

/// The guest side of the echo device: a driver that opens each echo device's channel and
/// offers ``echo(_:device:)``.
public final class EchoClient: GuestDriver {
    public let name: String
    public var classes: [GUID] { [Echo.classID] }
    /// Ring sizes the client opens with.
    public let pages: RingPages
    /// The options every channel it opens gets (delivery mode, limits, polling).
    public let options: ChannelOptions
    /// Completions are taken from the channel's interrupt handler instead of a reader task.
    public let interruptDriven: Bool

    struct Bound {
        var device: GuestDevice
        var channel: Channel
        /// The reader task; `nil` when interrupt-driven.
        var reader: Task<Void, Never>?
    }

    let bound = Locked<[UInt32: Bound]>([:])
    struct SubChannelState: ~Copyable {
        var offered: [UInt32: [UInt32]] = [:]
        var waiters: [(primary: UInt32, count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }
    let subChannels = Locked(SubChannelState())

    /// - Parameter name: the driver's name, which a per-device driver override names
    ///   (`GuestBus.setDriverOverride(instance:driver:)`).
    /// - Parameter pages: the ring sizes every echo channel is opened with.
    /// - Parameter options: the options of every channel it opens.
    /// - Parameter interruptDriven: take answers on the thread that saw the host's signal
    ///   (`Channel.onInterrupt(_:)`) rather than in a reader task: one thread hand-off less
    ///   per round trip.
    public init(
        name: String = "echo", pages: RingPages = .standard, options: ChannelOptions = ChannelOptions(), interruptDriven: Bool = false
    ) {
        self.interruptDriven = interruptDriven
        self.name = name
        self.pages = pages
        self.options = options
    }

    public func probe(_ device: GuestDevice, bus: GuestBus) async throws {
        let channel = try await bus.open(device.relid, pages: self.pages, options: self.options)
        // The reader (or the handler's drain) routes completions to the waiting echo requests;
        // other packets are dropped.
        var reader: Task<Void, Never>?
        if self.interruptDriven {
            channel.onInterrupt { _ = try? channel.drain { _, _ in } }
        } else {
            // Routing a completion never blocks: the reader runs on the thread that takes the
            // host's signals, where the substrate has one (`Channel.taskExecutor`).
            reader = Task(executorPreference: channel.taskExecutor) { _ = try? await channel.receive { _ in } }
        }
        self.bound.withLock { $0[device.relid] = Bound(device: device, channel: channel, reader: reader) }
    }

    public func remove(_ device: GuestDevice, bus: GuestBus) async {
        let bound = self.bound.withLock { $0.removeValue(forKey: device.relid) }
        bound?.channel.onInterrupt(nil)
        bound?.channel.close(.closedLocally)
        await bound?.reader?.value
    }

    public func subChannelOffered(_ relid: UInt32, of device: GuestDevice, bus: GuestBus) {
        let ready: [CheckedContinuation<Void, Never>] = self.subChannels.withLock { state in
            state.offered[device.relid, default: []].append(relid)
            let have = state.offered[device.relid]?.count ?? 0
            let ready = state.waiters.filter { $0.primary == device.relid && $0.count <= have }.map(\.continuation)
            state.waiters.removeAll { $0.primary == device.relid && $0.count <= have }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    /// Waits until at least `count` sub-channels of a device were offered. The host's answer
    /// to a request travels on the channel, the offers as control messages: between processes
    /// either may arrive first.
    public func waitForSubChannels(of relid: UInt32, count: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now: Bool = self.subChannels.withLock { state in
                if (state.offered[relid]?.count ?? 0) >= count { return true }
                state.waiters.append((relid, count, continuation))
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Devices this client is bound to, by relid.
    public var devices: [GuestDevice] { self.bound.withLock { $0.values.map(\.device).sorted { $0.relid < $1.relid } } }

    /// The channel of a bound device.
    public func channel(_ relid: UInt32) -> Channel? { self.bound.withLock { $0[relid]?.channel } }

    /// The channel of `relid`, or of the first bound device when `nil`.
    func channel(for relid: UInt32?) throws(BusError) -> Channel {
        let channel = self.bound.withLock { bound in relid.flatMap { bound[$0] } ?? bound.values.min { $0.device.relid < $1.device.relid } }?.channel
        guard let channel else { throw BusError.invalidChannel(relid ?? 0) }
        return channel
    }

    /// Sub-channels offered so far for a device.
    public func subChannels(of relid: UInt32) -> [UInt32] { self.subChannels.withLock { $0.offered[relid] ?? [] } }

    /// Sends `bytes` to a device and returns what came back (trimmed to the length sent).
    /// - Parameter bytes: the payload; it travels padded to 8 bytes, and the answer is cut back
    ///   to this length.
    /// - Parameter relid: the device; by default the first bound one.
    public func echo(_ bytes: [UInt8], device relid: UInt32? = nil) async throws -> [UInt8] {
        let channel = try self.channel(for: relid)
        return Array(try await channel.request(bytes[...]).prefix(bytes.count))
    }

    /// Asks the host for `count` sub-channels over the echo protocol and waits until their
    /// offers arrived.
    /// - Returns: how many the host enabled.
    public func requestSubChannels(_ count: UInt16, device relid: UInt32) async throws -> Int {
        guard let channel = self.channel(relid) else { throw BusError.invalidChannel(relid) }
        let answer = try await channel.request((Echo.subChannelRequest + [UInt8(count & 0xFF), UInt8(count >> 8)])[...])
        guard answer.count >= 2 else { return 0 }
        let enabled = Int(answer[0]) | Int(answer[1]) << 8
        await self.waitForSubChannels(of: relid, count: enabled)
        return enabled
    }
}
