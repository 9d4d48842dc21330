import VMBusMemory

/// The client side of the admin protocol (docs/ADMIN.md): one request, its answers streamed to
/// the caller.
public enum AdminClient {
    /// Sends one request to the server at `path` and waits for its end.
    ///
    /// Blocks the calling thread until the server ends the request.
    /// - Parameters:
    ///   - path: the server's socket.
    ///   - guest: the guest the command is for; `"0"` means the only one.
    ///   - command: the command's name.
    ///   - parameters: its parameters.
    ///   - output: called with each output line, in order.
    ///   - progress: called with each progress answer (`done`, `total`), in order with the
    ///     output.
    /// - Throws: ``AdminError`` with the server's message when the command failed; "cannot
    ///   reach PATH: …" when nothing answers at `path`; "the host closed the admin connection"
    ///   when the server went away before ending the request.
    public static func request(
        path: String, guest: String = "0", command: String, parameters: [String] = [],
        output: (String) -> Void, progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }
    ) throws(AdminError) {
        let bytes: [UInt8]
        do {
            let request = AdminRequest(command: command, guest: guest, parameters: parameters)
            bytes = try AdminProtocol.encodeRequest(request)
        } catch {
            throw AdminError("cannot send the request: \(error)")
        }
        let socket: LocalSocket
        do { socket = try LocalSocket.connect(path: path) } catch { throw AdminError("cannot reach \(path): \(error)") }
        do { try socket.send(bytes) } catch { throw AdminError("cannot send the request to \(path): \(error)") }
        while true {
            let datagram: LocalSocket.Datagram
            do {
                datagram = try socket.receive(maximumLength: AdminProtocol.maximumDatagramLength)
            } catch {
                throw AdminError("the admin connection failed: \(error)")
            }
            // The protocol passes no descriptors to ordinary requests; never keep stray ones.
            for fd in datagram.fds { DescriptorIO.close(fd) }
            if datagram.isEndOfStream { throw AdminError("the host closed the admin connection") }
            let answer: AdminAnswer
            do {
                guard !datagram.truncated else { throw AdminProtocolError.tooLong }
                answer = try AdminAnswer(parsing: datagram.bytes)
            } catch {
                throw AdminError("unexpected answer from the host: \(error)")
            }
            switch answer {
            case .output(let line): output(line)
            case .progress(let done, let total): progress(done, total)
            case .end(true, _): return
            case .end(false, let message): throw AdminError(message)
            }
        }
    }
}
