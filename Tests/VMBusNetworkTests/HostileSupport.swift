import Testing
import VMBusChannel
import VMBusGuest
import VMBusHost
import VMBusLoopback
import VMBusMemory
import VMBusNetwork
import VMBusWire

// Helpers for the hostile-input tests: a guest that writes raw NVSP packets at a real netvsp
// (``HostUnderTest``), and a host that answers a real netvsc's set-up by hand and then
// misbehaves (``GuestUnderTest``).

/// `body`'s value, or `nil` if it takes longer than `seconds` — a safety net so that a broken
/// peer fails a test instead of hanging it; never a way to synchronise. (`body` is left
/// running on a timeout: it may be stuck in a continuation no cancellation reaches.)
func within<T: Sendable>(seconds: Double = 10, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
    let waiter = Locked<CheckedContinuation<Result<T?, any Error>, Never>?>(nil)
    @Sendable func finish(_ result: Result<T?, any Error>) {
        let continuation = waiter.withLock { waiter in
            defer { waiter = nil }
            return waiter
        }
        continuation?.resume(returning: result)
    }
    let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T?, any Error>, Never>) in
        waiter.withLock { $0 = continuation }
        Task {
            do { finish(.success(try await body())) } catch { finish(.failure(error)) }
        }
        Task {
            try? await Task.sleep(for: .seconds(seconds))
            finish(.success(nil))
        }
    }
    return try result.get()
}

struct TimedOut: Error {}

/// Values one side produces and a test waits for, in order.
final class Inbox<Value: Sendable>: Sendable {
    let state = Locked<(values: [Value], waiters: [CheckedContinuation<Value?, Never>], ended: Bool)>(([], [], false))

    func put(_ value: Value) {
        let waiter: CheckedContinuation<Value?, Never>? = self.state.withLock { state in
            if !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.values.append(value)
            return nil
        }
        waiter?.resume(returning: value)
    }

    func end() {
        let waiters = self.state.withLock { state in
            state.ended = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: nil) }
    }

    /// The next value (`nil`: ended).
    func next() async -> Value? {
        await withCheckedContinuation { (continuation: CheckedContinuation<Value?, Never>) in
            let now: Value?? = self.state.withLock { state in
                if !state.values.isEmpty { return .some(state.values.removeFirst()) }
                if state.ended { return .some(nil) }
                state.waiters.append(continuation)
                return .none
            }
            if let now { continuation.resume(returning: now) }
        }
    }

    /// The next value within the safety net; throws ``TimedOut`` if none comes or it ended.
    func take(within seconds: Double = 10) async throws -> Value {
        guard let value = try await within(seconds: seconds, { await self.next() }) ?? nil else { throw TimedOut() }
        return value
    }

    /// Values waiting now, without waiting.
    var pending: [Value] { self.state.withLock { $0.values } }
}

/// A condition on shared state that tests wait for: each change wakes the waiters, which
/// look again.
final class Watched<State: Sendable>: Sendable {
    let state: Locked<(value: State, waiters: [CheckedContinuation<Void, Never>])>
    init(_ value: State) { self.state = Locked((value, [])) }

    func update(_ body: (inout State) -> Void) {
        let waiters = self.state.withLock { state in
            body(&state.value)
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    var value: State { self.state.withLock { $0.value } }

    /// Waits until `probe` returns a value (within the safety net).
    func wait<T: Sendable>(_ probe: @escaping @Sendable (State) -> T?) async throws -> T {
        let found: T? = try await within {
            while true {
                var ready: T?
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    ready = self.state.withLock { state in
                        if let now = probe(state.value) { return now }
                        state.waiters.append(continuation)
                        return nil
                    }
                    if ready != nil { continuation.resume() }
                }
                if let ready { return ready }
            }
        }
        guard let found else { throw TimedOut() }
        return found
    }
}

/// Waits for a channel to close (within the safety net): the host stopping it.
func closeReason(of channel: Channel) async throws -> CloseReason {
    guard let reason = try await within({ await channel.closed() }) else { throw TimedOut() }
    return reason
}

// MARK: A raw guest against a real host

/// One channel of a network device opened by hand: packets the host sends (other than the
/// completions of ``request(_:)``) arrive in ``inbox``.
final class RawNetChannel: Sendable {
    let channel: Channel
    let bus: GuestBus
    let inbox = Inbox<ChannelPacket>()

