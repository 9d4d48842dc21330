import Testing
import VMBusMemory

@Suite struct StreamSocketTests {
    @Test func addressesParseFromText() {
        #expect(StreamAddress("unix:/run/x.sock") == .unix("/run/x.sock"))
        #expect(StreamAddress("/run/x.sock") == .unix("/run/x.sock"))
        #expect(StreamAddress("tcp:127.0.0.1:8080") == .tcp(host: "127.0.0.1", port: 8080))
        #expect(StreamAddress("tcp:[::1]:22") == .tcp(host: "::1", port: 22))
        #expect(StreamAddress("tcp::9") == .tcp(host: "127.0.0.1", port: 9))
        #expect(StreamAddress("tcp:host:99999") == nil)
        #expect(StreamAddress("unix:") == nil)
        #expect(StreamAddress("nonsense") == nil)
        #expect(StreamAddress.tcp(host: "::1", port: 22).description == "tcp:[::1]:22")
    }

    @Test func tcpOnLoopbackCarriesBytesAndHalfCloses() throws {
        let server = try StreamSocket.listen(.tcp(host: "127.0.0.1", port: 0))
        let port = try #require(server.localPort)
        let client = try StreamSocket.connect(.tcp(host: "127.0.0.1", port: port))
        let accepted = try server.accept()
        try client.write([1, 2, 3][...])
        client.shutdownWrite()
        var buffer = [UInt8](repeating: 0, count: 8)
        var got: [UInt8] = []
        while case let n = try accepted.read(into: &buffer), n > 0 { got += buffer[0..<n] }
        #expect(got == [1, 2, 3])
        // The other direction still works after the half-close.
        try accepted.write([4][...])
        #expect(try client.read(into: &buffer) == 1 && buffer[0] == 4)
    }

    @Test func writingToAGonePeerIsAnErrorNotASignal() throws {
        let (a, b) = try DescriptorIO.tcpPair()
        let writer = StreamSocket(taking: a)
        DescriptorIO.close(b)
        let chunk = [UInt8](repeating: 0, count: 1 << 16)
        // The first writes may still be buffered; one fails once the reset arrives.
        var failed = false
        for _ in 0..<64 where !failed {
            do { try writer.write(chunk[...]) } catch { failed = true }
        }
        #expect(failed)
    }

    @Test func connectingToNothingFailsWithTheReason() {
        #expect(throws: MemoryError.self) { try StreamSocket.connect(.unix("/nonexistent/vmbus.sock")) }
    }
}
