import VMBusMemory
import VMBusWire

/// What a takeover saves of a stream's service: the handler's name and state.
protocol HvSocketServing: Sendable {
    var handlerName: String { get }
    func saveHandler() -> [UInt8]
}

/// One stream served through a handler: read, let the handler answer, write the answer, and
/// again, until the peer's end of stream (then the handler's last words and close) or the
/// connection's end. Between two reads the handler is the service's whole state, and a hold
/// finds the loop waiting in its read — that is what makes the stream carriable.
final class HvSocketServedStream<Handler: HvSocketStreamHandler>: HvSocketServing {
    let stream: HvSocketStream
    let handler: Locked<Handler>

    init(stream: HvSocketStream, handler: Handler) {
        self.stream = stream
        self.handler = Locked(handler)
    }

    var handlerName: String { Handler.name }
    func saveHandler() -> [UInt8] { self.handler.withLock { $0.save() } }

    /// Serves `stream` with `handler` on a task of its own. Handlers answer synchronously and
    /// never block, so the task runs on the thread that takes the guest's signals where the
    /// substrate has one (`Channel.taskExecutor`): woken there, it answers without a hand-off.
    static func start(_ stream: HvSocketStream, _ handler: Handler) {
        let served = HvSocketServedStream(stream: stream, handler: handler)
        stream.served.withLock { $0 = served }
        Task(executorPreference: stream.channel.taskExecutor) { await served.run() }
    }

    func run() async {
        while true {
            guard let chunk = try? await self.stream.read() else { break }
            if chunk.isEmpty {
                let last = self.handler.withLock { $0.finished() }
                if !last.isEmpty { _ = try? await self.stream.write(last) }
                break
            }
            let answer = self.handler.withLock { $0.received(chunk) }
            if !answer.isEmpty { guard (try? await self.stream.write(answer)) != nil else { break } }
        }
        await self.stream.close()
    }
}
