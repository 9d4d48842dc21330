import Foundation
import Testing
import VMBusChannel
import VMBusDevices
import VMBusGuest
import VMBusHost
import VMBusLocal
import VMBusMemory
import VMBusWire

/// Counts events; ``wait(for:)`` suspends until the count reaches a value (no polling).
final class Progress: Sendable {
    struct State {
        var count = 0
        var waiters: [(Int, CheckedContinuation<Void, Never>)] = []
    }
    let state = Locked(State())

    func add() {
        let ready = self.state.withLock { state in
            state.count += 1
            let ready = state.waiters.filter { $0.0 <= state.count }.map(\.1)
            state.waiters.removeAll { $0.0 <= state.count }
            return ready
        }
        for waiter in ready { waiter.resume() }
    }

    var count: Int { self.state.withLock { $0.count } }

    func wait(for target: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = self.state.withLock { state in
                if state.count >= target { return true }
                state.waiters.append((target, continuation))
                return false
            }
            if now { continuation.resume() }
        }
    }
}

/// A host handed to a new `LocalHost` in the same process (what a takeover does between two
/// processes, with the descriptors duplicated as SCM_RIGHTS would): the guest keeps streaming
/// and sees a pause, nothing else.
@Suite(.serialized) struct HandoverTests {
    /// Heartbeat services made so far, newest last (the new host's is the last one).
    static let heartbeats = Locked<[HeartbeatHost]>([])

    /// Two echo devices — one answers from a reader task, one from its interrupt handler — and
    /// the heartbeat service.
    static let devices: @Sendable (HostBus) -> [any HostDevice] = { bus in
        var devices: [any HostDevice] = (0..<2).map { n in
            let device = EchoDevice(instance: GUID(data1: UInt32(n), data2: 7, data3: 7, data4: 7), interruptDriven: n == 1)
            device.attach(to: bus)
            return device
        }
        let heartbeat = HeartbeatHost()
        Self.heartbeats.withLock { $0.append(heartbeat) }
        devices.append(heartbeat.device)
        return devices
    }

    /// A guest on `path` with the echo client bound to every echo device.
    static func echoGuest(_ path: String, megabytes: Int, ringPages: Int) async throws -> (LocalGuest, EchoClient) {
        let guest = try LocalGuest.connect(path: path, memoryBytes: megabytes << 20)
        let client = EchoClient(pages: RingPages(each: ringPages))
        guest.bus.register(client)
        _ = try await guest.bus.connect()
        await guest.bus.settle()
        return (guest, client)
    }

    /// Requests on every device from several tasks at once; each answer must be its own
    /// request's bytes. A watchdog closes the channels if the stream stalls, so a lost answer
    /// fails the test instead of hanging it.
    static func stream(_ client: EchoClient, lanes: Int, rounds: Int, progress: Progress) -> Task<Int, any Error> {
        Task {
            let watchdog = Task {
                try await Task.sleep(for: .seconds(120))
                for device in client.devices { client.channel(device.relid)?.close(.closedLocally) }
            }
            defer { watchdog.cancel() }
            return try await withThrowingTaskGroup(of: Int.self) { group in
                for device in client.devices {
                    for lane in 0..<lanes {
                        group.addTask {
                            var good = 0
                            for round in 0..<rounds {
                                let payload = (0..<(8 * (1 + round % 12))).map { UInt8(truncatingIfNeeded: $0 &+ round &* 7 &+ lane &* 31) }
                                let answer = try await client.echo(payload, device: device.relid)
                                if answer == payload { good += 1 }
                                progress.add()
                            }
                            return good
                        }
                    }
                }
                return try await group.reduce(0, +)
            }
        }
    }

    @Test func aHostIsHandedOverMidStreamWithNothingLost() async throws {
        let path = socketPath()
        let old = try LocalHost(path: path, devices: Self.devices)
        old.start()
        let guest = try LocalGuest.connect(path: path, memoryBytes: 16 << 20)
        let client = EchoClient(pages: RingPages(each: 4))
        guest.bus.register(client)
        let heartbeatGuest = HeartbeatGuest()
        guest.bus.register(ICGuestDriver(heartbeatGuest))
        _ = try await guest.bus.connect()
        await guest.bus.settle()
        #expect(client.devices.count == 2)
        let oldHeartbeat = try #require(Self.heartbeats.withLock { $0.last })
        _ = try await oldHeartbeat.beat()
        let progress = Progress()
        let (lanes, rounds) = (4, 1500)
        let stream = Self.stream(client, lanes: lanes, rounds: rounds, progress: progress)
        await progress.wait(for: 2000)

        let new = try await old.handOverInProcess(path: path, devices: Self.devices)
        defer { new.stop() }

        #expect(try await stream.value == 2 * lanes * rounds, "every answer is its own request's")
        #expect(progress.count == 2 * lanes * rounds)
        #expect(guest.ending == nil, "the guest never lost its connection")
        #expect(new.guests.map(\.id) == [1] && new.servedCount == 1)
        // The heartbeat service carries on at the versions negotiated before, without a new
        // negotiation: the guest answers the new host's beat.
        let newHeartbeat = try #require(Self.heartbeats.withLock { $0.last })
        #expect(newHeartbeat !== oldHeartbeat)
        #expect(newHeartbeat.device.negotiated != nil && newHeartbeat.device.negotiated?.service == oldHeartbeat.device.negotiated?.service)
        let answeredBefore = heartbeatGuest.count
        _ = try await newHeartbeat.beat()
        #expect(heartbeatGuest.count == answeredBefore + 1)
        // The old host let go of its guest without a goodbye; the new one has the listener.
        await old.idle()
        let (second, secondClient) = try await Self.echoGuest(path, megabytes: 8, ringPages: 2)
        #expect(try await secondClient.echo([1, 2, 3, 4, 5, 6, 7, 8]) == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(new.guests.map(\.id) == [1, 2])
        second.disconnect()
        guest.disconnect()
    }

