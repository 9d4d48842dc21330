/// A well-known VMBus device class (05 §3): the class GUID an offer carries in `if_type`,
/// with the properties Linux attaches to it.
public struct DeviceClass: Hashable, Sendable {
    /// How Linux treats the class.
    public enum LinuxSupport: Hashable, Sendable {
        /// In Linux's `vmbus_devs` table, at this index (the sysfs `device` attribute).
        case supported(index: Int)
        /// Recognised by Linux but explicitly unsupported (gets `HV_UNKNOWN`, index 16).
        case unsupported
        /// Not in mainline Linux at all (Microsoft code only; also `HV_UNKNOWN` there).
        case absent
    }

    /// A short name (`scsi`, `nic`, `kvp`…), also used by the CLI.
    public var name: String
    /// Linux's id (`HV_SCSI`…) or the name used by the code that defines the class.
    public var linuxName: String
    /// What the device is.
    public var summary: String
    /// The class GUID.
    public var classID: GUID
    /// Linux spreads a performance-critical device's channels over CPUs.
    public var isPerformanceCritical: Bool
    /// Mainline Linux accepts the offer in an isolated (SNP/TDX) guest.
    public var allowedInIsolatedVM: Bool
    /// Preferred ring size per direction, header included, for generic user-space drivers.
    public var preferredRingSize: Int?
    /// How Linux treats the class.
    public var linuxSupport: LinuxSupport

    /// Linux's `device` id for offers of unknown classes.
    public static let linuxUnknownIndex = 16
    /// Preferred ring size Linux uses for unknown classes (0x11000: 64 KiB data + header).
    public static let unknownClassRingSize = 0x11000

    /// The `device` number Linux shows in sysfs for this class.
    public var linuxIndex: Int {
        switch self.linuxSupport {
        case .supported(let index): return index
        case .unsupported, .absent: return Self.linuxUnknownIndex
        }
    }

    private init(
        _ name: String, _ linuxName: String, _ guid: String, _ summary: String, perf: Bool = false,
        isolated: Bool = false, ring: Int? = nil, _ support: LinuxSupport
    ) {
        self.name = name
        self.linuxName = linuxName
        self.summary = summary
        // The table below is literal text checked by the tests; a typo would be caught there.
        self.classID = GUID(guid) ?? .zero
        self.isPerformanceCritical = perf
        self.allowedInIsolatedVM = isolated
        self.preferredRingSize = ring
        self.linuxSupport = support
    }

