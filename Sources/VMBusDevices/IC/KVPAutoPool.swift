import Foundation
import VMBusMemory

/// A guest's KVP pool AUTO (06 §6.3): the fixed index → key table, with the same facts Linux's
/// `hv_kvp_daemon` reports for the same machine, so a host sees one guest the same way
/// whichever of the two answers.
///
/// | Index | Key | Value |
/// |---|---|---|
/// | 0 | FullyQualifiedDomainName | the host name |
/// | 1 | IntegrationServicesVersion | `3.1`, Linux's driver version |
/// | 2 | NetworkAddressIPv4 | every non-loopback interface's IPv4 addresses, `;`-separated |
/// | 3 | NetworkAddressIPv6 | the same for IPv6 |
/// | 4 | OSBuildNumber | the kernel release in full (`uname -r`) |
/// | 5 | OSName | `NAME` from os-release, else the kernel's sysname |
/// | 6 | OSMajorVersion | `VERSION_ID` from os-release, else empty |
/// | 7 | OSMinorVersion | empty: os-release has nothing for it |
/// | 8 | OSVersion | the kernel release up to its first `-` (older hosts expect `x.y.z`) |
/// | 9 | ProcessorArchitecture | the kernel's machine (`uname -m`) |
///
/// The OS facts are read once; the addresses are asked again at every enumeration, as Linux
/// does, since they change while the guest runs.
public struct KVPAutoPool: Sendable {
    /// The keys, by index.
    public static let keys = [
        "FullyQualifiedDomainName", "IntegrationServicesVersion", "NetworkAddressIPv4", "NetworkAddressIPv6",
        "OSBuildNumber", "OSName", "OSMajorVersion", "OSMinorVersion", "OSVersion", "ProcessorArchitecture",
    ]
    /// The most UTF-16 units a value may have: the 2048-byte field less its NUL.
    public static let maximumValueLength = 1023

    /// The kernel's sysname, release and machine.
    public var kernel: KernelIdentity
    /// The os-release text, or `nil` when the system has none.
    public var osRelease: String?
    /// What FullyQualifiedDomainName reports.
    public var hostName: String
    /// What IntegrationServicesVersion reports.
    public var integrationServicesVersion: String
    /// The interfaces' addresses, asked at each enumeration of index 2 or 3.
    public var addresses: @Sendable () -> [InterfaceAddress]

    /// A pool with given facts (tests, a guest describing another system).
    public init(
        kernel: KernelIdentity, osRelease: String?, hostName: String, integrationServicesVersion: String = "3.1",
        addresses: @escaping @Sendable () -> [InterfaceAddress]
    ) {
        self.kernel = kernel
        self.osRelease = osRelease
        self.hostName = hostName
        self.integrationServicesVersion = integrationServicesVersion
        self.addresses = addresses
    }

    /// This machine's facts: `uname`, the os-release file, the host name and `getifaddrs`.
    /// - Parameter osReleasePath: where os-release is; Linux's daemon reads `/etc/os-release`.
    public static func system(osReleasePath: String = "/etc/os-release") -> KVPAutoPool {
        KVPAutoPool(
            kernel: .current(),
            osRelease: (try? Data(contentsOf: URL(fileURLWithPath: osReleasePath))).map { String(decoding: $0, as: UTF8.self) },
            hostName: ProcessInfo.processInfo.hostName,
            addresses: { (try? InterfaceAddress.all()) ?? [] })
    }

    /// The key and value at `index`, or `nil` past the table (the host's end of enumeration).
    public func entry(at index: Int) -> (key: String, value: String)? {
        guard Self.keys.indices.contains(index) else { return nil }
        let osRelease = self.osRelease.map(Self.parseOSRelease) ?? [:]
        let value: String
        switch index {
        case 0: value = self.hostName
        case 1: value = self.integrationServicesVersion
        case 2: value = Self.join(self.addresses().filter { $0.family == .ipv4 && !$0.isLoopback }.map(\.address))
        case 3: value = Self.join(self.addresses().filter { $0.family == .ipv6 && !$0.isLoopback }.map(\.address))
        case 4: value = self.kernel.release
        case 5: value = osRelease["NAME"] ?? self.kernel.sysname
        case 6: value = osRelease["VERSION_ID"] ?? ""
        case 7: value = ""
        case 8: value = String(self.kernel.release.prefix { $0 != "-" })
        default: value = self.kernel.machine
        }
        return (Self.keys[index], value)
    }

    /// Addresses joined with `;`, as many as fit a KVP value whole (Linux's daemon also stops
    /// at the first address that would not fit).
    static func join(_ addresses: [String]) -> String {
        var joined = ""
        for address in addresses {
            let next = joined.isEmpty ? address : joined + ";" + address
            guard next.utf16.count <= Self.maximumValueLength else { break }
            joined = next
        }
        return joined
    }

    /// The `NAME=value` lines of an os-release text, read as Linux's daemon reads them: lines
    /// starting with `#` are skipped, the name ends at the first `=`, and in the value every
    /// quote (`"` or `'`) is dropped and a backslash keeps the character after it as is. A
    /// later line wins.
    public static func parseOSRelease(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            var value = ""
            var escaped = false
            for character in line[line.index(after: equals)...] {
                if escaped {
                    value.append(character)
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else if character != "\"" && character != "'" {
                    value.append(character)
                }
            }
            fields[String(line[..<equals])] = value
        }
        return fields
    }
}
