import VMBusWire

/// Two small hvsock services for tests, demos and benchmarks (the classic echo and discard
/// ports): echo writes back everything it reads; discard reads to the end, then answers the
/// byte count as 8 little-endian bytes.
public enum HvSocketServices {
    public static let echoPort: UInt32 = 7
    public static let discardPort: UInt32 = 9

    /// Serves echo and discard on `host` until its listeners close.
    public static func start(on host: HvSocketHost) {
        let echo = host.listen(port: Self.echoPort)
        let discard = host.listen(port: Self.discardPort)
        // The accept loops keep `host` (and with it the connect handler) alive while they run.
        Task {
            defer { withExtendedLifetime(host) {} }
            while let stream = try? await echo.accept() {
                Task {
                    while let chunk = try? await stream.read(), !chunk.isEmpty {
                        guard (try? await stream.write(chunk)) != nil else { break }
                    }
                    await stream.close()
                }
            }
        }
        Task {
            defer { withExtendedLifetime(host) {} }
            while let stream = try? await discard.accept() {
                Task {
                    var total: UInt64 = 0
                    while let chunk = try? await stream.read(), !chunk.isEmpty { total += UInt64(chunk.count) }
                    var writer = WireWriter(capacity: 8)
                    writer.writeUInt64(total)
                    _ = try? await stream.write(writer.bytes)
                    await stream.close()
                }
            }
        }
    }
}
