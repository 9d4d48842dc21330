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
        .executable(name: "vmbus", targets: ["vmbus"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
    ],
    targets: [
        // Linux calls that Swift's Glibc module does not import (memfd, seals, eventfd, epoll,
        // SCM_RIGHTS helpers, SO_PEERCRED).
        .target(name: "CLinux"),
        // Every VMBus wire format: pure values, no I/O, no Foundation, no unsafe code.
        .target(name: "VMBusWire", swiftSettings: strictSafety),
        .executableTarget(
            name: "vmbus",
            dependencies: [
                "VMBusWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSafety
        ),
        .testTarget(name: "VMBusWireTests", dependencies: ["VMBusWire"], swiftSettings: strictSafety),
        .testTarget(name: "CLinuxTests", dependencies: ["CLinux"]),
        .testTarget(name: "vmbusTests", dependencies: ["vmbus", "VMBusWire"], swiftSettings: strictSafety),
    ]
)
