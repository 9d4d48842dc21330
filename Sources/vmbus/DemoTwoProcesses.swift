import ArgumentParser
import Foundation
import VMBusCapture
import VMBusChannel
import VMBusDevices
import VMBusGuest
import VMBusLocal
import VMBusMemory
import VMBusWire

extension DemoCommand {
    /// The default demo: a host child process, this process as its guest.
    func runTwoProcesses() async throws {
        let logger = self.log.logger("vmbus.demo", default: .warning)
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("vmbus-demo-\(getpid()).sock").path
        let stop = Locked(false)
        let shutdown = Shutdown(logger, first: ("stop after the current step", { stop.withLock { $0 = true } }))
        defer { withExtendedLifetime(shutdown) {} }

        let host = try spawnHost(path, devices: [], logLevel: "warning", extra: Self.hostArguments(devices: self.devices))
        // Whatever happens, the host goes too — and its successor, after the takeover — and
        // nothing is left behind.
        let successor = Locked<Int32?>(nil)
        defer {
            if let pid = successor.withLock({ $0 }) { kill(pid, SIGTERM) }
            stopHost(host, socket: path)
        }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("vmbus-demo-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: work) }
        print("host: process \(host.processIdentifier) listening on \(path), offering \(self.devices) echo device(s)")

        // The guests' side of the bus: it outlives the host's takeover, so one file holds it all.
        let capture: CaptureSink?
        do { capture = try self.capture.map { try CaptureSink(path: $0, snapLength: self.snaplen) } } catch {
            throw CLIError("--capture: \(error)")
        }
        defer { capture.map { Self.finishCapture($0, hostArguments: Self.hostArguments(devices: self.devices)) } }
        let start = ContinuousClock.now
        let guest: LocalGuest
        do {
            guest = try LocalGuest.connect(path: path, memoryBytes: 64 << 20, monitorPages: self.monitor, logger: logger, capture: capture)
        } catch {
            throw CLIError("cannot connect to the host: \(error)")
        }
        let client = EchoClient()
        guest.bus.register(client)
        let shutdownAsked = Locked<String?>(nil)
        let services: [any ICGuestService] = [
            HeartbeatGuest(), ShutdownGuest { action, _ in shutdownAsked.withLock { $0 = "\(action)" } }, TimeSyncGuest(),
            KVPGuest(store: KVPStore(directory: work + "/kvp")), FileCopyGuest(root: work + "/root"), VSSGuest(),
        ]
        for service in services { guest.bus.register(ICGuestDriver(service)) }
        let sockets = HvSocketGuest(bus: guest.bus)
        guest.bus.register(sockets)
        let version = try await guest.bus.connect()
        await guest.bus.settle()
        print("guest: process \(getpid()) connected at VMBus \(version) in \(milliseconds(elapsedSeconds(since: start))) ms "
            + "(64 MiB of guest memory in a sealed memfd); \(guest.bus.devices.count) offer(s)")
        let icNames = [DeviceClass.heartbeat, .shutdown, .timeSync, .kvp, .fileCopy, .backup].map(\.name)
        print("  integration services bound: " + icNames.joined(separator: ", "))
        for device in client.devices {
            if let channel = client.channel(device.relid) {
                let sizes = channel.ringSizes
                print("  relid \(device.relid): \(className(device.classID)) \(device.instanceID) — bound to echo, "
                    + "rings \(sizes.outgoing / 1024)+\(sizes.incoming / 1024) KiB, eventfd doorbells")
            }
        }

        // Traffic with live rates.
        let counters = Locked((rounds: 0, bytes: 0))
        let deadline = ContinuousClock.now + .milliseconds(Int(self.seconds * 1000))
        let traffic = Task {
            var n = 0
            while ContinuousClock.now < deadline, !stop.withLock({ $0 }) {
                for device in client.devices {
                    let bytes = (0..<(64 + n % 1024)).map { UInt8(truncatingIfNeeded: $0 &+ n) }
                    let answer = try await client.echo(bytes, device: device.relid)
                    guard answer == bytes else { throw CLIError("echo returned different bytes") }
                    counters.withLock { $0 = ($0.rounds + 1, $0.bytes + 2 * bytes.count) }
                }
                n += 1
            }
        }
        var last = (rounds: 0, bytes: 0)
        var lastTime = ContinuousClock.now
        var serviced = false
        while ContinuousClock.now < deadline, !stop.withLock({ $0 }), guest.ending == nil {
            try? await Task.sleep(for: .milliseconds(500))
            if !serviced {
                serviced = true
                successor.withLock { $0 = nil }
                let pid = try await Self.replaceHost(admin: path + ".admin")
                successor.withLock { $0 = pid }
            }
            let now = counters.withLock { $0 }
            let elapsed = elapsedSeconds(since: lastTime)
            lastTime = ContinuousClock.now
            print("traffic: \(Int(Double(now.rounds - last.rounds) / elapsed)) echo round trips/s, "
                + "\(Int(Double(now.bytes - last.bytes) / elapsed / 1e3)) kB/s, \(now.rounds) in all, every byte checked")
            last = now
        }
        do {
            try await traffic.value
        } catch {
            if guest.ending == nil { throw error }
        }

        if !stop.withLock({ $0 }), guest.ending == nil, let first = client.devices.first?.relid {
            let enabled = try await client.requestSubChannels(2, device: first)
            await guest.bus.settle()
            print("sub-channels: asked for 2 on relid \(first), host enabled \(enabled), offered as relids \(guest.bus.subChannels(of: first))")
            print(busListing(guest.bus, json: false))
        }
        if !stop.withLock({ $0 }), guest.ending == nil {
            try await Self.runSocket(sockets)
        }
        if !stop.withLock({ $0 }), guest.ending == nil {
            try await Self.runNetwork(path, logger: logger, capture: capture)
            try await Self.runStorage(path, logger: logger, capture: capture)
        }
        if !stop.withLock({ $0 }), guest.ending == nil {
            try await self.runServices(admin: path + ".admin", work: work, shutdownAsked: shutdownAsked, capture: capture)
        }
        if let ending = guest.ending, !stop.withLock({ $0 }) { throw CLIError("the host went away: \(ending)") }
        guest.disconnect()
        _ = await guest.ended()
        // The first host left at the takeover: its process id may already be another
        // program's, so it is signalled only while it still runs.
        if host.isRunning { kill(host.processIdentifier, SIGTERM) }
        host.waitUntilExit()
        if let pid = successor.withLock({ $0 }) {
            // Not this process's child: stop it and wait for its socket file to go.
            kill(pid, SIGTERM)
            for _ in 0..<500 where FileManager.default.fileExists(atPath: path) { try? await Task.sleep(for: .milliseconds(10)) }
            successor.withLock { $0 = nil }
        }
        print("done: guest disconnected, host exited with status \(host.terminationStatus), socket removed")
        guard host.terminationStatus == 0 else { throw CLIError("the host exited with status \(host.terminationStatus)") }
    }
}

extension DemoCommand {
    /// `vmbus ctl service` in the middle of the traffic: a new host process takes over every
    /// guest, channel and device while the echoes go on. Returns the new host's pid.
    static func replaceHost(admin: String) async throws -> Int32? {
        print("servicing: 'vmbus ctl service' replaces the host process while the echoes run:")
        let lines: [String] = try await withCheckedThrowingContinuation { done in
            Thread {
                var lines: [String] = []
                done.resume(with: Result { try adminRequest(admin, "service", output: { lines.append($0) }); return lines })
            }.start()
        }
        for line in lines { print("  " + line) }
        return lines.lazy.compactMap { $0.hasPrefix("started the successor, pid ") ? Int32($0.dropFirst(27)) : nil }.first
    }

