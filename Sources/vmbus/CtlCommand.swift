import ArgumentParser
import Foundation
import VMBusAdmin

/// `vmbus ctl`: drives a running `vmbus host` through its admin socket.
struct CtlCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctl",
        abstract: "Drive a running host: its integration services (status, heartbeat, shutdown, time, kvp, copy, backup), servicing and capture.",
        discussion: "ADMIN is the admin socket 'vmbus host' prints at start-up (by default its listen path + .admin).",
        subcommands: [
            CtlStatus.self, CtlHeartbeat.self, CtlShutdown.self, CtlTime.self, CtlKVP.self, CtlCopy.self, CtlBackup.self, CtlService.self,
            CtlCapture.self,
        ]
    )
}

/// Options every `ctl` subcommand takes.
struct CtlTarget: ParsableArguments {
    @Option(name: .customLong("host"), help: "The host's admin socket.")
    var admin: String

    @Option(name: .long, help: "The guest (its number in 'status', or 'uio' for the --uio-export devices); needed only when several are connected.")
    var guest: String?

    /// Sends a request and prints the answer; throws (exit 1) on a failure.
    func request(_ command: String, _ parameters: [String] = [], progressBar: Bool = false) throws {
        try adminRequest(self.admin, guest: self.guest, command, parameters, progressBar: progressBar)
    }
}

/// One request to a host's admin socket (``AdminClient``); prints the output lines (with
/// `prefix`), or hands them to `output`.
func adminRequest(
    _ admin: String, guest: String? = nil, _ command: String, _ parameters: [String] = [], progressBar: Bool = false,
    prefix: String = "", output: ((String) -> Void)? = nil
) throws {
    // The bar is drawn on standard error without a newline; end its line whatever happens.
    defer { if progressBar { print("") } }
    do {
        try AdminClient.request(
            path: admin, guest: guest ?? "0", command: command, parameters: parameters,
            output: { line in if let output { output(line) } else { print(prefix + line) } },
            progress: { done, total in if progressBar { renderProgress(done, total) } })
    } catch {
        throw CLIError(error.message)
    }
}

/// A one-line progress bar on standard error.
func renderProgress(_ done: Int, _ total: Int) {
    let width = 40
    let filled = total == 0 ? width : done * width / total
    let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
    let percent = total == 0 ? 100 : done * 100 / total
    FileHandle.standardError.write(Data("\r[\(bar)] \(percent)% (\(done)/\(total) bytes)".utf8))
}

struct CtlStatus: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Guests, channels and service health.")
    @OptionGroup var target: CtlTarget
    func run() throws { try self.target.request("status") }
}

struct CtlService: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "service",
        abstract: "Replace the running host with a new process of the same program, under traffic (docs/SERVICING.md).",
        discussion: """
            The host starts its successor — the vmbus binary at the path it was started from \
            (replace the file first to upgrade), with the same arguments and --takeover — which \
            takes over every guest, channel and device. Guests see a pause of milliseconds, no \
            reconnect. If the successor fails, the host carries on and this command says why.
            """)
    @OptionGroup var target: CtlTarget
    func run() throws { try self.target.request("service") }
}

struct CtlHeartbeat: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "heartbeat", abstract: "Send one heartbeat and report the guest's health.")
    @OptionGroup var target: CtlTarget
    func run() throws { try self.target.request("heartbeat") }
}

struct CtlShutdown: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "shutdown", abstract: "Ask the guest to power off, reboot or hibernate.")
    @OptionGroup var target: CtlTarget
    @Flag(name: .long, help: "Reboot instead of powering off.") var reboot = false
    @Flag(name: .long, help: "Hibernate instead of powering off.") var hibernate = false
    @Flag(name: .long, help: "Set the force flag.") var force = false
    func validate() throws { if self.reboot && self.hibernate { throw ValidationError("choose --reboot or --hibernate") } }
    func run() throws {
        try self.target.request("shutdown", (self.reboot ? ["reboot"] : []) + (self.hibernate ? ["hibernate"] : []) + (self.force ? ["force"] : []))
    }
}

struct CtlTime: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "time", abstract: "Send the host's time (a timesync SYNC).")
    @OptionGroup var target: CtlTarget
    func run() throws { try self.target.request("time") }
}

struct CtlKVP: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvp", abstract: "Get, set, delete or list the guest's KVP entries.",
        discussion: "Pools: 0 external (host → guest), 1 guest, 2 auto (generated by the guest), 3 auto-external, 4 auto-internal.")
    @OptionGroup var target: CtlTarget
    @Argument(help: "get KEY | set KEY VALUE | delete KEY | list") var words: [String]
    @Option(name: .long, help: "The pool, 0–4.") var pool: UInt8 = 0
    func validate() throws {
        guard self.pool < 5 else { throw ValidationError("--pool must be 0–4") }
        switch (self.words.first, self.words.count) {
        case ("get", 2), ("set", 3), ("delete", 2), ("list", 1): break
        default: throw ValidationError("usage: kvp get KEY | set KEY VALUE | delete KEY | list")
        }
    }
    func run() throws {
        try self.target.request("kvp", [self.words[0], "\(self.pool)"] + self.words.dropFirst())
    }
}

struct CtlCopy: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "copy", abstract: "Copy a file into the guest (fcopy), with a progress bar.")
    @OptionGroup var target: CtlTarget
    @Argument(help: "The file to send (read by the host process).") var source: String
    @Argument(help: "The guest path to write; ending in '/', a directory that gets the source's file name.") var guestPath: String
    @Flag(name: .long, help: "Replace an existing file.") var overwrite = false
    @Flag(name: .long, help: "Create missing directories.") var createPath = false
    func run() throws {
        let path = URL(fileURLWithPath: self.source).standardizedFileURL.path
        warnAboutNonASCIICopyName(guestPath: self.guestPath, source: path)
        try self.target.request(
            "copy", [path, self.guestPath] + (self.overwrite ? ["overwrite"] : []) + (self.createPath ? ["create-path"] : []),
            progressBar: true)
    }
}

struct CtlBackup: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "backup", abstract: "Run the VSS backup handshake (freeze, thaw).")
    @OptionGroup var target: CtlTarget
    func run() throws { try self.target.request("backup") }
}

struct CtlCapture: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture", abstract: "Start or stop capturing the bus on a running host (docs/CAPTURE.md).",
        discussion: """
            start FILE: the host records every guest connection's substrate frames, channel \
            messages, ring packets, doorbells, opens and closes into the pcapng FILE (created or \
            truncated; a path the host process can write). stop: the host completes the file and \
            says what it wrote. status: whether a capture runs, and into which file. One capture \
            at a time; `vmbus host --capture FILE` starts one at start-up.
            """)
    @OptionGroup var target: CtlTarget
    @Argument(help: "start FILE | stop | status") var words: [String]
    @Option(name: .long, help: "Bytes of data kept per record after its header, 0…1048576 (start only).") var snaplen = 512
    func validate() throws {
        switch (self.words.first, self.words.count) {
        case ("start", 2), ("stop", 1), ("status", 1): break
        default: throw ValidationError("usage: capture start FILE | stop | status")
        }
        guard (0...(1 << 20)).contains(self.snaplen) else { throw ValidationError("--snaplen must be 0…1048576") }
    }
    func run() throws {
        if self.words[0] == "start" {
            // The host opens the file: a relative path means the same thing to it as here.
            let path = URL(fileURLWithPath: self.words[1]).standardizedFileURL.path
            try self.target.request("capture", ["start", path, "\(self.snaplen)"])
        } else {
            try self.target.request("capture", [self.words[0]])
        }
    }
}
