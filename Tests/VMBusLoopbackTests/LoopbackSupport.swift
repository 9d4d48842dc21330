import VMBusMemory
import VMBusChannel
import VMBusDevices
import VMBusGuest
import VMBusHost
import VMBusLoopback
import VMBusWire

func instance(_ n: UInt32) -> GUID { GUID(data1: n, data2: 0x5eed, data3: 0, data4: 0) }

/// A loopback bus with `devices` echo devices registered and an echo client on the guest.
func echoBus(
    devices: Int = 1, maximumSubChannels: UInt16 = 0, wantsMonitor: Bool = false, monitorPages: Bool = false,
    guest: GuestConfiguration = GuestConfiguration(), mode: LoopbackBus.Mode = .automatic, interruptDriven: Bool = false
) throws -> (LoopbackBus, [EchoDevice], EchoClient) {
    let bus = try LoopbackBus(guest: guest, mode: mode, monitorPages: monitorPages)
    var hosted: [EchoDevice] = []
    for n in 0..<devices {
        let device = EchoDevice(
            instance: instance(UInt32(n)), maximumSubChannels: maximumSubChannels, wantsMonitor: wantsMonitor,
            interruptDriven: interruptDriven)
        device.attach(to: bus.host)
        bus.host.register(device)
        hosted.append(device)
    }
    let client = EchoClient(pages: RingPages(each: 4), interruptDriven: interruptDriven)
    bus.guest.register(client)
    return (bus, hosted, client)
}

/// A driver that records what happens to it, for binding tests.
final class RecordingDriver: GuestDriver {
    let name: String
    let classes: [GUID]
    let events = Locked<[String]>([])
    let failProbe: Bool

    init(name: String, classes: [GUID], failProbe: Bool = false) {
        self.name = name
        self.classes = classes
        self.failProbe = failProbe
    }

    struct ProbeFailed: Error {}

    func probe(_ device: GuestDevice, bus: GuestBus) async throws {
        self.events.withLock { $0.append("probe \(device.relid)") }
        if self.failProbe { throw ProbeFailed() }
    }

    func remove(_ device: GuestDevice, bus: GuestBus) async {
        self.events.withLock { $0.append("remove \(device.relid)") }
    }

    var log: [String] { self.events.withLock { $0 } }
}

/// A device of any class that only records its channels.
final class PlainDevice: HostDevice {
    let offer: HostOffer
    let opened = Locked<[UInt32]>([])
    init(classID: GUID, instance: GUID) { self.offer = HostOffer(interfaceType: classID, interfaceInstance: instance) }
    func opened(_ channel: Channel, info: HostChannelInfo) { self.opened.withLock { $0.append(info.relid) } }
}
