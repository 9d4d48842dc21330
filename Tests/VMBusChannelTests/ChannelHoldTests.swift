import Testing
import VMBusChannel
import VMBusMemory
import VMBusWire

/// Counts events; ``wait(for:)`` suspends until the count reaches a value (no polling).
final class EventCount: Sendable {
    struct State {
        var count = 0
        var waiters: [(Int, CheckedContinuation<Void, Never>)] = []
    }
    let state = Locked(State())

    func add() {
        let ready = self.state.withLock { state in
            state.count += 1
            let ready = state.waiters.filter { $0.0 <= state.count }
            state.waiters.removeAll { $0.0 <= state.count }
            return ready.map(\.1)
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

/// ``Channel/hold(timeout:)``: delivery stops at a packet boundary with the read index
/// published, so a new channel on the same rings — a new host process after a takeover —
/// reads on from exactly the next packet.
@Suite struct ChannelHoldTests {
    /// A numbered 16-byte payload.
    static func numbered(_ n: Int) -> [UInt8] { (0..<16).map { UInt8(truncatingIfNeeded: n >> (8 * ($0 % 8))) } }

    @Test func aHeldReaderLeavesLaterPacketsForTheNextOwnerOfTheRing() async throws {
        let pair = try ChannelPair(pages: 8)
        let seen = Locked<[[UInt8]]>([])
        let count = EventCount()
        let reader = Task {
            _ = try await pair.host.receive { packet in
                seen.withLock { $0.append(Array(packet.payload)) }
                count.add()
            }
        }
        for n in 0..<100 { try await pair.guest.send(inBand: Self.numbered(n)[...]) }
        // Every packet sent before the hold reaches the reader first (the hold only stops it at
        // a boundary), so the test waits for them by count, not by time.
        await count.wait(for: 100)
        #expect(await pair.host.hold(timeout: .seconds(10)))
        for n in 100..<150 { try await pair.guest.send(inBand: Self.numbered(n)[...]) }
        // The held reader takes nothing more: the 50 stay in the ring.
        #expect(seen.withLock { $0.count } == 100)
        #expect(pair.host.fill.incoming == 50 * (16 + 16 + 8))

        // A second host end on the same memory reads on from packet 100, in order.
        let rings = try ChannelRings.rings(in: pair.memory, downstreamPageOffset: 8, side: .host)
        let next = try Channel(relid: 1, outgoing: rings.outgoing, incoming: rings.incoming, doorbell: ClosureDoorbell {})
        var taken: [[UInt8]] = []
        _ = try next.drain { _, payload in
            var bytes: [UInt8] = []
            bytes.append(span: payload)
            taken.append(bytes)
        }
        #expect(taken == (100..<150).map(Self.numbered))
        #expect(seen.withLock { $0 } == (0..<100).map(Self.numbered))
        pair.host.close(.closedLocally)
        _ = await reader.result
    }

    @Test func releaseLetsTheSameReaderGoOn() async throws {
        let pair = try ChannelPair(pages: 8)
        let seen = EventCount()
        let reader = Task { _ = try await pair.host.receive { _ in seen.add() } }
        #expect(await pair.host.hold(timeout: .seconds(10)))
        for n in 0..<20 { try await pair.guest.send(inBand: Self.numbered(n)[...]) }
        #expect(seen.count == 0)
        pair.host.release()
        await seen.wait(for: 20)
        #expect(seen.count == 20)
        pair.host.close(.closedLocally)
        _ = await reader.result
    }

    @Test func aHeldChannelRunsNoInterruptHandlerUntilReleased() async throws {
        let pair = try ChannelPair(pages: 8)
        let drained = Locked(0)
        pair.host.onInterrupt { _ = try? pair.host.drain { _, _ in drained.withLock { $0 += 1 } } }
        try await pair.guest.send(inBand: Self.numbered(0)[...])
        #expect(drained.withLock { $0 } == 1)
        #expect(await pair.host.hold(timeout: .seconds(10)))
        for n in 1..<10 { try await pair.guest.send(inBand: Self.numbered(n)[...]) }
        #expect(drained.withLock { $0 } == 1)
        #expect(try pair.host.drain { _, _ in } == 0, "a drain takes nothing while held")
        pair.host.release()
        #expect(drained.withLock { $0 } == 10)
    }

    /// A reader stuck inside a packet (here, waiting for something that never comes) cannot
    /// be held: the hold reports it at its timeout instead of waiting forever.
    @Test func aHoldTimesOutWhileAPacketIsStillBeingHandled() async throws {
        let pair = try ChannelPair(pages: 8)
        let entered = EventCount()
        let reader = Task {
            _ = try await pair.host.receive { _ in
                entered.add()
                _ = await pair.host.closed()
            }
        }
        try await pair.guest.send(inBand: Self.numbered(0)[...])
        await entered.wait(for: 1)
        #expect(await pair.host.hold(timeout: .milliseconds(50)) == false)
        pair.host.close(.closedLocally)
        _ = await reader.result
    }
}
