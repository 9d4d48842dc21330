// swift-tools-version: 6.2
import PackageDescription

// libFuzzer targets for every parser that reads peer bytes. Build and run one with
// `Scripts/fuzz.sh TARGET SECONDS` from the repository root; each target is an executable whose
// entry point is `LLVMFuzzerTestOneInput` (built with `--sanitize=fuzzer --product TARGET`).
// A separate package keeps these out of the main build.
let wire: Target.Dependency = .product(name: "VMBusWire", package: "swift-vmbus")

let host: Target.Dependency = .product(name: "VMBusHost", package: "swift-vmbus")
let guest: Target.Dependency = .product(name: "VMBusGuest", package: "swift-vmbus")
let channel: Target.Dependency = .product(name: "VMBusChannel", package: "swift-vmbus")
let memory: Target.Dependency = .product(name: "VMBusMemory", package: "swift-vmbus")
let storage: Target.Dependency = .product(name: "VMBusStorage", package: "swift-vmbus")

let package = Package(
    name: "FuzzTesting",
    dependencies: [.package(name: "swift-vmbus", path: "..")],
    targets: [
        .target(name: "FuzzSupport", dependencies: [wire]),
        .executableTarget(name: "FuzzChannelMessage", dependencies: [wire, "FuzzSupport"]),
        .executableTarget(name: "FuzzPacket", dependencies: [wire, "FuzzSupport"]),
        .executableTarget(name: "FuzzGpadl", dependencies: [wire, "FuzzSupport"]),
        .executableTarget(name: "FuzzIC", dependencies: [wire, "FuzzSupport"]),
        .executableTarget(name: "FuzzHost", dependencies: [wire, host, "FuzzSupport"]),
        .executableTarget(name: "FuzzGuest", dependencies: [wire, guest, "FuzzSupport"]),
        .executableTarget(name: "FuzzNetwork", dependencies: [wire, "FuzzSupport"]),
        .executableTarget(name: "FuzzStorage", dependencies: [wire, "FuzzSupport"]),
        .executableTarget(name: "FuzzNBD", dependencies: [wire, storage, "FuzzSupport"]),
        .executableTarget(name: "FuzzHostBus", dependencies: [wire, host, channel, memory, "FuzzSupport"]),
        .executableTarget(name: "FuzzSavedState", dependencies: [wire, host, "FuzzSupport"]),
    ]
)