    /// A hundred hand-overs in a row, each to a new host, while the guest keeps echoing on both
    /// devices: every answer is its own request's, and the guest never loses its connection.
    @Test func aHundredHandoversInARow() async throws {
        let path = socketPath()
        var host = try LocalHost(path: path, devices: Self.devices)
        host.start()
        let (guest, client) = try await Self.echoGuest(path, megabytes: 16, ringPages: 2)
        let answered = Progress()
        let wrong = Locked(0)
        let traffic = client.devices.map { device in
            Task {
                var n = 0
                while !Task.isCancelled {
                    let payload = (0..<16).map { UInt8(truncatingIfNeeded: $0 &+ n &+ Int(device.relid)) }
                    guard let answer = try? await client.echo(payload, device: device.relid) else { return }
                    if answer != payload { wrong.withLock { $0 += 1 } }
                    answered.add()
                    n += 1
                }
            }
        }
        // A stall (a lost packet) fails the test instead of hanging it: the watchdog releases
        // every wait and says so.
        let stalled = Locked(false)
        let watchdog = Task {
            try await Task.sleep(for: .seconds(180))
            stalled.withLock { $0 = true }
            for _ in 0..<100_000 { answered.add() }
        }
        defer { watchdog.cancel() }
        for round in 0..<100 where !stalled.withLock({ $0 }) {
            // Traffic flows between hand-overs: each round waits for more answers.
            await answered.wait(for: answered.count + 4)
            host = try await host.handOverInProcess(path: path, devices: Self.devices)
            #expect(guest.ending == nil, "round \(round)")
        }
        await answered.wait(for: answered.count + 100)
        for task in traffic { task.cancel() }
        #expect(!stalled.withLock { $0 }, "the echo traffic stalled")
        #expect(wrong.withLock { $0 } == 0)
        #expect(host.guests.map(\.id) == [1])
        guest.disconnect()
        await host.idle()
        host.stop()
    }

    @Test func anAbortedHandoverLeavesTheOldHostServing() async throws {
        let path = socketPath()
        let old = try LocalHost(path: path, devices: Self.devices)
        old.start()
        defer { old.stop() }
        let (guest, client) = try await Self.echoGuest(path, megabytes: 16, ringPages: 4)
        let progress = Progress()
        let stream = Self.stream(client, lanes: 2, rounds: 1000, progress: progress)
        await progress.wait(for: 500)
        let handover = try await old.prepareHandover(timeout: .seconds(10))
        // The new process refuses what it was given: a damaged state. It closes every
        // descriptor it was passed, and the old host carries on.
        var damaged = handover.state
        damaged[damaged.count / 2] ^= 0xFF
        let fds = try handover.descriptors.map { try DescriptorIO.duplicate($0) }
        #expect(throws: SavedStateError.self) {
            _ = try LocalHost(restoring: damaged, descriptors: fds, path: path, devices: Self.devices)
        }
        old.abortHandover()
        #expect(try await stream.value == 2 * 2 * 1000)
        #expect(guest.ending == nil)
        guest.disconnect()
    }

    /// An echo device that does not say it can be saved.
    final class PlainEcho: HostDevice {
        let inner = EchoDevice(instance: GUID(data1: 9, data2: 9, data3: 9, data4: 9))
        var offer: HostOffer { self.inner.offer }
        func opened(_ channel: Channel, info: HostChannelInfo) { self.inner.opened(channel, info: info) }
    }

    /// A device that cannot be saved, with an open channel, makes the host refuse the
    /// hand-over — and keep serving.
    @Test func anUnserviceableDeviceRefusesTheHandover() async throws {
        let path = socketPath()
        let old = try LocalHost(path: path) { _ in [PlainEcho()] }
        old.start()
        defer { old.stop() }
        let (guest, client) = try await Self.echoGuest(path, megabytes: 4, ringPages: 2)
        #expect(client.devices.count == 1)
        do {
            _ = try await old.prepareHandover(timeout: .seconds(5))
            Issue.record("the hand-over should have been refused")
        } catch {
            #expect(error.description.contains("cannot be saved"))
        }
        #expect(old.guests.count == 1)
        #expect(guest.ending == nil)
        #expect(try await client.echo([1, 2, 3, 4, 5, 6, 7, 8]) == [1, 2, 3, 4, 5, 6, 7, 8])
        guest.disconnect()
    }
}
