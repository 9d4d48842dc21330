import VMBusMemory

/// What a command handler answers through: output lines and progress for the client, and the
/// raw connection for commands that need more than one request and one stream of answers.
///
/// The server sends the end answer itself when the handler returns (success) or throws (the
/// error's description is the failure message), so a handler never ends a session.
public final class AdminSession: Sendable {
    /// The client's connection, for a command that exchanges more datagrams with its client
    /// before the end answer (for example descriptors passed as `SCM_RIGHTS`). Such a command
    /// defines what it sends and expects; ``AdminClient`` does not speak it. Calls on it
    /// block their thread.
    public let connection: LocalSocket

    init(connection: LocalSocket) {
        self.connection = connection
    }

    /// Sends one line of output (cut at ``AdminProtocol/maximumTextLength`` bytes).
    ///
    /// A client that has gone away is not the handler's failure: the line is dropped and the
    /// command runs to its end, as it would have without a client watching.
    public func output(_ line: String) {
        self.send(.output(line))
    }

    /// Sends how far the command has come (`done` of `total`, in the command's units). As with
    /// ``output(_:)``, a client that has gone away is ignored.
    public func progress(done: Int, total: Int) {
        self.send(.progress(done: done, total: total))
    }

    /// Sends the end answer: nothing may follow it.
    func end(failure: String?) {
        self.send(.end(succeeded: failure == nil, message: failure ?? ""))
    }

    func send(_ answer: AdminAnswer) {
        try? self.connection.send(answer.encoded)
    }
}