    init(relid: UInt32, bus: GuestBus) async throws {
        var options = ChannelOptions()
        options.rejectUnknownCompletions = false
        self.channel = try await bus.open(relid, pages: RingPages(each: 16), options: options)
        self.bus = bus
        let reader = try self.channel.reader()
        Task { [inbox] in
            while let packet = await reader.next() { inbox.put(packet) }
            inbox.end()
        }
    }

    var relid: UInt32 { self.channel.relid }

    /// An NVSP request with completion requested; its answer parsed.
    func request(_ message: NVSPMessage) async throws -> NVSPMessage {
        try await self.request(raw: message.encode())
    }

    func request(raw payload: [UInt8]) async throws -> NVSPMessage {
        guard let answer = try await within({ try await self.channel.request(payload[...]) }) else { throw TimedOut() }
        return try NVSPMessage(parsing: answer[...])
    }

    /// An NVSP message without completion (Linux's NDIS_CONFIG, NDIS_VER).
    func post(_ message: NVSPMessage) async throws {
        try await self.channel.send(inBand: message.encode()[...], transactionID: NVSP.noCompletionID)
    }

    /// The status of the host's completion of a SEND_RNDIS_PKT.
    func rndisStatus(_ answer: NVSPMessage) -> NVSPStatus? {
        guard case .rndisPacketComplete(let status) = answer else { return nil }
        return status
    }
}

/// A guest driver for network devices that only opens channels: the test writes every packet.
final class RawNetGuest: GuestDriver {
    let name = "raw-netvsc"
    var classes: [GUID] { [DeviceClass.network.classID] }
    /// Primary channels by device instance; sub-channels by device instance, in opening order.
    let channels = Watched<(primary: [GUID: RawNetChannel], sub: [GUID: [RawNetChannel]])>(([:], [:]))

    func probe(_ device: GuestDevice, bus: GuestBus) async throws {
        let raw = try await RawNetChannel(relid: device.relid, bus: bus)
        self.channels.update { $0.primary[device.instanceID] = raw }
    }

    func remove(_ device: GuestDevice, bus: GuestBus) async {}

    func subChannelOffered(_ relid: UInt32, of device: GuestDevice, bus: GuestBus) {
        Task {
            guard let raw = try? await RawNetChannel(relid: relid, bus: bus) else { return }
            self.channels.update { $0.sub[device.instanceID, default: []].append(raw) }
        }
    }
}

func netInstance(_ n: Int) -> GUID { GUID(data1: 0x4E70_0000 | UInt32(n), data2: 0, data3: 0, data4: 0) }

/// Real netvsp devices on a loopback bus, each with an in-memory wire, and a raw guest.
struct HostUnderTest {
    let bus: LoopbackBus
    let devices: [NetvspDevice]
    let wires: [MemoryNetworkPort]
    let guest: RawNetGuest
    /// Frames each device's backend passed to its wire.
    let frames: [Inbox<[UInt8]>]

    static func make(devices count: Int = 2, queues: Int = 1, offloads: NetworkOffloads = []) async throws -> HostUnderTest {
        let bus = try LoopbackBus()
        var devices: [NetvspDevice] = []
        var wires: [MemoryNetworkPort] = []
        var frames: [Inbox<[UInt8]>] = []
        for n in 0..<count {
            let (hostEnd, wire) = MemoryNetworkPort.pair(offloads: offloads)
            let device = NetvspDevice(instance: netInstance(n), backend: hostEnd, maximumQueues: queues)
            device.attach(to: bus.host)
            bus.host.register(device)
            devices.append(device)
            wires.append(wire)
            let inbox = Inbox<[UInt8]>()
            Task {
                for await frame in wire.frames() { inbox.put(frame) }
                inbox.end()
            }
            frames.append(inbox)
        }
        let guest = RawNetGuest()
        bus.guest.register(guest)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        _ = try await guest.channels.wait { $0.primary.count == count ? true : nil }
        return HostUnderTest(bus: bus, devices: devices, wires: wires, guest: guest, frames: frames)
    }

