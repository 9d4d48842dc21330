import Testing
import VMBusChannel
import VMBusGuest
import VMBusHost
import VMBusLoopback
import VMBusMemory
import VMBusNetwork
import VMBusWire

/// A sink that keeps every frame with its offload state.
final class RecordingSink: FrameSink {
    let frames = Inbox<([UInt8], FrameOffload)>()
    func deliver(_ frames: FrameBatch, from first: Int) -> Int {
        for index in first..<frames.count { self.frames.put((Array(frames.bytes[frames.range(index)]), frames.offload(index))) }
        return frames.count
    }
    func waitForRoom(timeout: Duration) {}
}

/// The Internet checksum's folded one's-complement sum, written for the tests (RFC 1071).
func onesSum(_ bytes: [UInt8], _ initial: UInt32 = 0) -> UInt16 {
    var total = UInt64(initial)
    var index = 0
    while index + 1 < bytes.count {
        total += UInt64(bytes[index]) << 8 | UInt64(bytes[index + 1])
        index += 2
    }
    if index < bytes.count { total += UInt64(bytes[index]) << 8 }
    while total > 0xFFFF { total = (total & 0xFFFF) + (total >> 16) }
    return UInt16(total)
}

/// The IPv4 TCP pseudo-header sum of `frame` (addresses, protocol, TCP length).
func pseudoSum(_ frame: [UInt8]) -> UInt16 {
    let tcpLength = frame.count - 34
    return onesSum(Array(frame[26..<34]) + [0, 6, UInt8(tcpLength >> 8), UInt8(truncatingIfNeeded: tcpLength)])
}

/// A TCP/IPv4 frame as Linux hands it over with offloads: a valid IPv4 header checksum, and a
/// TCP checksum field holding the pseudo-header sum with the TCP length (CHECKSUM_PARTIAL).
func partialTCPFrame(payload: Int, seed: Int) -> [UInt8] {
    var frame: [UInt8] = [0x00, 0x15, 0x5D, 0, 0, 2, 0x00, 0x15, 0x5D, 0, 0, 1, 0x08, 0x00]
    let total = 20 + 20 + payload
    frame += [0x45, 0, UInt8(total >> 8), UInt8(truncatingIfNeeded: total), 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]
    let ipChecksum = ~onesSum(Array(frame[14..<34]))
    frame[24] = UInt8(ipChecksum >> 8)
    frame[25] = UInt8(truncatingIfNeeded: ipChecksum)
    frame += [0x13, 0x88, 0xC0, 0x01, 0, 0, 0x10, 0, 0, 0, 0x20, 0, 0x50, 0x18, 0xFF, 0xFF, 0, 0, 0, 0]
    frame += (0..<payload).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ seed) }
    let seedSum = pseudoSum(frame)
    frame[50] = UInt8(seedSum >> 8)
    frame[51] = UInt8(truncatingIfNeeded: seedSum)
    return frame
}

/// Whether a TCP/IPv4 frame's TCP checksum is complete and right.
func tcpChecksumIsValid(_ frame: [UInt8]) -> Bool {
    onesSum(Array(frame[34...]), UInt32(pseudoSum(frame))) == 0xFFFF
}

/// Checksum and LSO offloads guest → host, RSC host → guest (11 §5.3–§5.4, §7): with backends
/// that take and hand over offload state (a TAP with a virtio-net header does), large TCP
/// segments cross the bus whole, in Linux's convention at both ends.
@Suite struct NetworkOffloadTests {
    static func pair(
        offloads: NetworkOffloads = .all, configuration: NetvscDriver.Configuration = NetvscDriver.Configuration()
    ) async throws -> (NetworkPair, hostEnd: MemoryNetworkPort, atHost: RecordingSink, atGuest: RecordingSink) {
        let bus = try LoopbackBus()
        let (hostEnd, wire) = MemoryNetworkPort.pair(macAddresses: (MACAddress("00:15:5d:12:34:56")!, .hyperV(seed: 9)), offloads: offloads)
        let device = NetvspDevice(instance: GUID(data1: 0x4E1C, data2: 0, data3: 0, data4: 0), backend: hostEnd)
        device.attach(to: bus.host)
        bus.host.register(device)
        let (driver, systems) = NetvscDriver.inMemory(configuration: configuration, offloads: .all)
        bus.guest.register(driver)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        let nic = await driver.firstNIC()
        let system = try #require(systems.first)
        let atHost = RecordingSink()
        let atGuest = RecordingSink()
        wire.attach(atHost)
        system.attach(atGuest)
        return (NetworkPair(bus: bus, device: device, nic: nic, wire: wire, system: system), hostEnd, atHost, atGuest)
    }

