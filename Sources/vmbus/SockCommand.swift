import ArgumentParser
import Dispatch
import Foundation
import Synchronization
import VMBusMemory

/// `vmbus sock`: socat-like hvsock ends for the shell, through a relay directory.
struct SockCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sock",
        abstract: "Connect or listen on a Hyper-V socket port from the shell (standard input/output ⇄ the stream).",
        discussion: """
            Works on either side through that side's relay directory: 'vmbus host --vsock-relay \
            DIR' or 'vmbus guest --vsock-relay DIR'. 'connect' reaches the other side's port; \
            'listen' takes one connection the other side makes to the port. End of standard input \
            half-closes the stream (the peer reads end of stream, and can still answer); the \
            command exits once both sides have ended: the peer's end of stream and the end of \
            standard input (or the peer no longer reading).
            """,
        subcommands: [SockConnect.self, SockListen.self]
    )
}

/// Options both `vmbus sock` subcommands take.
struct SockOptions: ParsableArguments {
    @Option(name: .long, help: "The vsock port.")
    var port: UInt32

    @Option(name: .long, help: "The relay directory of this side ('vmbus host|guest --vsock-relay DIR').")
    var relay: String
}

struct SockConnect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connect",
        abstract: "Connect to the other side's port (hybrid vsock: CONNECT <port> on RELAY/vsock).",
        discussion: "Prints 'connected, local port N' on standard error; exits 1 if the connection is refused."
    )

    @OptionGroup var options: SockOptions

    func run() throws {
        let path = self.options.relay + "/vsock"
        let socket: StreamSocket
        do {
            socket = try StreamSocket.connect(.unix(path))
        } catch {
            throw CLIError("cannot reach the relay at \(path): \(error)")
        }
        try socket.write(Array("CONNECT \(self.options.port)\n".utf8)[...])
        let answer = readLine(socket)
        guard answer.hasPrefix("OK ") else {
            throw CLIError(answer.isEmpty ? "the relay closed the connection" : "port \(self.options.port): \(answer)")
        }
        FileHandle.standardError.write(Data("vmbus sock: connected, local port \(answer.dropFirst(3))\n".utf8))
        shuttle(socket)
    }
}

struct SockListen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "listen",
        abstract: "Take one connection the other side makes to the port (listens on RELAY/vsock_<port>).",
        discussion: "Prints 'listening on PATH' on standard error once the other side can connect."
    )

    @OptionGroup var options: SockOptions

    func run() throws {
        let path = self.options.relay + "/vsock_\(self.options.port)"
        let server: StreamSocket
        do {
            server = try StreamSocket.listen(.unix(path), backlog: 1)
        } catch {
            throw CLIError("cannot listen on \(path): \(error)")
        }
        defer { LocalSocket.removeFile(path: path) }
        FileHandle.standardError.write(Data("vmbus sock: listening on \(path)\n".utf8))
        let client: StreamSocket
        do {
            client = try server.accept()
        } catch {
            throw CLIError("accept on \(path): \(error)")
        }
        // One connection, like 'nc -l': later ones are refused.
        LocalSocket.removeFile(path: path)
        server.shutdown()
        shuttle(client)
    }
}

/// Reads one line (without the newline) byte by byte, so nothing after it is consumed.
func readLine(_ socket: StreamSocket) -> String {
    var line: [UInt8] = []
    var byte = [UInt8](repeating: 0, count: 1)
    while line.count < 256, let n = try? DescriptorIO.readSome(socket.fileDescriptor, into: &byte, count: 1), n == 1 {
        if byte[0] == UInt8(ascii: "\n") { break }
        line.append(byte[0])
    }
    return String(decoding: line, as: UTF8.self)
}

/// Standard input → `socket` (end of input half-closes it) and `socket` → standard output.
/// Returns once both directions ended — the peer ended its side and standard input ended (or
/// the peer stopped reading) — so nothing typed or piped in is dropped.
func shuttle(_ socket: StreamSocket) {
    let inputDone = DispatchSemaphore(value: 0)
    let input = Thread {
        defer { inputDone.signal() }
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while let n = try? DescriptorIO.readSome(0, into: &buffer, count: buffer.count), n > 0 {
            guard (try? socket.write(buffer[0..<n])) != nil else { return }
        }
        socket.shutdownWrite()
    }
    input.start()
    var buffer = [UInt8](repeating: 0, count: 64 << 10)
    while let n = try? socket.read(into: &buffer), n > 0 {
        guard (try? DescriptorIO.writeAll(1, buffer[0..<n])) != nil else { break }
    }
    inputDone.wait()
}
