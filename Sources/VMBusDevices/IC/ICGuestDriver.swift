import VMBusMemory
import VMBusChannel
import VMBusGuest
import VMBusWire

/// What a guest integration service does with one host request (06 §1.6).
public enum ICDisposition: Sendable {
    /// Answer with this status (the message, as the service edited it, goes back).
    case reply(ICStatus)
    /// Answer, then run `action` (Linux's shutdown answers first and acts afterwards). The
    /// channel's next request waits for it.
    case replyThen(ICStatus, @Sendable () async -> Void)
    /// No answer: the request was too short for its type (06 §4, §5.4).
    case drop
}

/// The guest side of one integration service: its class, its versions, its answers.
public protocol ICGuestService: AnyObject, Sendable {
    /// The driver name (what an override names).
    var name: String { get }
    /// The device class.
    var classID: GUID { get }
    /// Service versions, preferred first.
    var serviceVersions: [ICVersion] { get }
    /// Framework versions, preferred first (Linux: 3.0, 1.0).
    var frameworkVersions: [ICVersion] { get }
    /// The largest packet accepted (Linux: 4 KiB for heartbeat, shutdown and timesync).
    var maximumPacketLength: Int { get }
    /// Answers one request of the negotiated `version`. The service edits `message` in place
    /// (its `ICMessage.remainder` goes back after the header, as long as it came); the
    /// driver sets the response flags and status.
    func answer(_ message: inout ICMessage, version: ICVersion) -> ICDisposition
    /// What the driver calls: ``answer(_:version:)`` unless the service has to wait for
    /// something slow (a VSS hook), which it must do here, suspended, never blocking a thread
    /// the other services need.
    func respond(to message: inout ICMessage, version: ICVersion) async -> ICDisposition
}

extension ICGuestService {
    public func respond(to message: inout ICMessage, version: ICVersion) async -> ICDisposition {
        self.answer(&message, version: version)
    }
    public var frameworkVersions: [ICVersion] { ICVersions.linuxFramework }
    public var maximumPacketLength: Int { 4096 }
}

/// Counters of a guest service.
public struct ICGuestStatistics: Hashable, Sendable {
    /// Requests answered (negotiation included).
    public var answered: UInt64 = 0
    /// Packets dropped: malformed, too short, before negotiation.
    public var dropped: UInt64 = 0
}

/// A guest driver that runs an ``ICGuestService``: opens its channel with the utility ring
/// sizes, answers the host's negotiation by Linux's algorithm (byte-exact, in place), then
/// hands every request to the service and sends back the edited buffer with flags 0x05,
/// echoing the packet's transaction id.
public final class ICGuestDriver: GuestDriver {
    /// The service whose requests this driver hands on.
    public let service: any ICGuestService
    public var name: String { self.service.name }
    public var classes: [GUID] { [self.service.classID] }

    struct State {
        var negotiated: (framework: ICVersion, service: ICVersion)?
        var statistics = ICGuestStatistics()
        var channels: [UInt32: Channel] = [:]
    }

    let state = Locked(State())

    /// A driver for `service`; register it on the guest bus.
    public init(_ service: any ICGuestService) { self.service = service }

    /// The versions negotiated with the host, once it asked.
    public var negotiated: (framework: ICVersion, service: ICVersion)? { self.state.withLock { $0.negotiated } }

    /// Requests answered (negotiation included) and packets dropped since the driver was created.
    public var statistics: ICGuestStatistics { self.state.withLock { $0.statistics } }

    public func probe(_ device: GuestDevice, bus: GuestBus) async throws {
        // No ring-level packet limit: an oversize packet is well-formed, just too big for the
        // service, so it is dropped and counted here instead of failing the channel.
        let channel = try await bus.open(device.relid, pages: .utility)
        self.state.withLock { $0.channels[device.relid] = channel }
        Task { _ = try? await channel.receive { packet in await self.handle(packet, on: channel) } }
    }

    /// Serves the service on a channel opened elsewhere (a `uio_hv_generic` device, where the
    /// kernel owns the control plane) until the channel closes; returns why it closed.
    public func serve(_ channel: Channel) async -> CloseReason {
        (try? await channel.receive { packet in await self.handle(packet, on: channel) }) ?? .closedLocally
    }

    public func remove(_ device: GuestDevice, bus: GuestBus) async {
        let channel = self.state.withLock { $0.channels.removeValue(forKey: device.relid) }
        channel?.close(.closedLocally)
    }

    func handle(_ packet: ChannelPacket, on channel: Channel) async {
        guard packet.descriptor.type == .dataInBand, packet.payload.count <= self.service.maximumPacketLength,
            let response = await self.response(to: packet.payload)
        else {
            self.state.withLock { $0.statistics.dropped += 1 }
            return
        }
        do {
            try await channel.send(inBand: response.bytes[...], transactionID: packet.descriptor.transactionID)
            self.state.withLock { $0.statistics.answered += 1 }
            await response.after?()
        } catch {
            return  // the channel closed
        }
    }

    /// The answer to one payload, or `nil` to send none.
    func response(to payload: ArraySlice<UInt8>) async -> (bytes: [UInt8], after: (@Sendable () async -> Void)?)? {
        guard var message = try? ICMessage(payload: payload) else { return nil }
        if message.header.messageType == .negotiate {
            guard let (bytes, chosen) = try? ICNegotiation.respond(
                to: payload, framework: self.service.frameworkVersions, service: self.service.serviceVersions)
            else {
                // Impossible counts or lists: "no common version", as Linux answers them.
                return (try? ICNegotiation.failureResponse(to: payload)).map { ($0, nil) }
            }
            self.state.withLock { $0.negotiated = chosen }
            return (bytes, nil)
        }
        guard let version = self.state.withLock({ $0.negotiated?.service }) else { return nil }
        let disposition = await self.service.respond(to: &message, version: version)
        let status: ICStatus
        var after: (@Sendable () async -> Void)?
        switch disposition {
        case .drop: return nil
        case .reply(let s): status = s
        case .replyThen(let s, let action):
            status = s
            after = action
        }
        message.header.flags = .guestResponse
        message.header.status = status
        return (message.encode(), after)
    }
}
