import VMBusChannel
import VMBusGuest
import VMBusLoopback
import VMBusWire
import VMBusDevices
import VMBusMemory
import Testing

/// The echo device and client answering from their channels' interrupt handlers.
@Suite struct InterruptEchoTests {
    @Test func echoesAndSubChannelsWorkWithoutReaderTasks() async throws {
        let (bus, _, client) = try echoBus(devices: 2, maximumSubChannels: 2, interruptDriven: true)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        #expect(client.devices.count == 2)
        for device in client.devices {
            for size in [1, 8, 100, 1000, 4000] {
                let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ Int(device.relid)) }
                // Answers come back padded to whole 8-byte units.
                #expect(try await client.echo(bytes, device: device.relid).prefix(size) == bytes[...])
            }
        }
        let primary = try #require(client.devices.first?.relid)
        #expect(try await client.requestSubChannels(2, device: primary) == 2)
        await client.waitForSubChannels(of: primary, count: 2)
        #expect(bus.host.violations.isEmpty && bus.guest.misbehaviours.isEmpty)
    }

    /// Answers that find the guest's ring full wait in order and all arrive once it reads.
    @Test func answersWaitInOrderWhileTheRingIsFull() async throws {
        let (bus, _, client) = try echoBus(devices: 1, interruptDriven: true)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        let relid = try #require(client.devices.first?.relid)
        let channel = try #require(client.channel(relid))
        channel.onInterrupt(nil)  // nobody reads the answers for now
        // 100 × 512 B: far more than the 3-page ring can hold.
        let count = 100
        let sent = (0..<count).map { i in (0..<512).map { UInt8(truncatingIfNeeded: $0 &+ i &* 7) } }
        for packet in sent { try await channel.send(inBand: packet[...]) }
        let received = Locked<[[UInt8]]>([])
        let waiter = Locked<CheckedContinuation<Void, Never>?>(nil)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            waiter.withLock { $0 = done }
            channel.onInterrupt {
                _ = try? channel.drain { descriptor, payload in
                    guard descriptor.type == .dataInBand else { return }
                    var bytes: [UInt8] = []
                    bytes.append(span: payload)
                    let all = received.withLock { list in
                        list.append(bytes)
                        return list.count == count
                    }
                    if all { waiter.withLock { $0.take() }?.resume() }
                }
            }
        }
        #expect(received.withLock { $0 } == sent)
    }

    /// Round trips driven by the client's handler: every one is timed, in order; the usual
    /// handler is back afterwards; a client reading with a task cannot drive them.
    @Test func pingPongRunsInTheHandlersAndRestoresTheClient() async throws {
        let (bus, _, client) = try echoBus(devices: 1, interruptDriven: true)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        let samples = try await client.pingPong(rounds: 300, payload: [UInt8](repeating: 0x5A, count: 64))
        #expect(samples.count == 300)
        #expect(samples.allSatisfy { $0 > .zero })
        #expect(try await client.echo([1, 2, 3]) == [1, 2, 3])
        #expect(bus.host.violations.isEmpty && bus.guest.misbehaviours.isEmpty)
        withExtendedLifetime(bus) {}

        let (taskBus, _, taskClient) = try echoBus(devices: 1)
        _ = try await taskBus.guest.connect()
        await taskBus.guest.settle()
        await #expect(throws: BusError.self) { try await taskClient.pingPong(rounds: 1, payload: [1]) }
        withExtendedLifetime(taskBus) {}
    }

    /// The discard device dropping packets in its handler: a stream many times the ring,
    /// then a request that is answered only once everything before it was read.
    @Test func anInterruptDrivenDiscardDeviceDrainsStreamsAndAnswersRequests() async throws {
        let bus = try LoopbackBus()
        let sink = DiscardDevice(instance: instance(9), interruptDriven: true)
        bus.host.register(sink)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        let offered = try #require(bus.guest.devices.first { $0.classID == Discard.classID })
        let channel = try await bus.guest.open(offered.relid, pages: RingPages(each: 3))
        // Completions are routed by whoever reads the guest's ring.
        let reader = Task { _ = try? await channel.receive { _ in } }
        let payload = [UInt8](repeating: 0xA5, count: 3000)
        for _ in 0..<500 { try await channel.send(inBand: payload[...]) }
        for _ in 0..<3 { #expect(try await channel.request([7][...]).isEmpty) }
        #expect(channel.statistics.outgoing.packets >= 503)
        #expect(bus.host.violations.isEmpty && bus.guest.misbehaviours.isEmpty)
        channel.close(.closedLocally)
        await reader.value
        withExtendedLifetime(bus) {}
    }
}