    /// One Hyper-V socket: connect to the host's echo port, stream data through, half-close,
    /// check every byte; then a port nobody listens on.
    static func runSocket(_ sockets: HvSocketGuest) async throws {
        let start = ContinuousClock.now
        let stream = try await sockets.connect(port: HvSocketServices.echoPort, timeout: .seconds(10))
        print("hvsock: connected to host port 7 (echo) in \(milliseconds(elapsedSeconds(since: start))) ms — "
            + "its own channel, relid \(stream.channel.relid), local port \(stream.localPort ?? 0)")
        let data = (0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 11) }
        let transfer = ContinuousClock.now
        async let back = stream.readAll()
        try await stream.write(data)
        try await stream.shutdownWrite()
        let echoed = try await back
        let seconds = elapsedSeconds(since: transfer)
        await stream.close()
        guard echoed == data else { throw CLIError("hvsock echo returned different bytes") }
        print("  sent 4 MiB and read it back byte-exact in \(milliseconds(seconds)) ms, then FIN both ways and the host rescinded the channel")
        do {
            _ = try await sockets.connect(port: 4444, timeout: .seconds(5))
            print("  port 4444: unexpectedly connected")
        } catch {
            print("  port 4444: \(error)")
        }
    }

    /// Each integration service once, driven through the host's admin socket as `vmbus ctl`
    /// would.
    func runServices(admin: String, work: String, shutdownAsked: Locked<String?>, capture: (any CaptureRecorder)?) async throws {
        // Each request to the host is also written into the capture (as guest 1's), so that
        // `vmbus capture replay` can make it again: it starts traffic no guest asked for.
        let tap = capture.map { CaptureTap(recorder: $0, connection: 1, observer: .guest) }
        func adminRequest(
            _ admin: String, guest: String, _ command: String, _ parameters: [String] = [], attachment: [UInt8] = [], prefix: String
        ) throws {
            tap?.operatorRequest(command, parameters, attachment: attachment)
            try vmbus.adminRequest(admin, guest: guest, command, parameters, prefix: prefix)
        }
        print("integration services (driven through the host's admin socket, as 'vmbus ctl' does):")
        // Guest 1 is this demo's guest; the network step's guests may still be leaving.
        // The host negotiates each service as its channel opens; wait until all six are up.
        for _ in 0..<100 {
            let ready = (try? self.statusShowsAllOpen(admin)) ?? false
            if ready { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        try adminRequest(admin, guest: "1", "heartbeat", prefix: "  ")
        try adminRequest(admin, guest: "1", "time", prefix: "  ")
        try adminRequest(admin, guest: "1", "kvp", ["set", "0", "DemoKey", "written by the host"], prefix: "  ")
        print("  kvp: the guest stored DemoKey; reading it back:")
        try adminRequest(admin, guest: "1", "kvp", ["get", "0", "DemoKey"], prefix: "    ")
        print("  kvp: the guest's AUTO pool (first entries):")
        try adminRequest(admin, guest: "1", "kvp", ["list", "2"], prefix: "    ")
        let source = work + "/source.txt"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let greeting = Array("hello from the host\n".utf8)
        try Data(greeting).write(to: URL(fileURLWithPath: source))
        try adminRequest(admin, guest: "1", "copy", [source, "inbox/hello.txt", "create-path"], attachment: greeting, prefix: "  ")
        let arrived = FileManager.default.contents(atPath: work + "/root/inbox/hello.txt").map { String(decoding: $0, as: UTF8.self) }
        print("  fcopy: the guest's file holds: \(arrived?.trimmingCharacters(in: .newlines) ?? "nothing")")
        try adminRequest(admin, guest: "1", "backup", prefix: "  vss ")
        try adminRequest(admin, guest: "1", "shutdown", ["reboot"], prefix: "  ")
        print("  shutdown: the guest's handler got \(shutdownAsked.withLock { $0 } ?? "nothing yet") (the demo does not act on it)")
    }

    func statusShowsAllOpen(_ admin: String) throws -> Bool {
        var open = 0
        try adminRequest(admin, guest: "1", "status", output: { if $0.contains(": open,") { open += 1 } })
        return open == 6
    }
}

/// One line from a pipe (blocking), without the newline; `nil` at its end.
func readLine(_ handle: FileHandle) -> String? {
    var bytes: [UInt8] = []
    while true {
        let data = handle.readData(ofLength: 1)
        guard let byte = data.first else { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
        if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
        bytes.append(byte)
    }
}

extension DemoCommand {
    /// The demo host's devices, in the order it offers them: a replay of the demo's capture
    /// needs a host started with the same.
    static func hostArguments(devices: Int) -> [String] {
        ["--device", "echo:\(devices)", "--device", "ic", "--device", "hvsock", "--net", "switch", "--disk", "mem:64M"]
    }

    /// Completes the demo's capture and says what it holds, how to look at it and how to
    /// replay it.
    static func finishCapture(_ sink: CaptureSink, hostArguments: [String]) {
        do {
            let summary = try sink.close()
            print("capture: \(summary.records) record(s) of \(summary.connections) guest connection(s) in \(sink.path); look with "
                + "'vmbus capture summary \(sink.path)' or 'tshark -X lua_script:Tools/wireshark/vmbus.lua -r \(sink.path)'")
            if summary.dropped > 0 {
                print("capture: \(summary.dropped) record(s) lost: the capture's writer fell behind (the data path never waits for it)")
            }
            print("capture: to replay it, start a host as the demo did: 'vmbus host --listen /tmp/replay.sock \(hostArguments.joined(separator: " "))' "
                + "then run 'vmbus capture replay \(sink.path) --connect /tmp/replay.sock'")
        } catch {
            print("capture: \(error)")
        }
    }
}
