import Testing
import VMBusDevices
import VMBusLocal
@testable import VMBusAdmin

/// The integration-service commands' messages where no guest is needed to reach them (the
/// process tests of `vmbus host` cover them with guests).
@Suite(.timeLimit(.minutes(1))) struct IntegrationCommandsTests {
    /// A host with no guest, and an admin server with the integration services on it.
    static func server(exported: ICSet? = nil) throws -> (LocalHost, AdminServer) {
        let host = try LocalHost(path: temporarySocketPath()) { _ in [] }
        let server = try AdminServer(path: temporarySocketPath())
        server.registerIntegrationServices(host: host, services: ICRegistry(), exported: exported)
        server.start()
        return (host, server)
    }

    static func request(_ server: AdminServer, guest: String = "0", _ command: String) async -> (lines: [String], error: AdminError?) {
        await onThread {
            var lines: [String] = []
            do throws(AdminError) {
                try AdminClient.request(path: server.path, guest: guest, command: command, output: { lines.append($0) })
                return (lines, nil)
            } catch {
                return (lines, error)
            }
        }
    }

    @Test func theCommandsAreRegistered() throws {
        let (host, server) = try Self.server()
        defer { server.stop(); host.stop() }
        #expect(server.commands == ["backup", "copy", "heartbeat", "kvp", "shutdown", "status", "time"])
    }

    @Test func statusWithoutGuests() async throws {
        let (host, server) = try Self.server()
        defer { server.stop(); host.stop() }
        let status = await Self.request(server, "status")
        #expect(status.error == nil)
        #expect(status.lines == ["0 guest(s) connected, 0 served since start"])
    }

    @Test func aServiceCommandNamesTheMissingGuest() async throws {
        let (host, server) = try Self.server()
        defer { server.stop(); host.stop() }
        #expect(await Self.request(server, "heartbeat").error == AdminError("no guest is connected"))
        #expect(await Self.request(server, guest: "7", "kvp").error == AdminError("no guest 7"))
        #expect(await Self.request(server, guest: "uio", "time").error == AdminError("nothing is exported (start the host with --uio-export)"))
    }

    /// With nothing connected, guest "0" means the exported services, and a service the uio
    /// daemon has not opened is reported after the wait.
    @Test func theOnlyTargetWithoutGuestsIsTheExport() async throws {
        let (host, server) = try Self.server(exported: ICSet())
        defer { server.stop(); host.stop() }
        #expect(await Self.request(server, "heartbeat").error == AdminError("guest uio has not opened the service"))
    }

    /// A Linux guest without `hv_kvp_daemon` opens the KVP channel and never negotiates: ctl
    /// says KVP is not running there, not "did not answer in time".
    @Test func anUnansweredNegotiationIsExplainedAsTheDaemonNotRunning() async throws {
        await #expect { try await daemonService("KVP", "hv_kvp_daemon") { throw ICError.negotiationUnanswered } } throws: { error in
            "\(error)".contains("KVP is not running in the guest") && "\(error)".contains("hv_kvp_daemon")
        }
        await #expect { try await daemonService("KVP", "hv_kvp_daemon") { throw ICError.timedOut } } throws: { error in
            "\(error)".contains("is hv_kvp_daemon running?")
        }
    }
}