    /// IDE over the storvsc protocol (Gen1 VMs): class `32412632-86cb-44a2-9b5c-50d1417354f5`
    /// (Linux `HV_IDE`, index 0).
    public static let ide = DeviceClass(
        "ide", "HV_IDE", "32412632-86cb-44a2-9b5c-50d1417354f5", "IDE over the storvsc protocol (Gen1 VMs)",
        perf: true, .supported(index: 0))
    /// Synthetic SCSI controller (storvsc): class `ba6163d9-04a1-4d29-b605-72e2ffb1dc7f` (Linux `HV_SCSI`, index 1).
    public static let scsi = DeviceClass(
        "scsi", "HV_SCSI", "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f", "synthetic SCSI controller (storvsc)",
        perf: true, isolated: true, .supported(index: 1))
    /// Synthetic Fibre Channel (storvsc): class `2f9bcc4a-0069-4af3-b76b-6fd0be528cda` (Linux `HV_FC`, index 2).
    public static let fibreChannel = DeviceClass(
        "fc", "HV_FC", "2f9bcc4a-0069-4af3-b76b-6fd0be528cda", "synthetic Fibre Channel (storvsc)",
        perf: true, .supported(index: 2))
    /// Synthetic network adapter (netvsc): class `f8615163-df3e-46c5-913f-f2d2f965ed0e` (Linux `HV_NIC`, index 3).
    public static let network = DeviceClass(
        "nic", "HV_NIC", "f8615163-df3e-46c5-913f-f2d2f965ed0e", "synthetic network adapter (netvsc)",
        perf: true, isolated: true, .supported(index: 3))
    /// Network Direct (RDMA): class `8c2eaf3d-32a7-4b09-ab99-bd1f1c86b501` (Linux `HV_ND`, index 4).
    public static let networkDirect = DeviceClass(
        "nd", "HV_ND", "8c2eaf3d-32a7-4b09-ab99-bd1f1c86b501", "Network Direct (RDMA)",
        perf: true, .supported(index: 4))
    /// Virtual PCI bus (pass-through): class `44c4f61d-4444-4400-9d52-802e27ede19f` (Linux `HV_PCIE`, index 5).
    public static let pcie = DeviceClass(
        "pcie", "HV_PCIE", "44c4f61d-4444-4400-9d52-802e27ede19f", "virtual PCI bus (pass-through)",
        isolated: true, .supported(index: 5))
    /// Synthetic video: class `da0a7802-e377-4aac-8e77-0558eb1073f8` (Linux `HV_FB`, index 6).
    public static let framebuffer = DeviceClass(
        "fb", "HV_FB", "da0a7802-e377-4aac-8e77-0558eb1073f8", "synthetic video", .supported(index: 6))
    /// Synthetic keyboard: class `f912ad6d-2b17-48ea-bd65-f927a61c7684` (Linux `HV_KBD`, index 7).
    public static let keyboard = DeviceClass(
        "kbd", "HV_KBD", "f912ad6d-2b17-48ea-bd65-f927a61c7684", "synthetic keyboard", .supported(index: 7))
    /// Synthetic HID mouse: class `cfa8b69e-5b4a-4cc0-b98b-8ba1a1f3f95a` (Linux `HV_MOUSE`, index 8).
    public static let mouse = DeviceClass(
        "mouse", "HV_MOUSE", "cfa8b69e-5b4a-4cc0-b98b-8ba1a1f3f95a", "synthetic HID mouse", .supported(index: 8))
    /// IC: key-value pair exchange: class `a9a0f4e7-5a45-4d96-b827-8a841e8c03e6` (Linux `HV_KVP`, index 9).
    public static let kvp = DeviceClass(
        "kvp", "HV_KVP", "a9a0f4e7-5a45-4d96-b827-8a841e8c03e6", "IC: key-value pair exchange",
        .supported(index: 9))
    /// IC: time synchronisation: class `9527e630-d0ae-497b-adce-e80ab0175caf` (Linux `HV_TS`, index 10).
    public static let timeSync = DeviceClass(
        "timesync", "HV_TS", "9527e630-d0ae-497b-adce-e80ab0175caf", "IC: time synchronisation",
        isolated: true, .supported(index: 10))
    /// IC: heartbeat: class `57164f39-9115-4e78-ab55-382f3bd5422d` (Linux `HV_HB`, index 11).
    public static let heartbeat = DeviceClass(
        "heartbeat", "HV_HB", "57164f39-9115-4e78-ab55-382f3bd5422d", "IC: heartbeat",
        isolated: true, .supported(index: 11))
    /// IC: shutdown: class `0e0b6031-5213-4934-818b-38d90ced39db` (Linux `HV_SHUTDOWN`, index 12).
    public static let shutdown = DeviceClass(
        "shutdown", "HV_SHUTDOWN", "0e0b6031-5213-4934-818b-38d90ced39db", "IC: shutdown",
        isolated: true, .supported(index: 12))
    /// IC: guest file copy: class `34d14be3-dee4-41c8-9ae7-6b174977c192` (Linux `HV_FCOPY`, index 13).
    public static let fileCopy = DeviceClass(
        "fcopy", "HV_FCOPY", "34d14be3-dee4-41c8-9ae7-6b174977c192", "IC: guest file copy",
        ring: 0x4000, .supported(index: 13))
    /// IC: VSS (backup / snapshot): class `35fa2e29-ea23-4236-96ae-3a6ebacba440` (Linux `HV_BACKUP`, index 14).
    public static let backup = DeviceClass(
        "vss", "HV_BACKUP", "35fa2e29-ea23-4236-96ae-3a6ebacba440", "IC: VSS (backup / snapshot)",
        .supported(index: 14))
    /// Dynamic memory (balloon / hot-add): class `525074dc-8985-46e2-8057-a307dc18a502` (Linux `HV_DM`, index 15).
    public static let dynamicMemory = DeviceClass(
        "dm", "HV_DM", "525074dc-8985-46e2-8057-a307dc18a502", "dynamic memory (balloon / hot-add)",
        .supported(index: 15))

