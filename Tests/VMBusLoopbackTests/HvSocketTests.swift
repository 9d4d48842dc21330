import Foundation
import Testing
import VMBusChannel
import VMBusDevices
import VMBusGuest
import VMBusHost
import VMBusLoopback
import VMBusMemory
import VMBusWire

/// A loopback bus with hvsock on both sides, connected.
func socketBus() async throws -> (LoopbackBus, HvSocketHost, HvSocketGuest) {
    let bus = try LoopbackBus()
    let host = HvSocketHost(bus: bus.host, linger: .seconds(2))
    let guest = HvSocketGuest(bus: bus.guest, closeTimeout: .seconds(2))
    bus.guest.register(guest)
    _ = try await bus.guest.connect()
    return (bus, host, guest)
}

func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    // A plain loop over a local: a closure capturing the state boxes it, and under the thread
    // sanitizer every byte's access to the box is checked (megabytes took seconds of a pool
    // thread).
    var state = seed | 1
    var bytes: [UInt8] = []
    bytes.reserveCapacity(count)
    for _ in 0..<count {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        bytes.append(UInt8(truncatingIfNeeded: state))
    }
    return bytes
}

@Suite struct HvSocketTests {
    @Test func aGuestConnectsToAHostServiceAndBothDirectionsArriveByteExact() async throws {
        let (bus, host, guest) = try await socketBus()
        defer { withExtendedLifetime(bus) {} }
        let listener = host.listen(port: 5000)
        let up = randomBytes(1 << 20, seed: 1)
        let down = randomBytes(700_001, seed: 2)
        let server = Task { () async throws -> [UInt8] in
            let stream = try await listener.accept(timeout: .seconds(10))
            #expect(stream.port == 5000)
            let received = try await stream.readAll()
            try await stream.write(down)
            await stream.close()
            return received
        }
        let client = try await guest.connect(port: 5000)
        try await client.write(up)
        try await client.shutdownWrite()
        let back = try await client.readAll()
        await client.close()
        #expect(try await server.value == up)
        #expect(back == down)
    }

    @Test func theHostConnectsToAGuestListener() async throws {
        let (bus, host, guest) = try await socketBus()
        defer { withExtendedLifetime(bus) {} }
        let listener = guest.listen(port: 22)
        let server = Task { () async throws -> Void in
            let stream = try await listener.accept(timeout: .seconds(10))
            let request = try await stream.readAll()
            try await stream.write(Array(request.reversed()))
            await stream.close()
        }
        let stream = try await host.connect(port: 22)
        try await stream.write(Array("hello, guest".utf8))
        try await stream.shutdownWrite()
        #expect(String(decoding: try await stream.readAll(), as: UTF8.self) == "tseug ,olleh")
        await stream.close()
        try await server.value
    }

    /// Through a relay, a guest port nobody listens on gets an ERROR line that says so (the
    /// guest stays silent; only the deadline tells).
    @Test func aRelayExplainsASilentGuestPort() async throws {
        let (bus, host, _) = try await socketBus()
        defer { withExtendedLifetime(bus) {} }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-relay-\(UInt32.random(in: 0...UInt32.max))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let relay = try HvSocketRelay(directory: directory, connectTimeout: .milliseconds(200))
        defer { relay.stop() }
        relay.attach(host)
        let client = try StreamSocket.connect(.unix(relay.connectPath))
        try client.write(Array("CONNECT 4243\n".utf8)[...])
        // Read on a thread of its own: the relay needs the pool while this waits.
        let answer = await withCheckedContinuation { (done: CheckedContinuation<[UInt8], Never>) in
            Thread {
                var buffer = [UInt8](repeating: 0, count: 256)
                var answer: [UInt8] = []
                while !answer.contains(10), let n = try? client.read(into: &buffer), n > 0 { answer += buffer[0..<n] }
                done.resume(returning: answer)
            }.start()
        }
        #expect(String(decoding: answer, as: UTF8.self) == "ERROR port 4243: no answer in time (nobody listening on that port?)\n")
    }

