import Foundation
import Testing
import VMBusMemory
@testable import VMBusAdmin

/// A server on a real socket with commands of the test's own, driven through ``AdminClient``
/// and through raw clients that break the protocol.
@Suite(.timeLimit(.minutes(1))) struct AdminServerTests {
    enum Event: Equatable { case output(String), progress(Int, Int) }

    struct Failure: Error, CustomStringConvertible { var description: String { "a failure of its own" } }

    /// A started server with the test commands: `steps` (output and progress, interleaved, that
    /// name the guest and parameters), `fail` (throws an ``AdminError``), `other` (throws
    /// another error).
    static func server() throws -> AdminServer {
        let server = try AdminServer(path: temporarySocketPath())
        server.register("steps") { request, session in
            session.output("guest \(request.guest): \(request.parameters)")
            session.progress(done: 1, total: 3)
            session.output("middle")
            session.progress(done: 3, total: 3)
        }
        server.register("fail") { _, session in
            session.output("before the failure")
            throw AdminError("it went wrong")
        }
        server.register("other") { _, _ in throw Failure() }
        server.start()
        return server
    }

    /// One request through the client, on a thread of its own: the client blocks, and the
    /// server's handlers need the cooperative pool the test would otherwise hold.
    static func request(
        _ server: AdminServer, guest: String = "0", _ command: String, _ parameters: [String] = []
    ) async -> (events: [Event], error: AdminError?) {
        await onThread {
            var events: [Event] = []
            do throws(AdminError) {
                try AdminClient.request(
                    path: server.path, guest: guest, command: command, parameters: parameters,
                    output: { events.append(.output($0)) }, progress: { events.append(.progress($0, $1)) })
                return (events, nil)
            } catch {
                return (events, error)
            }
        }
    }

    @Test func outputAndProgressArriveInOrderThenSuccess() async throws {
        let server = try Self.server()
        defer { server.stop() }
        let answer = await Self.request(server, guest: "2", "steps", ["a", "", "Ünï"])
        #expect(answer.error == nil)
        #expect(answer.events == [.output("guest 2: [\"a\", \"\", \"Ünï\"]"), .progress(1, 3), .output("middle"), .progress(3, 3)])
    }

    @Test func aThrownErrorArrivesAsTheFailureMessage() async throws {
        let server = try Self.server()
        defer { server.stop() }
        let failed = await Self.request(server, "fail")
        #expect(failed.events == [.output("before the failure")])
        #expect(failed.error == AdminError("it went wrong"))
        #expect(await Self.request(server, "other").error == AdminError("a failure of its own"))
    }

    @Test func anUnknownCommandNamesTheKnownOnes() async throws {
        let server = try Self.server()
        defer { server.stop() }
        #expect(await Self.request(server, "nope").error == AdminError("unknown command 'nope'; known: fail, other, steps"))
    }

    @Test func garbageAndAWrongVersionGetAFailureAndTheServerServesTheNextClient() async throws {
        let server = try Self.server()
        defer { server.stop() }
        var newer = try AdminProtocol.encodeRequest(AdminRequest(command: "steps"))
        newer[4] = 9
        let requests: [[UInt8]] = [
            Array("steps\u{0}0".utf8),  // an unversioned client
            [0xFF, 0x00, 0x13],
            newer,
            Array("VMBA".utf8) + [1, 0, 0, 0, 0xFF, 0, 0x30],
        ]
        let expected = [
            AdminProtocolError.badMagic, .badMagic, .unsupportedVersion(9), .notUTF8(field: 0),
        ].map { AdminAnswer.end(succeeded: false, message: $0.description) }
        for (bytes, answer) in zip(requests, expected) {
            #expect(try await Self.raw(server, bytes) == [answer])
        }
        #expect(expected[2] == .end(succeeded: false, message: "admin protocol version 9 is not supported; this server speaks version(s) 1"))
        let next = await Self.request(server, "steps")
        #expect(next.error == nil && next.events.count == 4)
    }

    /// Sends `bytes` as a request and returns every answer until the server closes.
    static func raw(_ server: AdminServer, _ bytes: [UInt8], fds: [Int32] = []) async throws -> [AdminAnswer] {
        try await onThread {
            let socket = try LocalSocket.connect(path: server.path)
            try socket.send(bytes, fds: fds)
            var answers: [AdminAnswer] = []
            while true {
                let datagram = try socket.receive()
                if datagram.isEndOfStream { return answers }
                answers.append(try AdminAnswer(parsing: datagram.bytes))
            }
        }
    }

    /// A client that connects and says nothing holds up nobody.
    @Test func aSilentClientDoesNotBlockTheNext() async throws {
        let server = try Self.server()
        defer { server.stop() }
        let silent = try LocalSocket.connect(path: server.path)
        // A server that waited for the silent client would never answer: after a bound the
        // silent client hangs up (freeing such a server) and the test fails instead of hanging.
        let watchdog = Task { () -> Bool in
            do { try await Task.sleep(for: .seconds(10)) } catch { return false }
            silent.shutdown()
            return true
        }
        let next = await Self.request(server, "steps")
        watchdog.cancel()
        #expect(await watchdog.value == false, "the request waited for the silent client")
        #expect(next.error == nil && next.events.count == 4)
    }

    /// Descriptors sent with a request are closed by the server, not kept: once the test
    /// drops its own copy, the other end of the pair sees the end of the stream.
    @Test func descriptorsSentWithARequestAreClosed() async throws {
        let server = try Self.server()
        defer { server.stop() }
        // No other reference to `sent` may live: dropping it must close the test's copy.
        var sent: LocalSocket?
        let watched: LocalSocket
        do {
            let (a, b) = try LocalSocket.pair()
            sent = a
            watched = b
        }
        let request = try AdminProtocol.encodeRequest(AdminRequest(command: "steps"))
        let answers = try await Self.raw(server, request, fds: [sent!.fileDescriptor])
        #expect(answers.last == .end(succeeded: true, message: ""))
        sent = nil
        let poll = try EventPoll()
        try poll.add(watched.fileDescriptor, token: 1)
        // A leak leaves `watched` silent: the bounded wait turns that into a failure, not a hang.
        try #require(Array(try poll.wait(timeoutMilliseconds: 10_000)) == [1])
        #expect(try watched.receive().isEndOfStream)
    }

    /// A command may talk to its client over the raw connection before the server ends the
    /// request (as a takeover passing descriptors would).
    @Test func aCommandExchangesMoreDatagramsOverTheConnection() async throws {
        let server = try Self.server()
        defer { server.stop() }
        server.register("ask") { _, session in
            try session.connection.send(Array("question".utf8))
            let reply = try session.connection.receive()
            session.output("the client said \(String(decoding: reply.bytes, as: UTF8.self))")
        }
        let (question, answers): ([UInt8], [AdminAnswer]) = try await onThread {
            let socket = try LocalSocket.connect(path: server.path)
            try socket.send(try AdminProtocol.encodeRequest(AdminRequest(command: "ask")))
            let question = try socket.receive().bytes
            try socket.send(Array("yes".utf8))
            return (question, [try AdminAnswer(parsing: try socket.receive().bytes), try AdminAnswer(parsing: try socket.receive().bytes)])
        }
        #expect(question == Array("question".utf8))
        #expect(answers == [.output("the client said yes"), .end(succeeded: true, message: "")])
    }

    @Test func aStoppedServerCannotBeReached() async throws {
        let server = try Self.server()
        server.stop()
        #expect(!FileManager.default.fileExists(atPath: server.path))
        let answer = await Self.request(server, "steps")
        #expect(answer.error?.message.hasPrefix("cannot reach \(server.path): ") == true, "\(String(describing: answer.error))")
    }

    /// A host that goes away mid-request: the client says so instead of waiting or succeeding.
    @Test func aHostThatClosesEarlyIsReported() async throws {
        let path = temporarySocketPath()
        let listener = try LocalSocket.listen(path: path)
        defer { LocalSocket.removeFile(path: path) }
        let thread = Thread {
            guard let client = try? listener.accept() else { return }
            _ = try? client.receive()
            try? client.send(AdminAnswer.output("half").encoded)
        }
        thread.start()
        let answer: (events: [Event], error: AdminError?) = await onThread {
            var events: [Event] = []
            do throws(AdminError) {
                try AdminClient.request(path: path, command: "status", output: { events.append(.output($0)) })
                return (events, nil)
            } catch {
                return (events, error)
            }
        }
        #expect(answer.events == [.output("half")])
        #expect(answer.error == AdminError("the host closed the admin connection"))
    }
}

/// A socket path of its own in the temporary directory.
func temporarySocketPath() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-admin-\(UInt32.random(in: 0...UInt32.max)).sock").path
}

/// Runs blocking `body` on a new thread and returns its result.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// Runs blocking `body` on a new thread and returns its result.
func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}