    /// Automatic VM activation: class `f8e65716-3cb3-4a06-9a60-1889c5cccab5` (`AVMA1`; Linux recognises it and leaves
    /// it unsupported).
    public static let avma1 = DeviceClass(
        "avma1", "AVMA1", "f8e65716-3cb3-4a06-9a60-1889c5cccab5", "automatic VM activation",
        ring: unknownClassRingSize, .unsupported)
    /// Automatic VM activation: class `3375baf4-9e15-4b30-b765-67acb10d607b` (`AVMA2`; Linux recognises it and leaves
    /// it unsupported).
    public static let avma2 = DeviceClass(
        "avma2", "AVMA2", "3375baf4-9e15-4b30-b765-67acb10d607b", "automatic VM activation",
        ring: unknownClassRingSize, .unsupported)
    /// Remote desktop virtualisation: class `276aacf4-ac15-426c-98dd-7521ad3f01fe` (`RDV`; Linux recognises it and
    /// leaves it unsupported).
    public static let remoteDesktop = DeviceClass(
        "rdv", "RDV", "276aacf4-ac15-426c-98dd-7521ad3f01fe", "remote desktop virtualisation",
        ring: unknownClassRingSize, .unsupported)
    /// Initial machine configuration (OpenVMM: vmbfs file system): class `c376c1c3-d276-48d2-90a9-c04748072c60` (`IMC`;
    /// Linux recognises it and leaves it unsupported).
    public static let initialMachineConfiguration = DeviceClass(
        "imc", "IMC", "c376c1c3-d276-48d2-90a9-c04748072c60",
        "initial machine configuration (OpenVMM: vmbfs file system)", ring: unknownClassRingSize, .unsupported)

    /// GPU-PV global channel (WSL2): class `dde9cbc0-5060-4436-9448-ea1254a5d177` (`dxgkrnl`; not in mainline Linux).
    public static let gpuGlobal = DeviceClass(
        "gpu-global", "dxgkrnl", "dde9cbc0-5060-4436-9448-ea1254a5d177", "GPU-PV global channel (WSL2)", .absent)
    /// GPU-PV per-vGPU channel: class `6e382d18-3336-4f4b-acc4-2b7703d4df4a` (`dxgkrnl`; not in mainline Linux).
    public static let gpuAdapter = DeviceClass(
        "gpu", "dxgkrnl", "6e382d18-3336-4f4b-acc4-2b7703d4df4a", "GPU-PV per-vGPU channel", .absent)
    /// Guest emulation device (OHCL): class `8dedd1aa-9056-49e4-bfd6-1bf90dc38ef0` (`GED`; not in mainline Linux).
    public static let guestEmulationDevice = DeviceClass(
        "ged", "GED", "8dedd1aa-9056-49e4-bfd6-1bf90dc38ef0", "guest emulation device (OHCL)", .absent)
    /// Guest emulation transport (OHCL): class `d3e4454d-62af-44ec-b851-3170915e5f56` (`GET`; not in mainline Linux).
    public static let guestEmulationTransport = DeviceClass(
        "get", "GET", "d3e4454d-62af-44ec-b851-3170915e5f56", "guest emulation transport (OHCL)", .absent)
    /// Guest emulation log (OHCL): class `aa5de534-d149-487a-9053-05972ba20a7c` (`GEL`; not in mainline Linux).
    public static let guestEmulationLog = DeviceClass(
        "gel", "GEL", "aa5de534-d149-487a-9053-05972ba20a7c", "guest emulation log (OHCL)", .absent)
    /// VMBus UART (OHCL): class `8b60ccf6-709f-4c11-90b5-229c959a9e6a` (`UART`; not in mainline Linux).
    public static let uart = DeviceClass(
        "uart", "UART", "8b60ccf6-709f-4c11-90b5-229c959a9e6a", "VMBus UART (OHCL)", .absent)
    /// Crash dump (OHCL): class `7050ebf0-1dbf-4528-838e-f7e10089fc4b` (`CRASHDUMP`; not in mainline Linux).
    public static let crashDump = DeviceClass(
        "crashdump", "CRASHDUMP", "7050ebf0-1dbf-4528-838e-f7e10089fc4b", "crash dump (OHCL)", .absent)
    /// VTL0 relay (OHCL): class `427b03e7-4ceb-4286-b5fc-486f4a1dd439` (`RELAY`; not in mainline Linux).
    public static let vtl0Relay = DeviceClass(
        "relay-vtl0", "RELAY", "427b03e7-4ceb-4286-b5fc-486f4a1dd439", "VTL0 relay (OHCL)", .absent)
    /// VTL2 relay (OHCL): class `2a88c08d-55a9-4e1b-ac6e-0d086abf4e62` (`RELAY`; not in mainline Linux).
    public static let vtl2Relay = DeviceClass(
        "relay-vtl2", "RELAY", "2a88c08d-55a9-4e1b-ac6e-0d086abf4e62", "VTL2 relay (OHCL)", .absent)

