import ArgumentParser
import Foundation
import VMBusCapture

/// `--capture FILE [--snaplen N]` of `vmbus host` and `vmbus guest`.
struct CaptureOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Record the bus to this pcapng file: substrate frames, channel messages, ring packets, doorbells, channel opens and closes (docs/CAPTURE.md). Read it with 'vmbus capture decode', 'vmbus capture summary', tshark or Wireshark.",
            valueName: "file.pcapng"))
    var capture: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Keep at most this many bytes of each record's data (a ring packet's descriptor and payload, a message); the original length is kept. 0…1048576.",
            valueName: "bytes"))
    var snaplen = 512

    func validate() throws {
        guard (0...(1 << 20)).contains(self.snaplen) else { throw ValidationError("--snaplen must be 0…1048576") }
    }

    /// The capture the options ask for, started; `nil` without --capture.
    func start() throws -> CaptureSink? {
        guard let path = self.capture else { return nil }
        do { return try CaptureSink(path: path, snapLength: self.snaplen) } catch { throw CLIError("--capture: \(error)") }
    }
}

extension CaptureSink {
    /// Writes what is left and closes the file, saying on standard error what was written.
    func finish() { reportCapture { (self.path, try self.close()) } }
}

extension CaptureSwitch {
    /// Stops the capture in progress, if any, saying on standard error what was written.
    func finish() { reportCapture { try self.stop() } }
}

/// Ends a capture with `end` and says on standard error what it wrote, or why it failed;
/// nothing when there was no capture.
func reportCapture(_ end: () throws -> (path: String, summary: CaptureSummary)?) {
    let line: String
    do {
        guard let (path, summary) = try end() else { return }
        line = "capture: \(summary.records) record(s), \(summary.dropped) dropped, \(summary.connections) connection(s) in \(path)\n"
    } catch {
        line = "capture: \(error)\n"
    }
    FileHandle.standardError.write(Data(line.utf8))
}