    /// Device `n`'s primary channel, as the guest holds it.
    func channel(_ n: Int) -> RawNetChannel { self.guest.channels.value.primary[netInstance(n)]! }

    /// The host's end of a channel.
    func hostChannel(_ raw: RawNetChannel) -> Channel { self.bus.host.channel(raw.relid)! }

    /// Device `n` still serves: it answers an INIT (another device's failure left it alone).
    func stillServes(_ n: Int) async throws -> Bool {
        let answer = try await self.channel(n).request(.initialize(minimum: .v61, maximum: .v61))
        guard case .initializeComplete(_, _, .success) = answer else { return false }
        return true
    }
}

/// A guest's buffers for one device, set up by hand as Linux does (11 §4).
struct RawNetBuffers {
    let receive: GuestBuffer
    let send: GuestBuffer?
    let memory: MappedMemory
    let subAllocationSize: Int

    /// INIT 6.1, NDIS_CONFIG, NDIS_VER, the receive buffer and (optionally) the send buffer.
    static func setUp(_ raw: RawNetChannel, sendBuffer: Bool = true, receivePages: Int = 256, sendPages: Int = 64) async throws -> RawNetBuffers {
        guard case .initializeComplete(_, _, .success) = try await raw.request(.initialize(minimum: .v61, maximum: .v61)) else {
            throw TimedOut()
        }
        try await raw.post(.ndisConfig(mtu: 1514, capabilities: .ieee8021q))
        try await raw.post(.ndisVersion(major: 6, minor: 30))
        let memory = raw.bus.memory
        let receive = try memory.allocate(pages: receivePages)
        let receiveGpadl = try await raw.bus.createGpadl(channel: raw.relid, ranges: [try receive.range()])
        guard case .receiveBufferComplete(.success, let sections) = try await raw.request(.receiveBuffer(gpadl: receiveGpadl, id: NVSP.receiveBufferID)),
            let section = sections.first
        else { throw TimedOut() }
        var send: GuestBuffer?
        if sendBuffer {
            let buffer = try memory.allocate(pages: sendPages)
            let gpadl = try await raw.bus.createGpadl(channel: raw.relid, ranges: [try buffer.range()])
            guard case .sendBufferComplete(.success, 6144) = try await raw.request(.sendBuffer(gpadl: gpadl, id: NVSP.sendBufferID)) else {
                throw TimedOut()
            }
            send = buffer
        }
        return RawNetBuffers(receive: receive, send: send, memory: memory.memory, subAllocationSize: Int(section.subAllocationSize))
    }

    /// Writes `bytes` into send section `index`.
    func write(_ bytes: [UInt8], section index: Int) throws {
        try self.memory.write(bytes[...], at: self.send!.offset + index * 6144)
    }

    /// Sends `message` in send section `index` as a SEND_RNDIS_PKT; the completion's status.
    func send(_ message: [UInt8], section index: Int, channelType: UInt32 = NVSP.dataChannel, on raw: RawNetChannel) async throws -> NVSPStatus? {
        try self.write(message, section: index)
        return raw.rndisStatus(
            try await raw.request(.rndisPacket(channelType: channelType, sectionIndex: UInt32(index), sectionBytes: UInt32(message.count))))
    }

