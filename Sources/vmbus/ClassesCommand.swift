import ArgumentParser
import VMBusWire

/// `vmbus classes`: the table of well-known device classes (spec 05 §3).
struct ClassesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classes",
        abstract: "List the well-known VMBus device classes.",
        discussion: """
            Columns: short name, class GUID, Linux id, Linux device index (16 = unknown), \
            performance-critical, allowed in isolated VMs, preferred ring size per direction.
            """
    )

    @Option(name: .long, help: "Show only the class with this short name or GUID.")
    var lookup: String?

    func run() throws {
        var classes = DeviceClass.all
        if let lookup = self.lookup {
            let byGUID = GUID(lookup).flatMap(DeviceClass.lookup)
            guard let found = byGUID ?? DeviceClass.named(lookup) else {
                throw CLIError("no well-known class named or with GUID '\(lookup)'")
            }
            classes = [found]
        }
        print(pad("name", 12) + pad("class GUID", 38) + pad("linux", 13) + pad("idx", 5) + pad("perf", 6)
            + pad("iso", 5) + pad("ring", 9) + "description")
        for c in classes {
            let ring = c.preferredRingSize.map { "0x" + String($0, radix: 16) } ?? "-"
            print(pad(c.name, 12) + pad(c.classID.description, 38) + pad(c.linuxName, 13)
                + pad(String(c.linuxIndex), 5) + pad(c.isPerformanceCritical ? "yes" : "no", 6)
                + pad(c.allowedInIsolatedVM ? "yes" : "no", 5) + pad(ring, 9) + c.summary)
        }
    }
}

/// Left-justifies `text` in a column of `width` characters.
func pad(_ text: String, _ width: Int) -> String {
    text + String(repeating: " ", count: max(1, width - text.count))
}