    @Test func connectingToNobodyIsRefused() async throws {
        let (bus, host, guest) = try await socketBus()
        defer { withExtendedLifetime(bus) {} }
        await #expect(throws: HvSocketError.refused) { try await guest.connect(port: 9999, timeout: .seconds(10)) }
        // The host connecting to a port nobody listens on times out; its offer is taken back.
        let before = bus.host.relids.count
        await #expect(throws: HvSocketError.timedOut) { try await host.connect(port: 4242, timeout: .milliseconds(300)) }
        await bus.guest.settle()
        #expect(bus.host.relids.count == before)
    }

    @Test func manyConnectionsAtOnce() async throws {
        let (bus, host, guest) = try await socketBus()
        defer { withExtendedLifetime(bus) {} }
        let listener = host.listen(port: 7)
        let count = 16
        let server = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<count {
                    let stream = try await listener.accept(timeout: .seconds(20))
                    group.addTask {
                        let data = try await stream.readAll()
                        try await stream.write(data)
                        await stream.close()
                    }
                }
                try await group.waitForAll()
            }
        }
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for n in 0..<count {
                group.addTask {
                    let data = randomBytes(40_000 + n * 997, seed: UInt64(n + 10))
                    let stream = try await guest.connect(port: 7)
                    try await stream.write(data)
                    try await stream.shutdownWrite()
                    let back = try await stream.readAll()
                    await stream.close()
                    return back == data
                }
            }
            for try await ok in group { #expect(ok) }
        }
        try await server.value
    }

    @Test func halfCloseLetsTheOtherSideKeepWriting() async throws {
        let (bus, host, guest) = try await socketBus()
        defer { withExtendedLifetime(bus) {} }
        let listener = host.listen(port: 80)
        let client = try await guest.connect(port: 80)
        let server = try await listener.accept(timeout: .seconds(10))
        try await client.shutdownWrite()
        #expect(try await server.read().isEmpty)  // end of stream from the guest
        await #expect(throws: HvSocketError.closed) { try await client.write([1]) }
        for n in 0..<5 { try await server.write([UInt8(n)]) }
        try await server.shutdownWrite()
        #expect(try await client.readAll() == [0, 1, 2, 3, 4])
        await client.close()
        await server.close()
    }

    @Test func malformedPipePacketsFailTheStream() async throws {
        let (bus, host, guest) = try await socketBus()
        defer { withExtendedLifetime(bus) {} }
        let listener = host.listen(port: 81)
        let client = try await guest.connect(port: 81)
        let server = try await listener.accept(timeout: .seconds(10))
        // A pipe header claiming more data than the packet holds.
        try await server.channel.send(inBand: [1, 0, 0, 0, 0xFF, 0xFF, 0, 0][...])
        await #expect(throws: HvSocketError.self) { try await client.read() }
        // An unknown pipe packet type.
        let other = try await guest.connect(port: 81)
        let otherServer = try await listener.accept(timeout: .seconds(10))
        try await otherServer.channel.send(inBand: [9, 0, 0, 0, 0, 0, 0, 0][...])
        await #expect(throws: HvSocketError.self) { try await other.read() }
    }

    @Test func aRescindMidStreamEndsTheGuestsStream() async throws {
        let (bus, host, guest) = try await socketBus()
        defer { withExtendedLifetime(bus) {} }
        let listener = host.listen(port: 82)
        let client = try await guest.connect(port: 82)
        let server = try await listener.accept(timeout: .seconds(10))
        try await server.write([1, 2, 3])
        #expect(try await client.read() == [1, 2, 3])
        let relid = try #require(bus.guest.devices.first { $0.isHvSock }?.relid)
        bus.host.rescind(relid)
        await bus.guest.settle()
        await #expect(throws: HvSocketError.peerGone(.rescinded)) { try await client.read() }
    }
}
