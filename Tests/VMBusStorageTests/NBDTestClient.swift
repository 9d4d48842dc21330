import Foundation
import VMBusMemory
import VMBusWire

@testable import VMBusStorage

/// A minimal NBD client speaking raw bytes, for what real clients never send (bad magic, huge
/// lengths, unaligned requests without block-size negotiation) and for checking replies byte by
/// byte. Blocking: call it from ``offPool(_:)``. A watchdog shuts its socket down after
/// `timeout`, so a server that never answers fails the test instead of hanging it. The default
/// is generous: the server's request tasks share the cooperative pool with every other suite,
/// and under the whole parallel run on two cores a correct server was once seen to take more
/// than 30 s to answer.
final class NBDTestClient: @unchecked Sendable {
    let socket: StreamSocket
    private let watchdog: DispatchWorkItem

    init(path: String, timeout: TimeInterval = 120) throws {
        self.socket = try StreamSocket.connect(.unix(path))
        let socket = self.socket
        self.watchdog = DispatchWorkItem { socket.shutdown() }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: self.watchdog)
    }

    deinit { self.watchdog.cancel() }

    struct Closed: Error {}

    /// Exactly `count` bytes, or ``Closed`` at end of stream.
    func read(_ count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        guard try self.socket.readFully(into: &bytes, at: 0, count: count) else { throw Closed() }
        return bytes
    }

    /// Whether the server closed the connection (reads end of stream; nothing else arrives).
    func isClosedByServer() -> Bool {
        var byte = [UInt8](repeating: 0, count: 1)
        return (try? self.socket.readFully(into: &byte, at: 0, count: 1)) != true
    }

    func send(_ bytes: [UInt8]) throws { try self.socket.write(bytes[...]) }

    // MARK: Handshake

    /// Reads the greeting and sends client flags.
    @discardableResult
    func greet(clientFlags: UInt32 = 0b11) throws -> NBDGreeting {
        var reader = WireReader(try self.read(NBDGreeting.wireSize))
        let greeting = try NBDGreeting(from: &reader)
        var writer = WireWriter()
        writer.writeBigEndianUInt32(clientFlags)
        try self.send(writer.bytes)
        return greeting
    }

    func sendOption(_ option: NBDOption, _ data: [UInt8] = []) throws {
        var writer = WireWriter()
        NBDOptionHeader(option: option, length: UInt32(data.count)).write(to: &writer)
        writer.writeBytes(data)
        try self.send(writer.bytes)
    }

    func readOptionReply() throws -> NBDOptionReply {
        var header = try self.read(NBDOptionReply.headerSize)
        var lengthReader = WireReader(header[16...])
        let length = Int(try lengthReader.readBigEndianUInt32())
        header += try self.read(length)
        var reader = WireReader(header)
        return try NBDOptionReply(from: &reader)
    }

    /// Replies to the current option up to and including the final one (ACK or an error).
    func readOptionReplies() throws -> [NBDOptionReply] {
        var replies: [NBDOptionReply] = []
        while true {
            let reply = try self.readOptionReply()
            replies.append(reply)
            if reply.type == .ack || reply.type.isError { return replies }
        }
    }

    /// GO for `name`; the export's size and flags from the replies.
    func go(name: String = "", blockSize: Bool = true) throws -> (size: UInt64, flags: NBDTransmissionFlags) {
        var data = WireWriter()
        NBDExportRequest(name: Array(name.utf8), requests: blockSize ? [.blockSize] : []).write(to: &data)
        try self.sendOption(.go, data.bytes)
        var result: (UInt64, NBDTransmissionFlags)?
        for reply in try self.readOptionReplies() {
            if reply.type.isError { throw Closed() }
            var reader = WireReader(reply.data)
            if reply.type == .info, try reader.readBigEndianUInt16() == NBDInfoType.export.rawValue {
                result = (try reader.readBigEndianUInt64(), NBDTransmissionFlags(rawValue: try reader.readBigEndianUInt16()))
            }
        }
        guard let result else { throw Closed() }
        return result
    }

    /// Greets and enters transmission with GO.
    static func connect(_ path: String, name: String = "") throws -> NBDTestClient {
        let client = try NBDTestClient(path: path)
        try client.greet()
        _ = try client.go(name: name)
        return client
    }

    // MARK: Transmission

    func sendRequest(_ command: NBDCommand, flags: NBDCommandFlags = [], cookie: UInt64, offset: UInt64, length: UInt32, data: [UInt8] = []) throws {
        var writer = WireWriter(capacity: NBDRequest.wireSize + data.count)
        NBDRequest(flags: flags, command: command, cookie: cookie, offset: offset, length: length).write(to: &writer)
        writer.writeBytes(data)
        try self.send(writer.bytes)
    }

    func readReply() throws -> NBDSimpleReply {
        var reader = WireReader(try self.read(NBDSimpleReply.wireSize))
        return try NBDSimpleReply(from: &reader)
    }

    /// Writes `data` at `offset` and waits for the reply's error.
    func write(_ data: [UInt8], at offset: UInt64, cookie: UInt64 = 1, flags: NBDCommandFlags = []) throws -> NBDError {
        try self.sendRequest(.write, flags: flags, cookie: cookie, offset: offset, length: UInt32(data.count), data: data)
        let reply = try self.readReply()
        guard reply.cookie == cookie else { throw Closed() }
        return reply.error
    }

    /// A read's outcome.
    enum ReadOutcome: Equatable {
        case success([UInt8])
        case failure(NBDError)

        struct Failed: Error { let error: NBDError }

        func get() throws -> [UInt8] {
            switch self {
            case .success(let bytes): return bytes
            case .failure(let error): throw Failed(error: error)
            }
        }
    }

    /// Reads `length` bytes at `offset`: the data, or the error.
    func read(at offset: UInt64, length: UInt32, cookie: UInt64 = 2) throws -> ReadOutcome {
        try self.sendRequest(.read, cookie: cookie, offset: offset, length: length)
        let reply = try self.readReply()
        guard reply.cookie == cookie else { throw Closed() }
        guard reply.error == .none else { return .failure(reply.error) }
        return .success(try self.read(Int(length)))
    }

    /// Sends any other request and waits for its reply's error.
    func command(_ command: NBDCommand, flags: NBDCommandFlags = [], offset: UInt64 = 0, length: UInt32 = 0, cookie: UInt64 = 3) throws -> NBDError {
        try self.sendRequest(command, flags: flags, cookie: cookie, offset: offset, length: length)
        let reply = try self.readReply()
        guard reply.cookie == cookie else { throw Closed() }
        return reply.error
    }

    func disconnect() throws { try self.sendRequest(.disconnect, cookie: 0, offset: 0, length: 0) }
}
