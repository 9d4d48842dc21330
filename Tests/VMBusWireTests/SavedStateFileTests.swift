import Testing
import VMBusWire

/// The saved-state envelope and record codec (docs/SAVED-STATE.md §1–§2).
@Suite struct SavedStateFileTests {
    @Test func crc32cMatchesItsCheckValue() {
        // The standard check value of CRC-32C over "123456789".
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test func theEnvelopeRoundTripsAndRefusesDamage() throws {
        let body: [UInt8] = [1, 0, 4, 0, 0, 0, 9, 8, 7, 6]
        let bytes = SavedStateFile(kind: .host, body: body).encode()
        #expect(bytes.count == SavedStateFile.headerSize + body.count)
        #expect(Array(bytes[0..<8]) == Array("VMBSTATE".utf8))
        #expect(try SavedStateFile.decode(bytes[...], expecting: .host).body == body)
        func refused(_ damaged: [UInt8], kind: SavedStateFile.Kind = .host) -> String {
            do {
                _ = try SavedStateFile.decode(damaged[...], expecting: kind)
                return ""
            } catch { return error.description }
        }
        for length in 0..<bytes.count { #expect(!refused(Array(bytes[..<length])).isEmpty) }
        #expect(refused(bytes + [0]).contains("padded"))
        #expect(refused(bytes, kind: .guest).contains("kind"))
        var flipped = bytes
        flipped[bytes.count - 1] ^= 1
        #expect(refused(flipped).contains("checksum"))
        var newer = bytes
        newer[8] = 2
        #expect(refused(newer).contains("format version 2"))
        var magic = bytes
        magic[0] = 0
        #expect(refused(magic).contains("magic"))
    }

    @Test func recordsRoundTripAndUnknownTagsAreSkipped() throws {
        var w = StateWriter()
        w.write(1, UInt32(0xDEAD_BEEF))
        w.write(2, UInt64.max)
        w.write(3, true)
        w.write(4, text: "naïve")
        w.write(99, bytes: [1, 2, 3])  // a tag from a newer writer
        w.nested(5) { inner in
            inner.write(1, UInt16(7))
            inner.write(1, UInt16(8))
        }
        let r = try StateReader(w.bytes[...])
        #expect(try r.uint32(1) == 0xDEAD_BEEF)
        #expect(try r.uint64(2) == .max)
        #expect(try r.bool(3))
        #expect(try r.text(4) == "naïve")
        let inner = try r.nested(5)
        #expect(inner.values(1).count == 2)
        #expect(throws: SavedStateError.self) { try inner.uint16(1) }
        #expect(throws: SavedStateError.self) { try r.uint16(1) }
        #expect(throws: SavedStateError.self) { try r.uint32(42) }
        #expect(try r.optionalUInt32(42) == nil)
        #expect(throws: SavedStateError.self) { try StateReader(w.bytes.dropLast()) }
    }

    @Test func hostileNestingIsBounded() throws {
        var bytes: [UInt8] = []
        for _ in 0..<40 {
            var w = StateWriter()
            w.write(1, bytes: bytes)
            bytes = w.bytes
        }
        var reader = try StateReader(bytes[...])
        var depth = 0
        while let next = try? reader.nested(1) {
            reader = next
            depth += 1
        }
        #expect(depth == StateReader.maximumDepth)
    }
}
