import FuzzSupport
import Synchronization
import VMBusChannel
import VMBusHost
import VMBusMemory
import VMBusWire

// Input: a sequence of guest messages (see `messageSequence`) into a connected `HostBus` — the
// driver, not just the state machine: GPADLs are really mapped from guest memory (hostile page
// numbers included), channels are really built on the mapped rings. Properties: nothing traps;
// afterwards the bus still answers a fresh InitiateContact.

/// 64 pages of guest memory, shared by every run.
let guestMemory = try! GuestMemory(size: 64 * 4096, name: "fuzz-guest")

final class CapturingTransport: HostTransport {
    let posted = Mutex<[[UInt8]]>([])
    func post(toGuest message: [UInt8]) { self.posted.withLock { $0.append(message) } }
    func signalGuest(relid: UInt32) {}
    func mapGpadl(_ ranges: [GpaRange]) throws(MemoryError) -> MappedMemory { try guestMemory.mapGpadl(ranges) }
}

final class QuietDevice: HostDevice {
    let offer: HostOffer
    init(_ n: UInt32) {
        self.offer = HostOffer(
            interfaceType: GUID(data1: n, data2: 2, data3: 3, data4: 4), interfaceInstance: .zero, maximumSubChannels: 2,
            wantsMonitor: n == 1)
    }
    func opened(_ channel: Channel, info: HostChannelInfo) {}
}

func encoded(_ message: ChannelMessage) -> ArraySlice<UInt8> { ((try? message.encode()) ?? [])[...] }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHostBus(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let transport = CapturingTransport()
    let bus = HostBus(transport: transport)
    bus.register(QuietDevice(1))
    bus.register(QuietDevice(2))
    bus.receive(encoded(.initiateContact(InitiateContact(
        versionRequested: .copper, target: .synic(sint: 2, vtl: 0, features: []), monitorPage1: 0x1000,
        monitorPage2: 0x2000))))
    bus.receive(encoded(.requestOffers))
    for message in messageSequence(fuzzInput(data, size)) {
        bus.receive(message[...])
        for relid in bus.relids { bus.channel(relid)?.interrupt() }
    }
    transport.posted.withLock { $0 = [] }
    bus.receive(encoded(.initiateContact(InitiateContact(
        versionRequested: .win10_5_3, target: .synic(sint: 2, vtl: 0, features: [])))))
    let answered = transport.posted.withLock { posted in
        posted.contains { (try? ChannelMessage.parse($0[...], version: nil))?.type == .versionResponse }
    }
    if !answered { violated("the host bus no longer answers InitiateContact", []) }
    return 0
}
