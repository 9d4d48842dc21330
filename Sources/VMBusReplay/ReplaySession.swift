import Foundation
import VMBusCapture
import VMBusMemory
import VMBusWire

/// Replays every replayable connection of a capture at once, each on its own thread, kept in
/// the capture's order by a ``ReplayClock``: the host numbers the guests as it did (a NIC's
/// address follows its guest's number), and what one guest did before another's step happens
/// before it again.
public enum ReplaySession {
    /// Replays `connections` of `capture` (all the replayable ones when empty) as the guest
    /// against the host listening at `path`; `operate` makes the operator's requests the
    /// capture holds (see ``ReplayGuest/init(script:path:timeout:operate:)``).
    /// - Throws: ``ReplayScript/Unreplayable`` before anything is sent, if a connection cannot
    ///   be replayed.
    public static func replayGuests(
        _ capture: CaptureFile, connections requested: [UInt32] = [], path: String, timeout: Duration = .seconds(10),
        operate: (@Sendable (UInt32, OperatorRequest) -> Void)? = nil
    ) throws(ReplayScript.Unreplayable) -> [ReplayGuest.Outcome] {
        let scripts = try Self.scripts(capture, requested, role: .guest)
        return try Self.runAll(scripts) { script, clock throws(ReplayScript.Unreplayable) in
            try ReplayGuest(script: script, path: path, timeout: timeout, operate: operate).run(clock: clock)
        }
    }

    /// Replays `connections` of `capture` (all the replayable ones when empty) as the host, on
    /// a socket it listens on at `path`: each connection is the next guest that connects, in
    /// the capture's order. A guest that does not come within `timeout` ends that connection's
    /// replay with the difference. `listening` is called once guests can connect.
    /// - Throws: ``ReplayScript/Unreplayable`` before anything is sent, if a connection cannot
    ///   be replayed or `path` cannot be listened on.
    public static func replayHosts(
        _ capture: CaptureFile, connections requested: [UInt32] = [], path: String, timeout: Duration = .seconds(10),
        listening: () -> Void = {}
    ) throws(ReplayScript.Unreplayable) -> [ReplayGuest.Outcome] {
        let scripts = try Self.scripts(capture, requested, role: .host)
        let listener: LocalSocket
        let poll: EventPoll
        do {
            listener = try LocalSocket.listen(path: path)
            poll = try EventPoll()
            try poll.add(listener.fileDescriptor, token: 0)
        } catch {
            throw ReplayScript.Unreplayable("--listen \(path): \(error)")
        }
        defer {
            listener.shutdown()
            LocalSocket.removeFile(path: path)
        }
        listening()
        return try Self.runAll(scripts) { script, clock throws(ReplayScript.Unreplayable) in
            let me = script.connection
            clock.waitForTurn(me, record: script.steps.first?.record ?? 0)
            // One accept at a time: the clock lets only this connection's HELLO be next.
            let milliseconds = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
            guard let ready = try? poll.wait(timeoutMilliseconds: milliseconds), !ready.isEmpty, let socket = try? listener.accept() else {
                clock.advance(me, to: Int.max)
                return ReplayGuest.Outcome(
                    connection: me,
                    differences: [ReplayDifference(
                        connection: me, record: (script.steps.first?.record ?? 0) + 1, stream: .control,
                        expected: "a guest connecting", got: nil)])
            }
            return try ReplayHost(script: script, timeout: timeout).run(socket, clock: clock)
        }
    }

    /// The scripts of `role` for `requested` connections of `capture` (every replayable one
    /// when empty).
    static func scripts(_ capture: CaptureFile, _ requested: [UInt32], role: ReplayRole) throws(ReplayScript.Unreplayable) -> [ReplayScript] {
        let connections = requested.isEmpty ? ReplayScript.connections(in: capture) : requested
        guard !connections.isEmpty else { throw ReplayScript.Unreplayable("no connection in the capture starts with HELLO") }
        var scripts: [ReplayScript] = []
        for connection in connections {
            scripts.append(try ReplayScript(capture: capture, connection: connection, role: role))
        }
        return scripts
    }

    /// Runs `body` for every script at once, each on a thread of its own, under one clock;
    /// the outcomes in the scripts' order, or the first reason one could not be replayed.
    static func runAll(
        _ scripts: [ReplayScript],
        _ body: @escaping @Sendable (ReplayScript, ReplayClock) throws(ReplayScript.Unreplayable) -> ReplayGuest.Outcome
    ) throws(ReplayScript.Unreplayable) -> [ReplayGuest.Outcome] {
        let clock = ReplayClock(first: Dictionary(uniqueKeysWithValues: scripts.map { ($0.connection, $0.steps.first?.record ?? Int.max) }))
        let results = Locked<[UInt32: Result<ReplayGuest.Outcome, ReplayScript.Unreplayable>]>([:])
        let done = DispatchGroup()
        for script in scripts {
            done.enter()
            ThreadName.start("vmbus-replay-\(script.connection)") {
                let result = Result { () throws(ReplayScript.Unreplayable) -> ReplayGuest.Outcome in try body(script, clock) }
                results.withLock { $0[script.connection] = result }
                done.leave()
            }
        }
        done.wait()
        return try Self.collect(results.withLock { $0 }, in: scripts.map(\.connection))
    }

    /// The connections' outcomes in order, or the first reason one could not be replayed.
    static func collect(
        _ results: [UInt32: Result<ReplayGuest.Outcome, ReplayScript.Unreplayable>], in connections: [UInt32]
    ) throws(ReplayScript.Unreplayable) -> [ReplayGuest.Outcome] {
        var outcomes: [ReplayGuest.Outcome] = []
        for connection in connections {
            switch results[connection] {
            case .success(let outcome)?: outcomes.append(outcome)
            case .failure(let error)?: throw error
            case nil: break
            }
        }
        return outcomes
    }
}
