import Testing
import VMBusChannel
@testable import VMBusDevices
import VMBusGuest
import VMBusHost
import VMBusLoopback
import VMBusWire

/// A loopback bus with hvsock, the guest offering only `versions` and using `ringPages`.
func socketBus(versions: [VMBusVersion], ringPages: Int) async throws -> (LoopbackBus, HvSocketHost, HvSocketGuest) {
    var configuration = GuestConfiguration()
    configuration.versions = versions
    let bus = try LoopbackBus(memorySize: 32 << 20, guest: configuration)
    let host = HvSocketHost(bus: bus.host, linger: .seconds(2))
    let guest = HvSocketGuest(bus: bus.guest, ringPages: ringPages, closeTimeout: .seconds(2))
    bus.guest.register(guest)
    _ = try await bus.guest.connect()
    return (bus, host, guest)
}

/// Sends `up` from the guest and `down` from the host on one connection at once; returns what
/// each side read.
func exchange(_ host: HvSocketHost, _ guest: HvSocketGuest, port: UInt32, up: [UInt8], down: [UInt8]) async throws
    -> (atHost: [UInt8], atGuest: [UInt8], ringSize: Int)
{
    let listener = host.listen(port: port)
    let server = Task { () async throws -> [UInt8] in
        let stream = try await listener.accept(timeout: .seconds(10))
        async let received = stream.readAll()
        try await stream.write(down)
        try await stream.shutdownWrite()
        let all = try await received
        await stream.close()
        return all
    }
    let client = try await guest.connect(port: port)
    let ringSize = client.channel.ringSizes.outgoing
    async let back = client.readAll()
    // Odd-sized writes, so packets and reads never line up with the data.
    var offset = 0
    var size = 1
    while offset < up.count {
        let end = min(offset + size, up.count)
        try await client.write(up[offset..<end])
        offset = end
        size = size * 7 % 70_001 + 1
    }
    try await client.shutdownWrite()
    let atGuest = try await back
    await client.close()
    return (try await server.value, atGuest, ringSize)
}

@Suite struct HvSocketLimitTests {
    @Test(arguments: [6, 64])
    func ringsAtTheSpecLimitsCarryLargeStreamsBothWays(pages: Int) async throws {
        let (bus, host, guest) = try await socketBus(versions: VMBusVersion.linuxProposalOrder, ringPages: pages)
        defer { withExtendedLifetime(bus) {} }
        let up = randomBytes(3 << 20, seed: UInt64(pages))
        let down = randomBytes((2 << 20) + 13, seed: UInt64(pages) + 100)
        let result = try await exchange(host, guest, port: 6000, up: up, down: down)
        // 24 KiB and 256 KiB, the control page included (07 §2).
        #expect(result.ringSize == pages * 4096)
        #expect(result.atHost == up)
        #expect(result.atGuest == down)
    }

    @Test func beforeProtocol5RingsAreExactly24KiB() async throws {
        let (bus, host, guest) = try await socketBus(versions: [.win10_4_1, .win10], ringPages: 64)
        defer { withExtendedLifetime(bus) {} }
        #expect(bus.guest.version == .win10_4_1)
        let up = randomBytes(1 << 20, seed: 9)
        let result = try await exchange(host, guest, port: 6001, up: up, down: Array(up.reversed()))
        #expect(result.ringSize == HvSock.legacyRingSize)
        #expect(result.atHost == up && result.atGuest == up.reversed())
    }

    @Test func readsTimeOutAndCanBeCancelledWithoutLosingData() async throws {
        let (bus, host, guest) = try await socketBus()
        defer { withExtendedLifetime(bus) {} }
        let listener = host.listen(port: 6002)
        let client = try await guest.connect(port: 6002)
        let server = try await listener.accept(timeout: .seconds(10))
        await #expect(throws: HvSocketError.timedOut) { try await client.read(timeout: .milliseconds(20)) }
        let waiting = Task { try await client.read() }
        waiting.cancel()
        await #expect(throws: HvSocketError.cancelled) { try await waiting.value }
        // The stream is intact: the next read gets what the host sends.
        try await server.write([7, 8, 9])
        #expect(try await client.read(timeout: .seconds(10)) == [7, 8, 9])
        await client.close()
        await server.close()
    }

