import VMBusChannel
import VMBusMemory
import VMBusWire

/// What a guest substrate (in-process loopback, a socket to a host process, a hypervisor)
/// does for the guest bus. Calls must not block for long and must not call back into the bus
/// before they return: a substrate queues what it delivers.
public protocol GuestTransport: Sendable {
    /// Posts a channel message to the host (`HvPostMessage`); the status says whether the
    /// host's queue took it.
    func post(_ message: [UInt8], connectionID: UInt32) -> HvPostStatus
    /// Rings the host's doorbell for a channel: `HvSignalEvent` on the connection id, or the
    /// monitor-page bit (01 §1.2–§1.3).
    func signalHost(_ signalling: Signalling, relid: UInt32)
    /// The guest memory rings and buffers come from.
    var memory: GuestMemory { get }
    /// A channel closed or was rescinded: drop its doorbells (spec 09 §2.3).
    func channelClosed(relid: UInt32)
    /// The executor of the thread that takes the host's signals, if the substrate has one:
    /// every channel offers it as `Channel.taskExecutor`.
    var taskExecutor: (any TaskExecutor)? { get }
}

extension GuestTransport {
    /// Substrates whose doorbells need no tear-down.
    public func channelClosed(relid: UInt32) {}
    /// Substrates with no thread of their own for signals.
    public var taskExecutor: (any TaskExecutor)? { nil }
}

/// An offered device as the guest sees it (05 §1): its primary channel's offer.
public struct GuestDevice: Hashable, Sendable {
    /// The primary channel's relid.
    public var relid: UInt32
    /// The primary channel's offer.
    public var offer: OfferChannel
    /// The device class (offer `if_type`).
    public var classID: GUID { self.offer.interfaceType }
    /// The device instance (offer `if_instance`).
    public var instanceID: GUID { self.offer.interfaceInstance }
    /// Whether this is an hvsock channel (offer flag 0x2000), which only hvsock drivers take.
    public var isHvSock: Bool { self.offer.flags.contains(.tlnpiProvider) }
}

/// A guest driver: matched to devices by class GUID (05 §2.1), probed when one appears,
/// removed when it is rescinded or unbound.
public protocol GuestDriver: AnyObject, Sendable {
    /// The driver's name (what a per-device override names).
    var name: String { get }
    /// The device classes it drives.
    var classes: [GUID] { get }
    /// Whether it is an hvsock driver: those match hvsock channels only, and only they do.
    var isHvSockDriver: Bool { get }
    /// Binds a device: typically opens its channel. Throwing leaves the device unbound.
    func probe(_ device: GuestDevice, bus: GuestBus) async throws
    /// Unbinds a device (rescind, unbind, unload). Its channels are closed by the bus afterwards
    /// if the driver left them open.
    func remove(_ device: GuestDevice, bus: GuestBus) async
    /// A sub-channel of a bound device was offered (after the driver asked for it).
    func subChannelOffered(_ relid: UInt32, of device: GuestDevice, bus: GuestBus)
}

extension GuestDriver {
    public var isHvSockDriver: Bool { false }
    public func subChannelOffered(_ relid: UInt32, of device: GuestDevice, bus: GuestBus) {}
}

/// A guest bus operation that failed.
public enum BusError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Not connected to a host (connect first, or the connection was unloaded).
    case notConnected
    /// The host accepted none of the proposed versions.
    case connectionFailed
    /// The host answered with a failure status.
    case refused(NTStatus)
    /// The channel was rescinded while the operation waited.
    case rescinded(UInt32)
    /// No such channel, or it is not in a state that allows this.
    case invalidChannel(UInt32)
    /// Guest memory ran out or could not be mapped.
    case memory(MemoryError)
    /// A range list could not be described.
    case wire(WireError)
    /// The channel could not be set up.
    case channel(ChannelError)
    /// The same operation is already waiting for the host.
    case busy
    /// The host went away (its process died or closed the connection).
    case hostGone

    public var description: String {
        switch self {
        case .notConnected: return "not connected to a host"
        case .connectionFailed: return "the host accepted none of the proposed versions"
        case .refused(let status): return "the host refused: \(status)"
        case .rescinded(let relid): return "channel \(relid) was rescinded"
        case .invalidChannel(let relid): return "channel \(relid) does not allow this"
        case .memory(let error): return "guest memory: \(error)"
        case .wire(let error): return "cannot describe memory: \(error)"
        case .channel(let error): return "channel: \(error)"
        case .busy: return "the same request is already in flight"
        case .hostGone: return "the host is gone"
        }
    }
}