    @Test func theTestFramesAreWhatLinuxHandsOver() {
        var complete = partialTCPFrame(payload: 1000, seed: 1)
        #expect(!tcpChecksumIsValid(complete))
        let sum = ~onesSum(Array(complete[34...]))
        complete[50] = UInt8(sum >> 8)
        complete[51] = UInt8(truncatingIfNeeded: sum)
        #expect(tcpChecksumIsValid(complete))
    }

    /// A 40 000-byte segment from the guest's system: sent GPA-direct with an LSO PPI in
    /// NDIS's convention, and handed to the host's backend byte for byte as it left, with its
    /// segmentation and partial checksum.
    @Test func largeSegmentsFromTheGuestReachTheBackendWhole() async throws {
        let (pair, _, atHost, _) = try await Self.pair()
        let offload = FrameOffload(checksumStart: 34, checksumOffset: 16, segmentation: .tcp4(mss: 1448))
        for seed in 0..<3 {
            let frame = partialTCPFrame(payload: 40_000 + seed, seed: seed)
            pair.system.send(batch: FrameBatch(frame: frame, offload: offload))
            let (received, receivedOffload) = try await atHost.frames.take()
            #expect(received == frame)
            #expect(receivedOffload == offload)
        }
        // A small frame with a partial checksum: a checksum PPI, left to the backend too.
        let small = partialTCPFrame(payload: 300, seed: 7)
        let partial = FrameOffload(checksumStart: 34, checksumOffset: 16)
        pair.system.send(batch: FrameBatch(frame: small, offload: partial))
        let (received, receivedOffload) = try await atHost.frames.take()
        #expect(received == small && receivedOffload == partial)
        #expect(await pair.nic.waitForSendsCompleted())
        #expect(pair.device.statistics[0]?.malformed == 0)
        #expect(pair.device.statistics[0]?.txLargeSegments == 3)
    }

    /// A 40 000-byte segment from the host's backend, to a guest that asked for RSC: its
    /// checksum finished by the host, lent over a chain of sub-allocations, joined by the
    /// guest and handed to its system whole, marked as checked; the chain comes back.
    @Test func largeSegmentsReachTheGuestWholeWithRSC() async throws {
        let (pair, hostEnd, _, atGuest) = try await Self.pair()
        #expect(hostEnd.acceptedOffloads == .all)
        let slots = pair.device.freeReceiveSlots
        let offload = FrameOffload(checksumStart: 34, checksumOffset: 16, segmentation: .tcp4(mss: 1448))
        for seed in 0..<3 {
            let frame = partialTCPFrame(payload: 40_000 + seed, seed: seed)
            pair.wire.send(batch: FrameBatch(frame: frame, offload: offload))
            let (received, receivedOffload) = try await atGuest.frames.take()
            #expect(received.count == frame.count)
            #expect(Array(received[0..<50]) == Array(frame[0..<50]) && Array(received[52...]) == Array(frame[52...]))
            #expect(tcpChecksumIsValid(received))
            #expect(receivedOffload.checksumVerified)
        }
        #expect(await pair.device.waitForSlotsReturned())
        #expect(pair.device.freeReceiveSlots == slots)
        #expect(pair.device.statistics[0]?.rxCoalesced == 3)
        #expect(pair.device.offloads.receiveSegmentCoalescing)
    }

    /// A guest that does not ask for RSC: the host's backend keeps large segments to itself
    /// (it is told the NIC takes none), and one that comes anyway is dropped and counted.
    @Test func withoutRSCTheBackendSegments() async throws {
        var configuration = NetvscDriver.Configuration()
        configuration.receiveSegmentCoalescing = false
        let (pair, hostEnd, _, atGuest) = try await Self.pair(configuration: configuration)
        #expect(hostEnd.acceptedOffloads == [])
        let offload = FrameOffload(checksumStart: 34, checksumOffset: 16, segmentation: .tcp4(mss: 1448))
        pair.wire.send(batch: FrameBatch(frame: partialTCPFrame(payload: 20_000, seed: 1), offload: offload))
        #expect(pair.device.statistics[0]?.rxDropped == 1)
        let small = partialTCPFrame(payload: 100, seed: 2)
        pair.wire.send(batch: FrameBatch(frame: small))
        #expect(try await atGuest.frames.take().0 == small)
    }