    /// Reads the RNDIS message a transfer-page packet lends (its first range) and completes it.
    func receiveControl(on raw: RawNetChannel) async throws -> RNDISMessage {
        let packet = try await raw.inbox.take()
        guard case .transferPages(let transfer) = try packet.parse(), let range = transfer.ranges.first else { throw TimedOut() }
        var bytes = [UInt8](repeating: 0, count: Int(range.byteCount))
        try self.memory.read(at: self.receive.offset + Int(range.byteOffset), count: bytes.count, into: &bytes)
        try await raw.channel.send(
            completion: NVSPMessage.rndisPacketComplete(status: .success).encode(size: 8)[...], transactionID: transfer.descriptor.transactionID)
        return try RNDISMessage(parsing: bytes[...])
    }
}

/// An RNDIS PACKET carrying `frame` with the given header fields changed (offsets from byte 0
/// of the message) and `extra` bytes (PPIs) between the header and the frame.
func rndisPacket(_ frame: [UInt8], ppis: [UInt8] = [], patch: [(Int, UInt32)] = []) -> [UInt8] {
    var writer = WireWriter()
    writer.writeUInt32(RNDISMessageType.packet.rawValue)
    writer.writeUInt32(UInt32(RNDISPacketHeader.size + ppis.count + frame.count))
    writer.writeUInt32(UInt32(36 + ppis.count))
    writer.writeUInt32(UInt32(frame.count))
    writer.writeZeros(12)
    writer.writeUInt32(36)
    writer.writeUInt32(UInt32(ppis.count))
    writer.writeZeros(8)
    writer.writeBytes(ppis)
    writer.writeBytes(frame)
    var bytes = writer.bytes
    for (offset, value) in patch {
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }
    return bytes
}

/// An IPv4/UDP test frame of flow `flow` (addresses and ports vary with it), numbered `n`.
func flowFrame(flow: Int, n: Int, length: Int = 128) -> [UInt8] {
    var frame: [UInt8] = [0x00, 0x15, 0x5D, 0, 0, 1, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]
    // IPv4 header: version/IHL, TOS, length, id, flags, TTL 64, UDP, checksum 0.
    frame += [0x45, 0, UInt8((length - 14) >> 8), UInt8(truncatingIfNeeded: length - 14), 0, 0, 0, 0, 64, 17, 0, 0]
    frame += [10, 0, UInt8(flow >> 8 & 0xFF), UInt8(flow & 0xFF), 10, 1, UInt8(flow * 7 >> 8 & 0xFF), UInt8(flow * 7 & 0xFF)]
    frame += [UInt8(truncatingIfNeeded: (1024 + flow) >> 8), UInt8(truncatingIfNeeded: 1024 + flow), 0x13, 0x88]
    frame += (0..<(length - frame.count)).map { UInt8(truncatingIfNeeded: $0 &+ n &* 3 &+ flow) }
    return frame
}

// MARK: A hand-written host against a real guest

/// A network device that answers a guest's set-up by hand (11 §4–§5.2) — correctly unless
/// `answers` says otherwise — and then lets the test lend it whatever it likes.
final class FakeNetHost: HostDevice {
    struct Answers: Sendable {
        /// RECV_BUF_COMPLETE for a buffer of the given bytes.
        var receiveBuffer: @Sendable (Int) -> NVSPMessage = { bytes in
            .receiveBufferComplete(status: .success, sections: [NVSPReceiveSection(subAllocationSize: 1806, subAllocationCount: UInt32(bytes / 1806))])
        }
        var sendBuffer: @Sendable (Int) -> NVSPMessage = { _ in .sendBufferComplete(status: .success, sectionSize: 6144) }
    }

    static let subAllocationSize = 1806
    let offer: HostOffer
    let bus: HostBus
    let answers: Answers
    /// The guest's completions of packets lent by tests (ids ≥ 16): transaction id and status
    /// (`nil`: unparsable).
    let completions = Inbox<(id: UInt64, status: NVSPStatus?)>()
    /// Frames the guest sent.
    let frames = Inbox<[UInt8]>()
    let state = Locked<(channel: Channel?, receive: MappedMemory?, send: MappedMemory?, nextControl: Int)>((nil, nil, nil, 0))

