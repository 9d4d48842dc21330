import Testing
@testable import VMBusChannel
import VMBusMemory
import VMBusWire

/// `finish(_:)`: the peer is gone, what it wrote before is still delivered, then the channel
/// ends.
@Suite struct ChannelFinishTests {
    @Test func packetsWrittenBeforeFinishAreDeliveredThenTheChannelEnds() async throws {
        let pair = try ChannelPair()
        for n in 0..<3 { #expect(try pair.guest.trySend(inBand: pattern(8, seed: n)[...])) }
        let reader = try pair.host.reader()
        pair.host.finish(.closedByPeer)
        for n in 0..<3 { #expect(Array(try #require(await reader.next()).payload) == pattern(8, seed: n)) }
        #expect(await reader.next() == nil)
        #expect(reader.closeReason == .closedByPeer)
        #expect(await pair.host.closed() == .closedByPeer)
    }

    /// The race a uio program hit when it wrote, rang and closed its node at once: the reader
    /// found the ring empty, the program's last packet landed, and only then did the host hear
    /// of the close and call `finish`. The packet must still be delivered.
    @Test func aPacketLandingBetweenAnEmptyLookAndFinishIsDelivered() async throws {
        let pair = try ChannelPair()
        let reader = try pair.host.reader()
        let fired = Locked(false)
        let (guest, host) = (pair.guest, pair.host)
        reader.lookedEmpty = {
            guard !fired.withLock({ old in defer { old = true }; return old }) else { return }
            _ = try? guest.trySend(inBand: pattern(8, seed: 42)[...])
            host.finish(.closedByPeer)
        }
        let packet = try #require(await reader.next())
        #expect(Array(packet.payload) == pattern(8, seed: 42))
        #expect(await reader.next() == nil)
        #expect(reader.closeReason == .closedByPeer)
    }
}
