import Foundation
import VMBusDevices
import VMBusMemory

/// `rounds` timed 64-byte echo round trips after `warmUp` untimed ones.
func echoLatency(_ client: EchoClient, rounds: Int, warmUp: Int = 1000, onLoop: Bool = false) async throws -> [Double] {
    // On the loop: the caller is resumed by the thread that took the answer's doorbell.
    let executor = onLoop ? client.devices.first.flatMap { client.channel($0.relid)?.taskExecutor } : nil
    return try await withTaskExecutorPreference(executor) {
        try await echoSamples(client, rounds: rounds, warmUp: warmUp)
    }
}

func echoSamples(_ client: EchoClient, rounds: Int, warmUp: Int) async throws -> [Double] {
    let payload = [UInt8](repeating: 0x5A, count: 64)
    for _ in 0..<warmUp { _ = try await client.echo(payload) }
    var samples: [Double] = []
    samples.reserveCapacity(rounds)
    for _ in 0..<rounds {
        let start = ContinuousClock.now
        _ = try await client.echo(payload)
        samples.append(elapsedSeconds(since: start))
    }
    return samples
}

/// A child `vmbus bench socket-peer` on one end of a socket pair (its standard input); this
/// process keeps the other end.
struct SocketPeer {
    let fd: Int32
    let process: Process
    var buffer = [UInt8](repeating: 0, count: 1 << 16)

    /// - Parameter kind: `stream` (a Unix SOCK_STREAM pair), `tcp` (TCP over loopback) or
    ///   `seqpacket`.
    init(kind: String) throws {
        let (mine, theirs) =
            switch kind {
            case "stream": try DescriptorIO.streamPair()
            case "tcp": try DescriptorIO.tcpPair()
            default: try DescriptorIO.seqPacketPair()
            }
        let peer = Process()
        peer.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        peer.arguments = ["bench", "socket-peer", "--kind", kind]
        peer.standardInput = FileHandle(fileDescriptor: theirs, closeOnDealloc: false)
        do {
            try peer.run()
        } catch {
            DescriptorIO.close(mine)
            DescriptorIO.close(theirs)
            throw error
        }
        DescriptorIO.close(theirs)
        self.fd = mine
        self.process = peer
    }

    /// Closes this end; the peer sees end of file and exits.
    func finish() {
        DescriptorIO.close(self.fd)
        self.process.waitUntilExit()
    }

    /// `rounds` timed 64-byte ping-pongs after `warmUp` untimed ones.
    mutating func pingPong(rounds: Int, warmUp: Int) throws -> [Double] {
        let message = [0x01] + [UInt8](repeating: 0x5A, count: 63)
        var samples: [Double] = []
        samples.reserveCapacity(rounds)
        for round in 0..<(rounds + warmUp) {
            let start = ContinuousClock.now
            try DescriptorIO.writeAll(self.fd, message[...])
            guard try DescriptorIO.readFully(self.fd, into: &self.buffer, count: 64) else { throw CLIError("peer closed") }
            if round >= warmUp { samples.append(elapsedSeconds(since: start)) }
        }
        return samples
    }

    /// `count` writes of `size` bytes one way, timed until the peer confirms the last byte.
    /// - Returns: seconds.
    mutating func oneWay(size: Int, count: Int) throws -> Double {
        var header = [UInt8](repeating: 0x02, count: size)
        let total = UInt64(count * size)
        for i in 0..<8 { header[1 + i] = UInt8(truncatingIfNeeded: total >> (8 * UInt64(i))) }
        let body = [UInt8](repeating: 0x03, count: size)
        let start = ContinuousClock.now
        try DescriptorIO.writeAll(self.fd, header[...])
        for _ in 1..<count { try DescriptorIO.writeAll(self.fd, body[...]) }
        guard try DescriptorIO.readFully(self.fd, into: &self.buffer, count: 1) else { throw CLIError("peer closed") }
        return elapsedSeconds(since: start)
    }
}

/// Stops a host child process (if it still runs), reaps it, removes its socket file.
func stopHost(_ host: Process, socket path: String) {
    if host.isRunning { kill(host.processIdentifier, SIGTERM) }
    host.waitUntilExit()
    LocalSocket.removeFile(path: path)
}