    init(bus: HostBus, answers: Answers) {
        self.offer = HostOffer(interfaceType: DeviceClass.network.classID, interfaceInstance: netInstance(77))
        self.bus = bus
        self.answers = answers
    }

    func channelOptions(_ busOptions: ChannelOptions) -> ChannelOptions {
        var options = busOptions
        options.rejectUnknownCompletions = false
        return options
    }

    func opened(_ channel: Channel, info: HostChannelInfo) {
        self.state.withLock { $0.channel = channel }
        Task {
            guard let reader = try? channel.reader() else { return }
            while let packet = await reader.next() { await self.handle(packet, channel) }
        }
    }

    var channel: Channel { self.state.withLock { $0.channel }! }
    var receiveBuffer: MappedMemory { self.state.withLock { $0.receive }! }

    func handle(_ packet: ChannelPacket, _ channel: Channel) async {
        guard let parsed = try? packet.parse() else { return }
        switch parsed {
        case .completion(let descriptor, let payload):
            var status: NVSPStatus?
            if case .rndisPacketComplete(let got)? = try? NVSPMessage(parsing: payload) { status = got }
            // Slots 0–15 carry the set-up's control replies; tests lend from 16 up.
            if descriptor.transactionID >= 16 { self.completions.put((descriptor.transactionID, status)) }
        case .inBand(let descriptor, let payload):
            guard let message = try? NVSPMessage(parsing: payload) else { return }
            let id = descriptor.transactionID
            func answer(_ message: NVSPMessage) async { try? await channel.send(completion: message.encode()[...], transactionID: id) }
            switch message {
            case .initialize(let minimum, _):
                await answer(.initializeComplete(negotiated: 0xFFFF_FFFF, maximumMDLChainLength: 34, status: minimum == .v61 ? .success : .failure))
            case .receiveBuffer(let gpadl, _):
                let mapping = self.bus.gpadlMapping(gpadl)
                self.state.withLock { $0.receive = mapping }
                await answer(self.answers.receiveBuffer(mapping?.size ?? 0))
            case .sendBuffer(let gpadl, _):
                let mapping = self.bus.gpadlMapping(gpadl)
                self.state.withLock { $0.send = mapping }
                await answer(self.answers.sendBuffer(mapping?.size ?? 0))
            case .rndisPacket(let type, let index, let bytes):
                await answer(.rndisPacketComplete(status: .success))
                guard let send = self.state.withLock({ $0.send }) else { return }
                var message = [UInt8](repeating: 0, count: Int(bytes))
                guard (try? send.read(at: Int(index) * 6144, count: Int(bytes), into: &message)) != nil else { return }
                if type == NVSP.dataChannel {
                    if let header = try? RNDISPacketHeader(parsing: message[...]) {
                        self.frames.put(Array(message[header.frameOffset..<(header.frameOffset + header.frameLength)]))
                    }
                } else if let request = try? RNDISMessage(parsing: message[...]), let reply = Self.reply(to: request) {
                    let slot = self.state.withLock { state in
                        defer { state.nextControl = (state.nextControl + 1) % 16 }
                        return state.nextControl
                    }
                    try? await self.lend(reply.encode(), slot: slot, channelType: NVSP.controlChannel)
                }
            default:
                break
            }
        default:
            break
        }
    }

