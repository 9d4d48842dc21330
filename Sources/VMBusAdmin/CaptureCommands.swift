import VMBusCapture

/// `capture`: start and stop a capture of the bus on a running host (docs/CAPTURE.md,
/// docs/ADMIN.md). Parameters: `start FILE [SNAPLEN]`, `stop`, or `status`.
extension AdminServer {
    /// Serves `capture` for the host whose recorder is `capture`.
    public func registerCapture(_ capture: CaptureSwitch) {
        self.register("capture") { request, session in
            let p = request.parameters
            switch p.first {
            case "start":
                guard p.count == 2 || p.count == 3 else { throw AdminError("capture start FILE [SNAPLEN]") }
                let snapLength = p.count == 3 ? Int(p[2]) : 512
                guard let snapLength else { throw AdminError("capture start: the snap length \(p[2]) is not a number") }
                do { try capture.start(path: p[1], snapLength: snapLength) } catch { throw AdminError("capture start: \(error)") }
                session.output("capturing into \(p[1]) (snap length \(snapLength))")
            case "stop":
                let stopped: (path: String, summary: CaptureSummary)?
                do { stopped = try capture.stop() } catch { throw AdminError("capture stop: \(error)") }
                guard let stopped else { throw AdminError("no capture is in progress") }
                session.output(
                    "captured \(stopped.summary.records) record(s), \(stopped.summary.dropped) dropped, "
                        + "\(stopped.summary.connections) connection(s) into \(stopped.path)")
            case "status":
                session.output(capture.path.map { "capturing into \($0) (snap length \(capture.snapLength))" } ?? "not capturing")
            default:
                throw AdminError("capture start FILE [SNAPLEN] | stop | status")
            }
        }
    }
}
