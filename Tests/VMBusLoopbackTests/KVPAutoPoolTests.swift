import Foundation
import Testing
import VMBusDevices
import VMBusMemory

/// Pool AUTO reports what Linux's `hv_kvp_daemon` reports for the same machine (06 §6.3).
@Suite struct KVPAutoPoolTests {
    static let ubuntu = """
        # written by the distribution
        PRETTY_NAME="Ubuntu 24.04.1 LTS"
        NAME="Ubuntu"
        VERSION_ID="24.04"
        VERSION="24.04.1 LTS (Noble Numbat)"
        ID=ubuntu
        """

    static let addresses: [InterfaceAddress] = [
        InterfaceAddress(interface: "lo", family: .ipv4, address: "127.0.0.1", isLoopback: true),
        InterfaceAddress(interface: "eth0", family: .ipv4, address: "10.0.0.5"),
        InterfaceAddress(interface: "eth1", family: .ipv4, address: "192.168.1.9"),
        InterfaceAddress(interface: "lo", family: .ipv6, address: "::1", isLoopback: true),
        InterfaceAddress(interface: "eth0", family: .ipv6, address: "fe80::215:5dff:fe00:105"),
        InterfaceAddress(interface: "eth0", family: .ipv6, address: "2001:db8::5"),
    ]

    static func pool(osRelease: String?) -> KVPAutoPool {
        KVPAutoPool(
            kernel: KernelIdentity(sysname: "Linux", release: "6.8.0-45-generic", machine: "x86_64"), osRelease: osRelease,
            hostName: "guest7.example.com", addresses: { Self.addresses })
    }

    /// The whole table, enumerated by a host over the bus.
    @Test func theHostEnumeratesLinuxsFacts() async throws {
        let host = KVPHost()
        let (bus, _) = try await icBus(host: [host.device], guest: [KVPGuest(autoPool: Self.pool(osRelease: Self.ubuntu))])
        defer { withExtendedLifetime(bus) {} }
        let entries = try await host.enumerate(pool: .auto).map { "\($0.key)=\($0.value)" }
        #expect(entries == [
            "FullyQualifiedDomainName=guest7.example.com",
            "IntegrationServicesVersion=3.1",
            "NetworkAddressIPv4=10.0.0.5;192.168.1.9",
            "NetworkAddressIPv6=fe80::215:5dff:fe00:105;2001:db8::5",
            "OSBuildNumber=6.8.0-45-generic",
            "OSName=Ubuntu",
            "OSMajorVersion=24.04",
            "OSMinorVersion=",
            "OSVersion=6.8.0",
            "ProcessorArchitecture=x86_64",
        ])
    }

    @Test func withoutOSReleaseTheNameIsTheKernels() {
        let pool = Self.pool(osRelease: nil)
        #expect(pool.entry(at: 5)! == ("OSName", "Linux"))
        #expect(pool.entry(at: 6)! == ("OSMajorVersion", ""))
        // An os-release without NAME keeps the kernel's name too.
        #expect(Self.pool(osRelease: "VERSION_ID=12\n").entry(at: 5)! == ("OSName", "Linux"))
        #expect(pool.entry(at: 10) == nil)
        #expect(pool.entry(at: -1) == nil)
    }

    @Test func osReleaseValuesLoseQuotesAndKeepEscapedCharacters() {
        let fields = KVPAutoPool.parseOSRelease("""
            NAME="Fedora \\"Linux\\""
            #NAME=commented
            VERSION_ID='40'
            BAD LINE
            EMPTY=
            URL=https://example.com/a=b
            VERSION_ID=41
            """)
        #expect(fields["NAME"] == "Fedora \"Linux\"")
        #expect(fields["VERSION_ID"] == "41")  // the later line wins
        #expect(fields["EMPTY"] == "")
        #expect(fields["URL"] == "https://example.com/a=b")
        #expect(fields.count == 4)
    }

    /// No more addresses than a KVP value holds, and never half of one.
    @Test func addressesStopAtTheValueLimit() {
        let many = (0..<100).map { InterfaceAddress(interface: "eth0", family: .ipv6, address: "2001:db8:1234:5678:9abc:def0:1234:\(1000 + $0)") }
        let pool = KVPAutoPool(
            kernel: KernelIdentity(sysname: "Linux", release: "6.1", machine: "aarch64"), osRelease: nil, hostName: "h",
            addresses: { many })
        let value = pool.entry(at: 3)!.value
        #expect(value.utf16.count <= KVPAutoPool.maximumValueLength)
        #expect(value.split(separator: ";").count == 26)  // 26 × 39 − 1 = 1013 units; 27 would be 1052
        #expect(value.split(separator: ";").allSatisfy { $0.count == 38 })
        #expect(pool.entry(at: 8)!.value == "6.1")  // a release without '-' is whole
    }

    /// This machine's facts come from the kernel and the interfaces, never the loopback.
    @Test func theSystemPoolReadsThisMachine() throws {
        let pool = KVPAutoPool.system()
        let release = try String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(pool.entry(at: 4)!.value == release)
        #expect(pool.entry(at: 8)!.value == String(release.split(separator: "-", omittingEmptySubsequences: false)[0]))
        #expect(!pool.entry(at: 2)!.value.split(separator: ";").contains("127.0.0.1"))
        #expect(!pool.entry(at: 3)!.value.split(separator: ";").contains("::1"))
        let all = try InterfaceAddress.all()
        #expect(all.contains { $0.isLoopback && $0.address == "127.0.0.1" })  // every Linux has lo
        let missing = KVPAutoPool.system(osReleasePath: "/nonexistent/os-release")
        #expect(missing.entry(at: 5)!.value == KernelIdentity.current().sysname)
    }
}