    @Test func aWriteIntoAFullRingTimesOutWithWhatWentOutAndLosesNothing() async throws {
        let (bus, host, guest) = try await socketBus()
        defer { withExtendedLifetime(bus) {} }
        let listener = host.listen(port: 6003)
        let client = try await guest.connect(port: 6003)
        let server = try await listener.accept(timeout: .seconds(10))
        // The host does not read: the 16-page ring fills and the write stops at the deadline.
        let data = randomBytes(1 << 20, seed: 3)
        let sent = try await client.write(data, timeout: .milliseconds(50))
        #expect(sent > 0 && sent < data.count)
        // Nothing more fits: a second timed write sends nothing and says so.
        await #expect(throws: HvSocketError.timedOut) { try await client.write(data[sent...], timeout: .milliseconds(20)) }
        let reader = Task { try await server.readAll() }
        try await client.write(data[sent...])
        try await client.shutdownWrite()
        #expect(try await reader.value == data)
        await client.close()
        await server.close()
    }

    @Test func acceptAndConnectStopOnTimeoutAndCancellation() async throws {
        let (bus, host, guest) = try await socketBus()
        defer { withExtendedLifetime(bus) {} }
        let listener = host.listen(port: 6004)
        await #expect(throws: HvSocketError.timedOut) { try await listener.accept(timeout: .milliseconds(20)) }
        let accepting = Task { try await listener.accept() }
        accepting.cancel()
        await #expect(throws: HvSocketError.cancelled) { try await accepting.value }
        // Nobody listens on the guest: the host's connect waits for an open that never comes.
        let connecting = Task { try await host.connect(port: 6005, timeout: .seconds(30)) }
        connecting.cancel()
        await #expect(throws: HvSocketError.cancelled) { try await connecting.value }
        await #expect(throws: HvSocketError.timedOut) { try await host.connect(port: 6005, timeout: .milliseconds(50)) }
        // The listener still works afterwards.
        let client = Task { try await guest.connect(port: 6004) }
        let server = try await listener.accept(timeout: .seconds(10))
        let stream = try await client.value
        try await stream.write([1])
        #expect(try await server.read() == [1])
    }

    @Test func goodDataBeforeAMalformedPacketIsStillRead() async throws {
        let (bus, host, guest) = try await socketBus()
        defer { withExtendedLifetime(bus) {} }
        let listener = host.listen(port: 6006)
        let client = try await guest.connect(port: 6006)
        let server = try await listener.accept(timeout: .seconds(10))
        try await server.write([1, 2, 3])
        // data_size beyond the packet.
        try await server.channel.send(inBand: [1, 0, 0, 0, 0x00, 0x10, 0, 0][...])
        // Whether the two packets arrive in one read or two, the good bytes come first.
        var got: [UInt8] = []
        while got.count < 3 { got += try await client.read() }
        #expect(got == [1, 2, 3])
        await #expect(throws: HvSocketError.self) { try await client.read() }
    }

    @Test func catchAllListenersTakeOnlyWhatTheirFilterAccepts() async throws {
        let (bus, host, guest) = try await socketBus()
        defer { withExtendedLifetime(bus) {} }
        let all = host.listenAll { $0.vsockPort.map { $0 >= 7000 } ?? false }
        let specific = host.listen(port: 7001)
        await #expect(throws: HvSocketError.refused) { try await guest.connect(port: 6999) }
        let caught = try await guest.connect(port: 7002)
        let stream = try await all.accept(timeout: .seconds(10))
        #expect(stream.port == 7002 && stream.remotePort == caught.localPort && !stream.isOutgoing && caught.isOutgoing)
        _ = try await guest.connect(port: 7001)
        #expect(try await specific.accept(timeout: .seconds(10)).port == 7001)
    }

    @Test func aGoneGuestClosesTheHostsListeners() async throws {
        let (bus, host, _) = try await socketBus()
        defer { withExtendedLifetime(bus) {} }
        let listener = host.listen(port: 7100)
        let all = host.listenAll { _ in true }
        let waiting = Task { try await listener.accept() }
        bus.host.connectionLost()
        await #expect(throws: HvSocketError.closed) { try await waiting.value }
        await #expect(throws: HvSocketError.closed) { try await all.accept() }
        #expect(!host.isConnected)
    }

    /// A connection that arrives before its connect starts waiting is that connect's: the
    /// resolver must say so, or the guest closes the stream it just handed over.
    @Test func aConnectResolvedBeforeItWaitsIsStillResolvedOnce() async {
        let pending = PendingConnect()
        #expect(pending.resolve(.failure(.refused)))
        #expect(!pending.resolve(.failure(.timedOut)))
        let result = await pending.wait(timeout: .seconds(10))
        #expect(throws: HvSocketError.refused) { try result.get() }
        let waiting = PendingConnect()
        let waiter = Task { await waiting.wait(timeout: .seconds(10)) }
        // Either order of resolve and wait: exactly one resolve wins and the waiter gets it.
        #expect(waiting.resolve(.failure(.closed)))
        #expect(!waiting.resolve(.failure(.refused)))
        let outcome = await waiter.value
        #expect(throws: HvSocketError.closed) { try outcome.get() }
    }
}
