import Foundation
import Logging
import VMBusLocal
import VMBusMemory
import VMBusNetwork
import VMBusWire

extension DemoCommand {
    /// The network step: two more guest connections with synthetic NICs, joined by the host's
    /// switch (`--net switch`); frames from one to the other, through both NICs' rings.
    static func runNetwork(_ path: String, logger: Logger, capture: (any CaptureRecorder)? = nil) async throws {
        func nicGuest(_ number: UInt32) async throws -> (LocalGuest, NetvscNIC, MemoryNetworkPort) {
            let guest = try LocalGuest.connect(path: path, memoryBytes: 32 << 20, logger: logger, capture: capture, captureConnection: number)
            let (driver, systems) = NetvscDriver.inMemory(capacity: 65536)
            guest.bus.register(driver)
            _ = try await guest.bus.connect()
            await guest.bus.settle()
            guard let nic = driver.nics.first, let system = systems.first else {
                guest.disconnect()
                throw CLIError("the host offered no synthetic NIC")
            }
            return (guest, nic, system)
        }
        let (first, a, aSystem) = try await nicGuest(2)
        defer { first.disconnect() }
        let (second, b, bSystem) = try await nicGuest(3)
        defer { second.disconnect() }
        print("network: two more guests with synthetic NICs on the host's switch — NVSP \(a.version), "
            + "MACs \(a.macAddress.map { "\($0)" } ?? "?") and \(b.macAddress.map { "\($0)" } ?? "?"), MTU \(a.mtu)")
        guard let aMAC = a.macAddress, let bMAC = b.macAddress else { return }
        var atB = bSystem.frames().makeAsyncIterator()
        var atA = aSystem.frames().makeAsyncIterator()
        // A broadcast first, so the switch learns where each NIC is.
        aSystem.send((Array(repeating: 0xFF, count: 6) + aMAC.bytes + [0x88, 0xB5] + Array(repeating: 0, count: 46))[...])
        _ = await atB.next()
        bSystem.send((Array(repeating: 0xFF, count: 6) + bMAC.bytes + [0x88, 0xB5] + Array(repeating: 0, count: 46))[...])
        _ = await atA.next()
        let count = 5_000
        let frame = bMAC.bytes + aMAC.bytes + Self.udpPacket(from: [192, 0, 2, 2], to: [192, 0, 2, 3], payload: 1472)
        let start = ContinuousClock.now
        var received = 0
        // Bursts of 128 in one batch, each awaited with its send sections back: the sending
        // NIC's 170 sections bound what may be in flight (an in-memory port, like a wire, drops
        // what the NIC has no room for).
        var batch = FrameBatch(capacity: 128 * frame.count)
        while received < count {
            let burst = min(128, count - received)
            batch.removeAll()
            for _ in 0..<burst { batch.append(frame) }
            aSystem.send(batch: batch)
            for _ in 0..<burst {
                guard let got = await atB.next(), got == frame else { throw CLIError("a frame arrived changed or not at all") }
                received += 1
            }
            guard await a.waitForSendsCompleted(timeout: .seconds(10)) else { throw CLIError("the host did not complete guest 1's sends") }
        }
        let seconds = elapsedSeconds(since: start)
        print("  \(count) frames of 1514 bytes guest → host switch → guest, byte-exact, in \(milliseconds(seconds)) ms "
            + "(\(Int(Double(count) / seconds)) frames/s); guest 1 sent \(a.statistics[0]?.txPackets ?? 0), guest 2 received \(b.statistics[0]?.rxPackets ?? 0)")
    }

    /// An IPv4 UDP datagram to the discard port (type, header with its checksum, payload), so
    /// that a capture of the demo shows real IP traffic in Wireshark. The addresses are from
    /// the documentation range (RFC 5737); the frames never leave the host's in-memory switch.
    static func udpPacket(from source: [UInt8], to destination: [UInt8], payload count: Int) -> [UInt8] {
        let total = 20 + 8 + count
        var ip: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 1, 0x40, 0, 64, 17, 0, 0] + source + destination
        var sum = stride(from: 0, to: ip.count, by: 2).reduce(UInt32(0)) { $0 + (UInt32(ip[$1]) << 8 | UInt32(ip[$1 + 1])) }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        let checksum = ~UInt16(sum)
        ip[10] = UInt8(checksum >> 8)
        ip[11] = UInt8(checksum & 0xFF)
        // UDP: port 9 both ways, no checksum (allowed over IPv4).
        let udp: [UInt8] = [0, 9, 0, 9, UInt8((8 + count) >> 8), UInt8((8 + count) & 0xFF), 0, 0]
        return [0x08, 0x00] + ip + udp + (0..<count).map { UInt8(truncatingIfNeeded: $0) }
    }
}