    /// What a host answers to Linux's probe (11 §5.2), minimally.
    static func reply(to request: RNDISMessage) -> RNDISMessage? {
        func word(_ value: UInt32) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 24)] }
        switch request {
        case .initialize(let id, _, _, _): return .initializeComplete(RNDISInitializeComplete(requestID: id))
        case .query(let id, .maximumFrameSize, _): return .queryComplete(requestID: id, status: .success, information: word(1500))
        case .query(let id, .permanentAddress, _): return .queryComplete(requestID: id, status: .success, information: [0, 0x15, 0x5D, 1, 2, 3])
        case .query(let id, .mediaConnectStatus, _): return .queryComplete(requestID: id, status: .success, information: word(0))
        case .query(let id, _, _): return .queryComplete(requestID: id, status: .notSupported, information: [])
        case .set(let id, _, _): return .setComplete(requestID: id, status: .success)
        default: return nil
        }
    }

    /// Writes `bytes` into sub-allocation `slot` and lends it: one range over `bytes` unless
    /// `ranges` are given; the transaction id is the slot unless `id` is.
    func lend(
        _ bytes: [UInt8], slot: Int, channelType: UInt32 = NVSP.dataChannel, setID: UInt16 = NVSP.receiveBufferID, ranges: [TransferPageRange]? = nil,
        payload: [UInt8]? = nil, id: UInt64? = nil
    ) async throws {
        try self.receiveBuffer.write(bytes[...], at: slot * Self.subAllocationSize)
        let ranges = ranges ?? [TransferPageRange(byteCount: UInt32(bytes.count), byteOffset: UInt32(slot * Self.subAllocationSize))]
        let payload = payload ?? NVSPMessage.rndisPacket(channelType: channelType, sectionIndex: NVSP.noSection, sectionBytes: 0).encode()
        try await self.channel.send(
            encoded: PacketEncoder.transferPages(setID: setID, ranges: ranges, payload: payload, transactionID: id ?? UInt64(slot)))
    }
}

/// A real netvsc (through a driver that records how its probe ended) against a ``FakeNetHost``.
final class ProbeRecorder: GuestDriver {
    let name = "probe-recorder"
    var classes: [GUID] { [DeviceClass.network.classID] }
    let driver: NetvscDriver
    /// How each probe ended; an error other than NetvscError shows as `.malformed("untyped: …")`.
    let results = Inbox<Result<Void, NetvscError>>()

    init(_ driver: NetvscDriver) { self.driver = driver }

    func probe(_ device: GuestDevice, bus: GuestBus) async throws {
        do {
            try await self.driver.probe(device, bus: bus)
            self.results.put(.success(()))
        } catch let error as NetvscError {
            self.results.put(.failure(error))
            throw error
        } catch {
            self.results.put(.failure(.malformed("untyped: \(error)")))
            throw error
        }
    }

    func remove(_ device: GuestDevice, bus: GuestBus) async { await self.driver.remove(device, bus: bus) }
    func subChannelOffered(_ relid: UInt32, of device: GuestDevice, bus: GuestBus) { self.driver.subChannelOffered(relid, of: device, bus: bus) }
}

struct GuestUnderTest {
    let bus: LoopbackBus
    let host: FakeNetHost
    let recorder: ProbeRecorder
    /// Frames the NIC delivered to the guest's system.
    let delivered: Inbox<[UInt8]>
    let system: Locked<MemoryNetworkPort?>

    static func make(answers: FakeNetHost.Answers = FakeNetHost.Answers()) async throws -> GuestUnderTest {
        let bus = try LoopbackBus()
        let host = FakeNetHost(bus: bus.host, answers: answers)
        bus.host.register(host)
        let delivered = Inbox<[UInt8]>()
        let system = Locked<MemoryNetworkPort?>(nil)
        var configuration = NetvscDriver.Configuration()
        configuration.receiveBufferBytes = 1 << 20
        let driver = NetvscDriver(configuration: configuration) { mac, mtu in
            let (nicEnd, os) = MemoryNetworkPort.pair(macAddresses: (mac, mac), mtu: mtu)
            system.withLock { $0 = os }
            Task {
                for await frame in os.frames() { delivered.put(frame) }
            }
            return nicEnd
        }
        let recorder = ProbeRecorder(driver)
        bus.guest.register(recorder)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        return GuestUnderTest(bus: bus, host: host, recorder: recorder, delivered: delivered, system: system)
    }

    /// How bring-up ended.
    func probeResult() async throws -> Result<Void, NetvscError> { try await self.recorder.results.take() }

    var nic: NetvscNIC { self.recorder.driver.nics[0] }
}
