// swift-tools-version: 6.2
import PackageDescription

/// Every Swift target except the memory layer builds with strict memory safety, promoted to an
/// error: unsafe pointer code belongs in one place only (see docs/ARCHITECTURE.md).
let strictSafety: [SwiftSetting] = [
    .strictMemorySafety(),
    .treatWarning("StrictMemorySafety", as: .error),
]

let package = Package(
    name: "swift-vmbus",
    products: [
        .library(name: "VMBusWire", targets: ["VMBusWire"]),
        .library(name: "VMBusRing", targets: ["VMBusRing"]),
        .library(name: "VMBusMemory", targets: ["VMBusMemory"]),
        .library(name: "VMBusChannel", targets: ["VMBusChannel"]),
        .library(name: "VMBusHost", targets: ["VMBusHost"]),
        .library(name: "VMBusGuest", targets: ["VMBusGuest"]),
        .library(name: "VMBusLoopback", targets: ["VMBusLoopback"]),
        .library(name: "VMBusLocal", targets: ["VMBusLocal"]),
        .library(name: "VMBusDevices", targets: ["VMBusDevices"]),
        .library(name: "VMBusNetwork", targets: ["VMBusNetwork"]),
        .library(name: "VMBusStorage", targets: ["VMBusStorage"]),
        .library(name: "VMBusAdmin", targets: ["VMBusAdmin"]),
        .library(name: "VMBusCapture", targets: ["VMBusCapture"]),
        .library(name: "VMBusReplay", targets: ["VMBusReplay"]),
        .library(name: "VMBusUio", targets: ["VMBusUio"]),
        .library(name: "VMBusMetrics", targets: ["VMBusMetrics"]),
        .executable(name: "vmbus", targets: ["vmbus"]),
        // LD_PRELOAD shim that runs unmodified uio_hv_generic programs against the export of
        // `vmbus host --uio-export` (docs/UIO-EXPORT.md): libvmbus-uio-preload.so.
        .library(name: "vmbus-uio-preload", type: .dynamic, targets: ["VMBusUioPreload"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        // FileDescriptor, Errno and FilePath for the memory layer's plain file calls
        // (docs/ARCHITECTURE.md, "System calls: swift-system and the C shim").
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        // Only for `swift package generate-documentation` (Scripts/check-docs.sh); no target uses it.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // Linux calls that Swift's Glibc module does not import (memfd, seals, eventfd, epoll,
        // SCM_RIGHTS helpers, SO_PEERCRED).
        .target(name: "CLinux"),
        // Every VMBus wire format: pure values, no I/O, no Foundation, no unsafe code.
        .target(name: "VMBusWire", swiftSettings: strictSafety),
        // The ring buffer over an abstract memory: safe code only, no I/O.
        .target(name: "VMBusRing", dependencies: ["VMBusWire"], swiftSettings: strictSafety),
        // The one target allowed unsafe code: mapped shared memory and its atomics.
        .target(
            name: "VMBusMemory",
            dependencies: [
                "VMBusRing", "VMBusWire", "CLinux", .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: [.strictMemorySafety()]
        ),
        // The channel API both sides use: sends, receives, requests over a ring pair.
        .target(
            name: "VMBusChannel", dependencies: ["VMBusRing", "VMBusWire", "VMBusMemory"], swiftSettings: strictSafety),
        // Host and guest control planes: pure state machines over the wire types. They never
        // import each other.
        .target(
            name: "VMBusHost", dependencies: ["VMBusWire", "VMBusRing", "VMBusChannel", "VMBusMemory"], swiftSettings: strictSafety),
        .target(
            name: "VMBusGuest", dependencies: ["VMBusWire", "VMBusChannel", "VMBusMemory"], swiftSettings: strictSafety),
        // The in-process substrate: a loopback "hypervisor" joining a host bus and a guest bus.
        .target(
            name: "VMBusLoopback",
            dependencies: ["VMBusHost", "VMBusGuest", "VMBusChannel", "VMBusMemory", "VMBusWire"],
            swiftSettings: strictSafety),
        // The local substrate (spec 09): host and guest as two processes over a Unix socket,
        // a memfd of guest memory and eventfd doorbells.
        .target(
            name: "VMBusLocal",
            dependencies: [
                "VMBusHost", "VMBusGuest", "VMBusChannel", "VMBusMemory", "VMBusWire",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSafety),
        // Devices, each with a host side and a guest side.
        .target(
            name: "VMBusDevices", dependencies: ["VMBusHost", "VMBusGuest", "VMBusChannel", "VMBusMemory", "VMBusWire"],
            swiftSettings: strictSafety),
        // The synthetic NIC (spec 11): the host's netvsp and the guest's netvsc, with their
        // network backends. A target of its own so a user links only the devices they need.
        .target(
            name: "VMBusNetwork", dependencies: ["VMBusHost", "VMBusGuest", "VMBusUio", "VMBusChannel", "VMBusMemory", "VMBusWire"],
            path: "Sources/VMBusNetwork", swiftSettings: strictSafety),
        // The synthetic SCSI controller (spec 10): the host's storvsp with its disk backends (files,
        // memory), the guest's storvsc with a block-device API, and an NBD server on that API.
        .target(
            name: "VMBusStorage", dependencies: ["VMBusHost", "VMBusGuest", "VMBusChannel", "VMBusMemory", "VMBusWire"],
            path: "Sources/VMBusStorage",
            swiftSettings: strictSafety),
        // The uio_hv_generic substrate (05 §10): sysfs discovery, a device's channel from user
        // space, and a fake export of it served by a user-space host.
        .target(
            name: "VMBusUio", dependencies: ["VMBusHost", "VMBusChannel", "VMBusMemory", "VMBusRing", "VMBusWire"],
            swiftSettings: strictSafety),
        // The admin protocol (docs/ADMIN.md): its server, its client and the integration-service
        // commands, so a program embedding the host serves the same socket `vmbus ctl` drives.
        .target(
            name: "VMBusAdmin", dependencies: ["VMBusLocal", "VMBusDevices", "VMBusHost", "VMBusCapture", "VMBusMemory", "VMBusWire"],
            swiftSettings: strictSafety),
        // Captures of the bus as pcapng files (docs/CAPTURE.md): the writer, its queue, the reader.
        .target(name: "VMBusCapture", dependencies: ["VMBusWire", "VMBusMemory"], swiftSettings: strictSafety),
        // Replays of a capture against a live peer (docs/CAPTURE.md): the captured side's traffic
        // sent again, the other side's answers compared.
        .target(
            name: "VMBusReplay", dependencies: ["VMBusCapture", "VMBusChannel", "VMBusMemory", "VMBusWire"],
            swiftSettings: strictSafety),
        // Metrics (docs/METRICS.md): snapshots of the channels' and devices' own counters, taken
        // when scraped, in a Prometheus registry, and the loopback HTTP endpoint serving them.
        .target(
            name: "VMBusMetrics",
            dependencies: [
                "VMBusHost", "VMBusGuest", "VMBusChannel", "VMBusRing", "VMBusMemory", "VMBusWire", "VMBusDevices", "VMBusNetwork",
                "VMBusStorage", .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strictSafety),
        // The preload library's C code: interposes libc calls, links only libc and libdl.
        .target(name: "VMBusUioPreload", linkerSettings: [.linkedLibrary("dl")]),
        .executableTarget(
            name: "vmbus",
            dependencies: [
                "VMBusWire", "VMBusRing", "VMBusMemory", "VMBusChannel", "VMBusHost", "VMBusGuest", "VMBusLoopback",
                "VMBusLocal", "VMBusDevices", "VMBusNetwork", "VMBusStorage", "VMBusUio", "VMBusAdmin", "VMBusCapture", "VMBusReplay",
                "VMBusMetrics", .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSafety
        ),
        .testTarget(name: "VMBusWireTests", dependencies: ["VMBusWire"], swiftSettings: strictSafety),
        .testTarget(name: "CLinuxTests", dependencies: ["CLinux"]),
        .testTarget(
            name: "VMBusControlTests", dependencies: ["VMBusHost", "VMBusGuest", "VMBusWire"], exclude: ["Fixtures"],
            swiftSettings: strictSafety),
        .testTarget(
            name: "VMBusLocalTests",
            dependencies: ["VMBusLocal", "VMBusDevices", "VMBusHost", "VMBusGuest", "VMBusChannel", "VMBusMemory", "VMBusWire"],
            swiftSettings: strictSafety),
        .testTarget(
            name: "VMBusUioTests",
            dependencies: ["VMBusUio", "VMBusDevices", "VMBusHost", "VMBusChannel", "VMBusMemory", "VMBusWire"],
            swiftSettings: strictSafety),
        .testTarget(
            name: "VMBusLoopbackTests",
            dependencies: ["VMBusLoopback", "VMBusLocal", "VMBusDevices", "VMBusHost", "VMBusGuest", "VMBusChannel", "VMBusMemory", "VMBusWire"],
            swiftSettings: strictSafety),
        .testTarget(
            name: "VMBusChannelTests", dependencies: ["VMBusChannel", "VMBusMemory", "VMBusRing", "VMBusWire"],
            swiftSettings: strictSafety),
        .testTarget(
            name: "VMBusNetworkTests",
            dependencies: [
                "VMBusNetwork", "VMBusLoopback", "VMBusLocal", "VMBusHost", "VMBusGuest", "VMBusUio", "VMBusChannel", "VMBusMemory", "VMBusWire",
            ],
            swiftSettings: strictSafety),
        .testTarget(
            name: "VMBusStorageTests",
            dependencies: ["VMBusStorage", "VMBusLoopback", "VMBusLocal", "VMBusHost", "VMBusGuest", "VMBusChannel", "VMBusMemory", "VMBusWire"],
            swiftSettings: strictSafety),
        .testTarget(
            name: "VMBusAdminTests", dependencies: ["VMBusAdmin", "VMBusDevices", "VMBusLocal", "VMBusMemory"],
            swiftSettings: strictSafety),
        .testTarget(
            name: "VMBusCaptureTests",
            dependencies: [
                "VMBusCapture", "VMBusLoopback", "VMBusDevices", "VMBusStorage", "VMBusHost", "VMBusGuest", "VMBusChannel", "VMBusMemory", "VMBusWire",
            ],
            swiftSettings: strictSafety),
        .testTarget(
            name: "VMBusMetricsTests",
            dependencies: [
                "VMBusMetrics", "VMBusLoopback", "VMBusDevices", "VMBusStorage", "VMBusHost", "VMBusGuest", "VMBusChannel", "VMBusMemory",
                "VMBusWire",
            ],
            swiftSettings: strictSafety),
        .testTarget(
            name: "VMBusReplayTests",
            dependencies: ["VMBusReplay", "VMBusCapture", "VMBusLocal", "VMBusDevices", "VMBusHost", "VMBusMemory", "VMBusWire"],
            swiftSettings: strictSafety),
        // The code of the DocC articles (Sources/*/Docs.docc), compiled and run; a test checks
        // that every swift block of the articles is in these sources.
        .testTarget(
            name: "DocSnippetTests",
            dependencies: ["doc-c-guest", "VMBusLoopback", "VMBusLocal", "VMBusDevices", "VMBusUio", "VMBusHost", "VMBusGuest", "VMBusChannel", "VMBusMemory", "VMBusWire"],
            swiftSettings: strictSafety),
        .testTarget(name: "VMBusRingTests", dependencies: ["VMBusRing", "VMBusWire"], swiftSettings: strictSafety),
        .testTarget(name: "VMBusMemoryTests", dependencies: ["CLinux", "VMBusMemory", "VMBusRing", "VMBusWire"]),
        // A minimal C uio driver for the file-copy device, run by the tests under the preload
        // library (never shipped).
        .executableTarget(name: "uio-probe", path: "Tests/uio-probe"),
        // The C guest of the DocC article "Attaching a C program through spec 09", run by
        // DocSnippetTests against a LocalHost (never shipped).
        .executableTarget(name: "doc-c-guest", path: "Tests/doc-c-guest"),
        .testTarget(name: "vmbusTests", dependencies: ["vmbus", "uio-probe", "VMBusWire", "VMBusMemory", "VMBusCapture"], swiftSettings: strictSafety),
    ]
)
