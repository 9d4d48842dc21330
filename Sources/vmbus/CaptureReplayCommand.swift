import ArgumentParser
import Foundation
import VMBusCapture
import VMBusMemory
import VMBusReplay
import VMBusWire

/// `vmbus capture replay`: a capture turned into a regression test (docs/CAPTURE.md).
struct CaptureReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Act as the captured guests (or host) against a live peer, and report where its answers differ.",
        discussion: """
            Connects to the host at --connect once per guest connection in the capture (all \
            of them, or those given with --connection), in the capture's order, with new guest \
            memory of the captured size. Then it sends what the captured guest sent — channel \
            messages, ring packets, and the NIC's buffers — in order, each after the host's \
            answers before it in the capture came and were compared. Equal means byte for byte, \
            except what a host chooses afresh each session: the transaction ids of its own \
            requests (our completions carry the live ids) and which receive slots a NIC lends \
            (the lent bytes are compared where they are now).

            Start the host as the captured one was (the same devices, in the same order), e.g. \
            for a capture of 'vmbus demo': vmbus host --listen SOCK --device echo:2 --device ic \
            --device hvsock --net switch --disk mem:64M. A disk's data pages are not in a \
            capture: a replayed write writes what the replaying guest's memory holds (zeros).

            --as host --listen PATH plays the captured host instead: each guest that connects \
            to PATH is the capture's next connection, in order, and gets what the captured host \
            sent, each after the guest's messages and packets before it came and were compared. \
            Start the guests as the captured ones were (the same program and options): a guest \
            laying out its memory differently shows as GPADL differences.

            Exit status: 0 when every answer matched, 1 when some differ (each is listed, with \
            the record number tshark shows), 2 when the capture cannot be replayed (cut records \
            this side must send, a connection that started before the capture).
            """
    )

    @Argument(help: ArgumentHelp("The capture file.", valueName: "file.pcapng"))
    var file: String

    @Option(name: .customLong("as"), help: "The side to play: guest (against a live host) or host (for live guests).")
    var role: ReplayRole = .guest

    @Option(name: .long, help: ArgumentHelp("As the guest: the host's socket.", valueName: "path"))
    var connect: String?

    @Option(name: .long, help: ArgumentHelp("As the host: the socket to listen on for the guests.", valueName: "path"))
    var listen: String?

    @Option(name: .long, help: ArgumentHelp("The host's admin socket, for the operator's requests the capture holds (default: the --connect path + .admin).", valueName: "path"))
    var admin: String?

    @Option(name: .long, help: "Replay only this connection (repeatable; default: every one that starts in the file).")
    var connection: [UInt32] = []

    @Option(name: .long, help: "Seconds to wait for each answer the capture has.")
    var timeout: Double = 10

    func validate() throws {
        switch self.role {
        case .guest:
            guard self.connect != nil, self.listen == nil else { throw ValidationError("--as guest takes --connect PATH (the host's socket), not --listen") }
        case .host:
            guard self.listen != nil, self.connect == nil, self.admin == nil else {
                throw ValidationError("--as host takes --listen PATH (where the guests connect), not --connect or --admin")
            }
        }
        guard self.timeout > 0, self.timeout <= 3600 else { throw ValidationError("--timeout must be in (0, 3600]") }
    }

    func run() throws {
        let capture: CaptureFile
        do { capture = try CaptureFile(path: self.file) } catch { throw CLIError("\(error)") }
        let start = ContinuousClock.now
        let outcomes: [ReplayGuest.Outcome]
        do {
            let timeout = Duration.milliseconds(Int(self.timeout * 1000))
            switch self.role {
            case .guest:
                let path = self.connect ?? ""
                outcomes = try ReplaySession.replayGuests(
                    capture, connections: self.connection, path: path, timeout: timeout, operate: Self.operator(admin: self.admin ?? path + ".admin"))
            case .host:
                let path = self.listen ?? ""
                outcomes = try ReplaySession.replayHosts(capture, connections: self.connection, path: path, timeout: timeout) {
                    // Only once the socket exists: a guest started on this line can connect.
                    print("replay: listening on \(path)")
                    DescriptorIO.flushOutput()
                }
            }
        } catch {
            FileHandle.standardError.write(Data("vmbus capture replay: \(error)\n".utf8))
            throw ExitCode(2)
        }
        var differences = 0
        for outcome in outcomes {
            print("connection \(outcome.connection): sent \(outcome.sent), compared \(outcome.compared) answer(s), "
                + "\(outcome.differences.count) difference(s)"
                + (outcome.skipped > 0 ? ", \(outcome.skipped) not compared after a difference" : "")
                + (outcome.extra.isEmpty ? "" : ", \(outcome.extra.count) more packet(s) than the capture"))
            for difference in outcome.differences { print("  \(difference)") }
            for extra in outcome.extra.prefix(5) { print("  more: \(extra)") }
            differences += outcome.differences.count
        }
        print("replay: \(outcomes.count) connection(s) in \(milliseconds(elapsedSeconds(since: start))) ms, "
            + (differences == 0 ? "every answer as captured" : "\(differences) difference(s)"))
        if differences > 0 { throw ExitCode(1) }
    }

    /// Makes an operator's request through the host's admin socket, for the guest the host
    /// numbered as the capture's connection (the replay connects in the capture's order, so
    /// the numbers agree). A request that read a host file gets a copy of the captured bytes.
    static func `operator`(admin: String) -> @Sendable (UInt32, OperatorRequest) -> Void {
        { connection, request in
            var parameters = request.parameters
            var attachment: String?
            if !request.attachment.isEmpty, !parameters.isEmpty {
                let path = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-replay-\(UInt32.random(in: 0...UInt32.max))").path
                if FileManager.default.createFile(atPath: path, contents: Data(request.attachment)) {
                    parameters[0] = path
                    attachment = path
                }
            }
            defer { if let attachment { try? FileManager.default.removeItem(atPath: attachment) } }
            do {
                try adminRequest(admin, guest: "\(connection)", request.command, parameters, output: { _ in })
            } catch {
                FileHandle.standardError.write(Data("vmbus capture replay: operator request '\(request.command)' for guest \(connection): \(error)\n".utf8))
            }
        }
    }
}

extension ReplayRole: ExpressibleByArgument {}
