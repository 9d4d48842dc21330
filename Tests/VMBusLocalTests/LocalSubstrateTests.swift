import Foundation
import Testing
import VMBusChannel
import VMBusDevices
import VMBusGuest
import VMBusHost
import VMBusLocal
import VMBusMemory
import VMBusWire

/// A socket path of its own for each test.
func socketPath() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-\(UInt32.random(in: 0...UInt32.max)).sock").path
}

func echoHost(_ path: String, devices: Int = 2) throws -> LocalHost {
    let host = try LocalHost(path: path) { bus in
        (0..<devices).map { n in
            let device = EchoDevice(instance: GUID(data1: UInt32(n), data2: 1, data3: 2, data4: 3), maximumSubChannels: 2)
            device.attach(to: bus)
            return device
        }
    }
    host.start()
    return host
}

/// A guest of 8 MiB connected at `path` with an echo client bound (2-page rings).
func echoGuest(_ path: String) async throws -> (LocalGuest, EchoClient) {
    let guest = try LocalGuest.connect(path: path, memoryBytes: 8 << 20)
    let client = EchoClient(pages: RingPages(each: 2))
    guest.bus.register(client)
    _ = try await guest.bus.connect()
    await guest.bus.settle()
    return (guest, client)
}

@Suite(.serialized) struct LocalSubstrateTests {
    @Test func aGuestConnectsBindsAndEchoesThroughTheSubstrate() async throws {
        let path = socketPath()
        let host = try echoHost(path)
        defer { host.stop() }
        let guest = try LocalGuest.connect(path: path, memoryBytes: 16 << 20)
        let client = EchoClient(pages: RingPages(each: 4))
        guest.bus.register(client)
        #expect(try await guest.bus.connect() == .copper)
        await guest.bus.settle()
        #expect(client.devices.count == 2)
        for device in client.devices {
            for n in 0..<50 {
                let bytes = (0..<(n * 37 % 500 + 1)).map { UInt8(truncatingIfNeeded: $0 &+ n) }
                #expect(try await client.echo(bytes, device: device.relid) == bytes)
            }
        }
        #expect(host.guests.count == 1)
        #expect(try await client.requestSubChannels(2, device: client.devices[0].relid) == 2)
        guest.disconnect()
        #expect(await guest.ended() == .local)
        await host.idle()  // the host released the guest's connection
        #expect(host.guests.isEmpty && host.servedCount == 1)
    }

    /// A task that prefers a channel's `taskExecutor` runs on the guest's event loop — the
    /// thread that takes the host's doorbells — and echoes from there; after the guest is
    /// gone, such a task still runs (elsewhere).
    @Test func aTaskPreferringTheChannelsExecutorRunsOnTheEventLoop() async throws {
        let path = socketPath()
        let host = try echoHost(path, devices: 1)
        defer { host.stop() }
        let (guest, client) = try await echoGuest(path)
        let channel = try #require(client.devices.first.flatMap { client.channel($0.relid) })
        let executor = try #require(channel.taskExecutor)
        let (thread, answers) = try await Task(executorPreference: executor) {
            var answers: [[UInt8]] = []
            for n in 0..<100 {
                answers.append(try await client.echo([UInt8(n), 1, 2]))
            }
            return (currentThreadName(), answers)
        }.value
        #expect(thread == "vmbus-guest")
        #expect(answers == (0..<100).map { [UInt8($0), 1, 2] })
        guest.disconnect()
        _ = await guest.ended()
        #expect(await Task(executorPreference: executor) { currentThreadName() }.value != "vmbus-guest")
    }

    @Test func theHostRefusesMemoryThatIsNotSealed() async throws {
        let path = socketPath()
        let host = try echoHost(path)
        defer { host.stop() }
        let socket = try LocalSocket.connect(path: path)
        let memory = try MappedMemory.anonymous(size: 4096)  // no descriptor: send a pipe instead
        _ = memory
        let (readEnd, writeEnd) = try DescriptorIO.pipe()
        defer { DescriptorIO.close(readEnd); DescriptorIO.close(writeEnd) }
        try socket.send(SubstrateFrame.hello(version: 1, pageSize: 4096, memoryBytes: 1 << 20).encode(), fds: [readEnd])
        let answer = try socket.receive()
        guard case .refuse(.notSealed, _)? = try? SubstrateFrame.parse(answer.bytes[...], descriptors: answer.fds.count) else {
            Issue.record("expected REFUSE(not sealed), got \(answer.bytes)")
            return
        }
        // The wrong version is refused too.
        let second = try LocalSocket.connect(path: path)
        try second.send(SubstrateFrame.hello(version: 9, pageSize: 4096, memoryBytes: 1 << 20).encode(), fds: [readEnd])
        let refusal = try second.receive()
        #expect(try SubstrateFrame.parse(refusal.bytes[...], descriptors: 0) == .refuse(.unsupportedVersion, text: "substrate version 9"))
    }

    @Test func garbageFromARawClientClosesOnlyThatConnection() async throws {
        let path = socketPath()
        let host = try echoHost(path, devices: 1)
        defer { host.stop() }
        for garbage: [UInt8] in [[1, 2, 3], [4, 0, 0, 0, 4, 0, 0, 0, 9, 9, 9, 9], [1, 0, 1, 0, 0, 0, 0, 0], [99, 0, 0, 0, 0, 0, 0, 0]] {
            let raw = try LocalSocket.connect(path: path)
            try raw.send(garbage)
            // The host answers GOODBYE(protocol error) or REFUSE, then closes: the next receive
            // ends with end-of-stream.
            var closed = false
            for _ in 0..<3 {
                let datagram = try raw.receive()
                if datagram.isEndOfStream {
                    closed = true
                    break
                }
            }
            #expect(closed)
        }
        // A real guest is still served.
        let (guest, client) = try await echoGuest(path)
        #expect(try await client.echo([1, 2, 3]) == [1, 2, 3])
        guest.disconnect()
        _ = await guest.ended()
    }

    @Test func whenTheHostGoesAwayTheGuestsChannelsFail() async throws {
        let path = socketPath()
        let host = try echoHost(path, devices: 1)
        let (guest, client) = try await echoGuest(path)
        let channel = try #require(client.devices.first.flatMap { client.channel($0.relid) })
        host.stop()
        #expect(await guest.ended() == .goodbye(.normal))
        #expect(await channel.closed() == .connectionLost)
        await #expect(throws: (any Error).self) { try await client.echo([1]) }
    }
}

/// The calling thread's name, as the kernel has it.
func currentThreadName() -> String? { ThreadName.current }
