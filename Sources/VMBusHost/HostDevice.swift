import VMBusChannel
import VMBusMemory
import VMBusWire

/// What a host substrate (in-process loopback, a socket to a guest process, a hypervisor)
/// does for the host bus. Calls must not block, and must not call back into the bus before
/// they return: a substrate queues what it delivers.
public protocol HostTransport: Sendable {
    /// Delivers a channel message to the guest's SynIC message slot.
    func post(toGuest message: [UInt8])
    /// Sets the channel's event-flag bit and interrupts the guest (01 §1.2).
    func signalGuest(relid: UInt32)
    /// Maps the pages a GPADL names, every page checked against guest memory first.
    func mapGpadl(_ ranges: [GpaRange]) throws(MemoryError) -> MappedMemory
    /// A channel is about to be reported open: set up its doorbells (spec 09 §2.3 sends them
    /// before OpenResult). Called in message order, before the OpenResult is posted.
    func openDoorbells(relid: UInt32, connectionID: UInt32)
    /// A channel closed, was rescinded or went with the connection: drop its doorbells.
    func closeDoorbells(relid: UInt32)
    /// The guest's number on a substrate that serves several (the connection id), the same
    /// after a takeover: devices derive their identity (a NIC's address) from it.
    var guestNumber: Int? { get }
    /// The executor of the thread that takes the guest's signals, if the substrate has one:
    /// every channel offers it as `Channel.taskExecutor`.
    var taskExecutor: (any TaskExecutor)? { get }
}

extension HostTransport {
    /// Substrates that serve one guest.
    public var guestNumber: Int? { nil }
    /// Substrates with no thread of their own for signals.
    public var taskExecutor: (any TaskExecutor)? { nil }
}

/// A transport that can copy guest memory directly (it has the whole of it mapped): GPA-direct
/// data is read without mapping its pages anew for each packet.
public protocol GuestMemoryReader: Sendable {
    /// Copies what `range` names into `buffer[at...]`, every page checked against guest memory.
    func readGuest(_ range: GpaRange, into buffer: inout [UInt8], at offset: Int) throws(MemoryError)
    /// All of guest memory, page N at offset N × 4096, while the guest is connected: devices
    /// move data between it and their backends in place (a disk's `preadv` into the guest's
    /// pages).
    var wholeGuestMemory: MappedMemory? { get }
}

extension HostTransport {
    /// Substrates whose doorbells need no set-up (the in-process bus, a hypervisor).
    public func openDoorbells(relid: UInt32, connectionID: UInt32) {}
    public func closeDoorbells(relid: UInt32) {}
}

/// What the host learns when a channel of one of its devices opens.
public struct HostChannelInfo: Hashable, Sendable {
    /// The channel's relid.
    public var relid: UInt32
    /// 0 for the primary, ≥ 1 for a sub-channel.
    public var subChannelIndex: UInt16
    /// The device's offer.
    public var offer: HostOffer
    /// The guest's 120 bytes of OpenChannel user data (pipe parameters, …).
    public var userData: UserDefinedBytes
    /// The VP the guest wants this channel's interrupts on.
    public var targetVP: UInt32

    /// What ``HostDevice/opened(_:info:)`` is told: see the properties.
    public init(
        relid: UInt32, subChannelIndex: UInt16 = 0, offer: HostOffer, userData: UserDefinedBytes = UserDefinedBytes(),
        targetVP: UInt32 = 0
    ) {
        self.relid = relid
        self.subChannelIndex = subChannelIndex
        self.offer = offer
        self.userData = userData
        self.targetVP = targetVP
    }
}

/// A device the host serves: registered on a ``HostBus``, offered to the guest, handed its
/// channels as they open.
public protocol HostDevice: AnyObject, Sendable {
    /// The offer: class and instance GUIDs, flags, user-defined bytes, sub-channel limit,
    /// whether it wants monitored notification.
    var offer: HostOffer { get }
    /// A channel of this device opened (the primary or a sub-channel). Start serving it —
    /// typically a task reading it — and return; do not block.
    func opened(_ channel: Channel, info: HostChannelInfo)
    /// A channel closed (the guest closed it, a rescind, a reset). Its `Channel` object is
    /// closed with the reason, or — when the guest closed it or went away — finishing: its
    /// reader still gets what the guest wrote before, then ends (`Channel.peerEnded(_:)`).
    func closed(relid: UInt32)
    /// This device's channel options, given the bus's (``HostBus/channelOptions``); by default
    /// the bus's unchanged. A device tunes what suits its traffic — e.g. polling a busy stream.
    func channelOptions(_ busOptions: ChannelOptions) -> ChannelOptions
}

extension HostDevice {
    public func closed(relid: UInt32) {}
    public func channelOptions(_ busOptions: ChannelOptions) -> ChannelOptions { busOptions }
}
