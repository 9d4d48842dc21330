import Dispatch
import Foundation
import VMBusMemory

/// Runs `body` as a task and blocks this (non-pool) thread until it returns. Relay threads use
/// it to call the async stream API between blocking socket calls; never call it from a task.
func blockingWait<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let done = DispatchSemaphore(value: 0)
    let box = Locked<T?>(nil)
    Task {
        let value = await body()
        box.withLock { $0 = value }
        done.signal()
    }
    done.wait()
    return box.withLock { $0! }
}


/// Joins a byte-stream socket and an hvsock stream in both directions until both are done —
/// the core of every relay. End of stream travels as a half-close each way (socket EOF → FIN,
/// FIN → `shutdown(SHUT_WR)`); an error on either side ends both. One thread per direction:
/// the socket side blocks, the hvsock side waits on the ring.
public enum HvSocketPump {
    /// Bytes per socket read, and the most an hvsock read takes at once.
    public static let chunk = 64 << 10

    /// Starts pumping; `finished` runs once, after both directions ended and both ends are
    /// closed, with the bytes moved each way.
    public static func start(
        _ socket: StreamSocket, _ stream: HvSocketStream,
        finished: @escaping @Sendable (_ toStream: Int, _ toSocket: Int) -> Void = { _, _ in }
    ) {
        let remaining = Locked(2)
        let counts = Locked((0, 0))
        let done: @Sendable () -> Void = {
            let last = remaining.withLock { count in
                count -= 1
                return count == 0
            }
            guard last else { return }
            blockingWait { await stream.close() }
            socket.shutdown()
            let (up, down) = counts.withLock { $0 }
            finished(up, down)
        }
        ThreadName.start("hvsock-pump-in") {
            var buffer = [UInt8](repeating: 0, count: Self.chunk)
            while true {
                let n: Int
                do { n = try socket.read(into: &buffer) } catch {
                    // The socket failed: the hvsock side cannot end cleanly either.
                    stream.channel.close(.closedLocally)
                    break
                }
                if n == 0 {
                    _ = blockingWait { try? await stream.shutdownWrite() }
                    break
                }
                let bytes = buffer[0..<n]
                let sent = blockingWait { () -> Bool in (try? await stream.write(bytes)) != nil }
                guard sent else {
                    socket.shutdown()
                    break
                }
                counts.withLock { $0.0 += n }
            }
            done()
        }
        ThreadName.start("hvsock-pump-out") {
            while true {
                let chunk = blockingWait { () -> Result<ArraySlice<UInt8>, HvSocketError> in
                    do throws(HvSocketError) { return .success(try await stream.read(maximum: Self.chunk)) } catch {
                        return .failure(error)
                    }
                }
                switch chunk {
                case .success(let bytes) where bytes.isEmpty:
                    socket.shutdownWrite()
                case .success(let bytes):
                    do {
                        try socket.write(bytes)
                        counts.withLock { $0.1 += bytes.count }
                        continue
                    } catch {
                        stream.channel.close(.closedLocally)
                    }
                case .failure:
                    // The connection broke (peer gone, malformed data): reset the socket.
                    socket.shutdown()
                }
                break
            }
            done()
        }
    }
}