    /// Every class above, Linux's `vmbus_devs` order first.
    public static let all: [DeviceClass] = [
        .ide, .scsi, .fibreChannel, .network, .networkDirect, .pcie, .framebuffer, .keyboard, .mouse, .kvp,
        .timeSync, .heartbeat, .shutdown, .fileCopy, .backup, .dynamicMemory,
        .avma1, .avma2, .remoteDesktop, .initialMachineConfiguration,
        .gpuGlobal, .gpuAdapter, .guestEmulationDevice, .guestEmulationTransport, .guestEmulationLog, .uart,
        .crashDump, .vtl0Relay, .vtl2Relay,
    ]

    /// The class with this GUID, if it is well known.
    public static func lookup(_ classID: GUID) -> DeviceClass? {
        Self.all.first { $0.classID == classID }
    }

    /// The class with this short name, if any.
    public static func named(_ name: String) -> DeviceClass? {
        Self.all.first { $0.name == name }
    }
}

/// Fixed instance GUIDs Hyper-V and OpenVMM use for singleton devices (05 §3).
public enum WellKnownInstance {
    /// The shutdown service's instance.
    public static let shutdown = GUID("b6650ff7-33bc-4840-8048-e0676786f393") ?? .zero
    /// The time-synchronisation service's instance.
    public static let timeSync = GUID("2dd1ce17-079e-403c-b352-a1921ee207ee") ?? .zero
    /// The KVP service's instance.
    public static let kvp = GUID("242ff919-07db-4180-9c2e-b86cb68c8c55") ?? .zero
    /// The fcopy instance the Linux uio daemon looks for.
    public static let fileCopy = GUID("eb765408-105f-49b6-b4aa-c123b64d17d4") ?? .zero
    /// The synthetic keyboard's instance.
    public static let keyboard = GUID("d34b2567-b9b6-42b9-8778-0a4ec0b955bf") ?? .zero
    /// The synthetic mouse's instance.
    public static let mouse = GUID("58f75a6d-d949-4320-99e1-a2a2576d581c") ?? .zero
    /// OpenVMM's IMC instance of the vmbfs class.
    public static let imc = GUID("c4e5e7d1-d748-4afc-979d-683167910a55") ?? .zero
    /// OpenVMM's boot-files instance of the vmbfs class.
    public static let bootFiles = GUID("c63c9bdf-5fa5-4208-b03f-6b458b365592") ?? .zero
    /// The four UART instances COM1–COM4 (OHCL).
    public static let uarts: [GUID] = [
        "700df40e-b947-4776-b839-d1b0a35af034", "7e55f4b8-af84-4e98-9f1a-8e8d0bde3744",
        "3f158fa1-b0aa-45e9-ba54-9fc73f6c59ec", "8688a06f-9b53-48ce-b408-7581626228c5",
    ].map { GUID($0) ?? .zero }
}