    /// A backend with no offloads: the host advertises none, the guest asks for none and
    /// hands its system's frames on as they are.
    @Test func noOffloadsAreAdvertisedForABackendWithout() async throws {
        let (pair, hostEnd, atHost, _) = try await Self.pair(offloads: [])
        #expect(hostEnd.acceptedOffloads == [])
        let frame = partialTCPFrame(payload: 500, seed: 3)
        pair.system.send(batch: FrameBatch(frame: frame))
        let (received, receivedOffload) = try await atHost.frames.take()
        #expect(received == frame && receivedOffload.isNone)
    }
}

/// LSO and checksum PPIs that do not fit their frame (11 §5.4, OpenVMM's checks): the send
/// fails with status 2, nothing reaches the backend, the channel goes on.
@Suite struct NetvspOffloadHostileTests {
    static let frame = partialTCPFrame(payload: 900, seed: 5)

    static func lso(mss: UInt32, offset: UInt32, ipv6: Bool = false, version2: Bool = true) -> [UInt8] {
        ppiBytes(type: 2, value: mss | offset << 20 | (version2 ? 1 << 30 : 0) | (ipv6 ? 1 << 31 : 0))
    }

    static func ppiBytes(type: UInt32, value: UInt32) -> [UInt8] {
        var writer = WireWriter()
        writer.writeUInt32(16)
        writer.writeUInt32(type)
        writer.writeUInt32(12)
        writer.writeUInt32(value)
        return writer.bytes
    }

    @Test(arguments: [
        ("LSO with MSS 0", lso(mss: 0, offset: 34)),
        ("LSO with the TCP header elsewhere", lso(mss: 1448, offset: 38)),
        ("LSO over IPv6 on an IPv4 frame", lso(mss: 1448, offset: 54, ipv6: true)),
        ("LSOv1", lso(mss: 1448, offset: 34, version2: false)),
        ("checksum past the frame", ppiBytes(type: 0, value: 1 | 4 | 950 << 16)),
        ("checksum inside the IP header", ppiBytes(type: 0, value: 1 | 4 | 20 << 16)),
    ])
    func offloadRequestsThatDoNotFitFail(_ what: String, _ ppi: [UInt8]) async throws {
        let host = try await HostUnderTest.make(devices: 1, offloads: .all)
        let raw = host.channel(0)
        let buffers = try await RawNetBuffers.setUp(raw)
        #expect(try await buffers.send(rndisPacket(Self.frame, ppis: ppi), section: 1, on: raw) == .failure, "\(what)")
        #expect(host.devices[0].statistics[0]?.malformed == 1, "\(what)")
        let good = flowFrame(flow: 1, n: 99)
        #expect(try await buffers.send(rndisPacket(good), section: 5, on: raw) == .success)
        #expect(try await host.frames[0].take() == good, "\(what)")
    }

    /// LSO to a backend that cannot segment: refused the same way.
    @Test func lsoToABackendWithoutItFails() async throws {
        let host = try await HostUnderTest.make(devices: 1)
        let raw = host.channel(0)
        let buffers = try await RawNetBuffers.setUp(raw)
        #expect(try await buffers.send(rndisPacket(Self.frame, ppis: Self.lso(mss: 1448, offset: 34)), section: 1, on: raw) == .failure)
    }
}

@Suite struct NetvspVLANTests {
    /// A frame whose 802.1Q tag the guest moved into a VLAN PPI (as Linux does): the host puts
    /// the tag back after the MAC addresses (priority 5, CFI 0, VLAN 100).
    @Test func aVLANPPIBecomesTheFramesTag() async throws {
        let host = try await HostUnderTest.make(devices: 1)
        let raw = host.channel(0)
        let buffers = try await RawNetBuffers.setUp(raw)
        let frame = flowFrame(flow: 2, n: 3)
        let value: UInt32 = 5 | 100 << 4
        #expect(try await buffers.send(rndisPacket(frame, ppis: NetvspOffloadHostileTests.ppiBytes(type: 6, value: value)), section: 1, on: raw) == .success)
        let tagged = try await host.frames[0].take()
        #expect(tagged == Array(frame[0..<12]) + [0x81, 0x00, 0xA0, 0x64] + Array(frame[12...]))
    }
}
