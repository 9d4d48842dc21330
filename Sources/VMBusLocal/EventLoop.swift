import Foundation
import VMBusMemory
import VMBusWire

/// How a substrate thread waits (issue 5): after activity it polls for a short while — a
/// kernel wake-up costs about 10 µs — then blocks in epoll, so an idle host or guest uses no
/// CPU.
public struct WaitPolicy: Hashable, Sendable {
    /// How long to keep polling after the last event.
    public var spinMicroseconds: Int
    /// Blocking timeout while something needs periodic work (monitor-page scans), in ms.
    public var periodicMilliseconds: Int32

    /// - Parameter spinMicroseconds: how long to keep polling after the last event.
    /// - Parameter periodicMilliseconds: the blocking timeout while periodic work is due.
    public init(spinMicroseconds: Int = 50, periodicMilliseconds: Int32 = 1) {
        self.spinMicroseconds = spinMicroseconds
        self.periodicMilliseconds = periodicMilliseconds
    }
}

/// A thread that waits on an epoll set and hands ready tokens to a handler until told to stop
/// (the handler returns `false`).
final class EventLoop: Sendable {
    let poll: EventPoll
    let policy: WaitPolicy
    /// The loop's thread as a task executor (``LoopExecutor``): channels served by this loop
    /// offer it as their `taskExecutor`.
    let executor: LoopExecutor

    init(policy: WaitPolicy) throws(MemoryError) {
        self.poll = try EventPoll()
        self.policy = policy
        self.executor = try LoopExecutor()
        try self.poll.add(self.executor.wake.fileDescriptor, token: Token.jobs)
    }

    /// Runs `handle` on a new thread. `periodic` says whether a periodic wake-up is needed now;
    /// `handle` gets the ready tokens (possibly none, on a periodic wake-up).
    func start(
        name: String, periodic: @escaping @Sendable () -> Bool, handle: @escaping @Sendable (ArraySlice<UInt64>) -> Bool,
        finished: @escaping @Sendable () -> Void
    ) {
        ThreadName.start(name) { [self] in
            self.run(periodic: periodic, handle: handle)
            finished()
        }
    }

    func run(periodic: () -> Bool, handle: (ArraySlice<UInt64>) -> Bool) {
        defer { self.executor.end() }
        let clock = ContinuousClock()
        var spinUntil = clock.now
        let spin = Duration.microseconds(self.policy.spinMicroseconds)
        var jobs: [UnownedJob] = []
        jobs.reserveCapacity(16)
        while true {
            let spinning = clock.now < spinUntil
            var timeout: Int32 = spinning ? 0 : (periodic() ? self.policy.periodicMilliseconds : -1)
            // Jobs already queued keep the loop awake; otherwise a job that comes while it
            // blocks rings the executor's eventfd.
            let sleeping = timeout != 0 && self.executor.prepareToSleep()
            if !sleeping { timeout = 0 }
            guard var tokens = try? self.poll.wait(timeoutMilliseconds: timeout) else { return }
            if sleeping { self.executor.awoke() }
            if tokens.contains(Token.jobs) {
                self.executor.wake.drain()
                tokens = ArraySlice(tokens.filter { $0 != Token.jobs })
            }
            if !tokens.isEmpty { spinUntil = clock.now + spin }
            if !(tokens.isEmpty && spinning) {
                guard handle(tokens) else { return }
            }
            // Tasks the events resumed (a reader woken by its doorbell) run here, now.
            if self.executor.runPending(&jobs) { spinUntil = clock.now + spin }
        }
    }
}

/// A channel's two doorbells (spec 09 §2.3): the guest rings `toHost`, the host `toGuest`.
struct DoorbellPair: Sendable {
    var toHost: EventFD
    var toGuest: EventFD
}

/// Epoll tokens: the socket is 0, the control eventfd 2, the loop executor's eventfd 3; a
/// doorbell is its relid with bit 32 set.
enum Token {
    static let socket: UInt64 = 0
    static let control: UInt64 = 2
    static let jobs: UInt64 = 3
    static func doorbell(_ relid: UInt32) -> UInt64 { 1 << 32 | UInt64(relid) }
    static func relid(_ token: UInt64) -> UInt32? { token >> 32 == 1 ? UInt32(truncatingIfNeeded: token) : nil }
}

/// One frame read from a substrate socket (spec 09 §1), as both ends see it.
enum ReceivedFrame {
    /// A well-formed frame and the descriptors that came with it (the caller owns them).
    case frame(SubstrateFrame, fds: [Int32])
    /// The peer closed the connection.
    case endOfStream
    /// The socket failed.
    case failed(MemoryError)
    /// A protocol error: truncated, malformed, or the wrong descriptors (already closed).
    case malformed(WireError)
}

extension LocalSocket {
    /// Reads one datagram and parses it: the one place both ends check frames.
    func receiveFrame() -> ReceivedFrame {
        let datagram: LocalSocket.Datagram
        do {
            datagram = try self.receive(maximumLength: SubstrateFrame.maximumDatagram)
        } catch {
            return .failed(error)
        }
        if datagram.isEndOfStream { return .endOfStream }
        do throws(WireError) {
            guard !datagram.truncated else { throw WireError.limitExceeded(name: "datagram", value: 4097, limit: 4096) }
            return .frame(try SubstrateFrame.parse(datagram.bytes[...], descriptors: datagram.fds.count), fds: datagram.fds)
        } catch {
            for fd in datagram.fds { DescriptorIO.close(fd) }
            return .malformed(error)
        }
    }
}
