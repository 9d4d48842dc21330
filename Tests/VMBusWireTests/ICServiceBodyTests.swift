import Testing
import VMBusWire

/// Parses `bytes` with `parse`, returning the value and how many bytes were read.
func icParse<T>(_ bytes: [UInt8], _ parse: (inout WireReader) throws(WireError) -> T) throws(WireError) -> (T, Int) {
    var reader = WireReader(bytes)
    let value = try parse(&reader)
    return (value, reader.consumed)
}

@Suite struct HeartbeatTests {
    @Test func theTailIsReadOnlyWhenAllOfItIsThere() throws {
        let seq: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
        let (twelve, read12) = try icParse(seq + [1, 0, 0, 0]) { (r: inout WireReader) throws(WireError) in
            try HeartbeatMessage(from: &r)
        }
        #expect(twelve.applicationState == nil && read12 == 8)
        // Linux's 40-byte declaration: the state is its first reserved word.
        let (linux, read40) = try icParse(seq + [2, 0, 0, 0] + [UInt8](repeating: 0, count: 28)) {
            (r: inout WireReader) throws(WireError) in try HeartbeatMessage(from: &r)
        }
        #expect(linux.applicationState == .critical && linux.sequenceNumber == 0x0807_0605_0403_0201 && read40 == 16)
    }

    @Test func theAnswerAddsOneAndWraps() {
        #expect(HeartbeatMessage(sequenceNumber: 41).answered.sequenceNumber == 42)
        let last = HeartbeatMessage(sequenceNumber: .max, applicationState: nil)
        #expect(last.answered == HeartbeatMessage(sequenceNumber: 0, applicationState: nil))
    }
}

@Suite struct ShutdownTests {
    @Test func linuxActsOnTheWholeFlagsValue() {
        let actions: [ShutdownMessage.Action] = [.powerOff, .powerOff, .reboot, .reboot, .hibernate, .hibernate,
                                                 .unsupported, .unsupported]
        for (value, action) in actions.enumerated() {
            #expect(ShutdownMessage(flags: ShutdownFlags(rawValue: UInt32(value))).linuxAction == action, "flags \(value)")
        }
        #expect(ShutdownMessage(flags: ShutdownFlags(rawValue: 0x100)).linuxAction == .unsupported)
        #expect(ShutdownMessage(flags: []).reasonCode == ShutdownMessage.reasonPlanned)
    }

    @Test func theDisplayMessageIsUTF16UpToItsNUL() throws {
        let message = ShutdownMessage(flags: .force, displayMessage: "Neustart in 5′ — 再起動")
        var writer = WireWriter()
        try message.write(to: &writer)
        #expect(Array(writer.bytes[12..<16]) == [0x4E, 0, 0x65, 0])  // "Ne"
        // The longest message that fits: 1023 units and the NUL.
        let longest = ShutdownMessage(flags: [], displayMessage: String(repeating: "é", count: 1023))
        var longWriter = WireWriter()
        try longest.write(to: &longWriter)
        var reader = WireReader(longWriter.bytes)
        #expect(try ShutdownMessage(from: &reader) == longest)
    }
}

@Suite struct TimeSyncTests {
    @Test func fileTimeConvertsWithWLTIMEDELTA() {
        #expect(FileTime.unixEpoch == 116_444_736_000_000_000)
        #expect(FileTime.unixTicks(FileTime.unixEpoch) == 0)
        #expect(FileTime.unixTicks(0) == -116_444_736_000_000_000)
        #expect(FileTime.unixTicks(.max) == .max)
        #expect(FileTime.unixNanoseconds(FileTime.unixEpoch + 10_000_000) == 1_000_000_000)
        #expect(FileTime.unixNanoseconds(FileTime.unixEpoch - 1) == -100)
        #expect(FileTime.unixNanoseconds(.max) == .max)
        // 2024-01-01 00:00:00 UTC = 1 704 067 200 s.
        let newYear = FileTime.unixEpoch + 1_704_067_200 * 10_000_000 + 1234
        #expect(FileTime.unixTime(newYear) == (1_704_067_200, 123_400))
        // Before 1970 the nanoseconds stay positive, as in a timespec.
        #expect(FileTime.unixTime(FileTime.unixEpoch - 1) == (-1, 999_999_900))
        #expect(FileTime.fromUnix(ticks: 5) == FileTime.unixEpoch + 5)
        #expect(FileTime.fromUnix(ticks: .min) == 0)
        #expect(FileTime.fromUnix(ticks: .max) == FileTime.unixEpoch + UInt64(Int64.max))
        #expect(FileTime.fromUnix(nanoseconds: 199) == FileTime.unixEpoch + 1)
        for fileTime: UInt64 in [0, 1, FileTime.unixEpoch, newYear, 0x7FFF_FFFF_FFFF_FFFF] {
            #expect(FileTime.fromUnix(ticks: FileTime.unixTicks(fileTime)) == fileTime)
        }
    }

    @Test func theV4BodyConsumesLinuxsTwentyTwoBytes() throws {
        let v4 = TimeSyncMessageV4(parentTime: 1, vmReferenceTime: 2, flags: .sync, leapIndicator: 3, stratum: 4)
        var writer = WireWriter()
        v4.write(to: &writer)
        #expect(Array(writer.bytes[16..<24]) == [1, 3, 4, 0, 0, 0, 0, 0])
        let (parsed, read) = try icParse(writer.bytes) { (r: inout WireReader) throws(WireError) in
            try TimeSyncMessageV4(from: &r)
        }
        #expect(parsed == v4 && read == 22)
        // The host time estimate wraps instead of trapping on a counter that went backwards.
        #expect(v4.hostTime(referenceNow: 1) == 0)
        #expect(TimeSyncMessageV4(parentTime: 100, vmReferenceTime: 50, flags: .probe).hostTime(referenceNow: 80) == 130)
    }

    @Test func unknownFlagValuesSurvive() throws {
        var writer = WireWriter()
        TimeSyncMessageV3(parentTime: 7, flags: TimeSyncFlags(rawValue: 0xFE)).write(to: &writer)
        #expect(writer.bytes.count == 28 && writer.bytes[24] == 0xFE)
        let (parsed, _) = try icParse(writer.bytes) { (r: inout WireReader) throws(WireError) in
            try TimeSyncMessageV3(from: &r)
        }
        #expect(parsed.flags.rawValue == 0xFE && parsed.parentTime == 7)
    }
}

@Suite struct VSSTests {
    @Test func everyOperationRoundTripsAndReservedBytesAreIgnored() throws {
        for raw in UInt8(0)...9 {
            var writer = WireWriter()
            VSSMessage(operation: VSSOperation(rawValue: raw), flags: UInt32(raw) * 3).write(to: &writer)
            var bytes = writer.bytes
            bytes.replaceSubrange(1..<8, with: [UInt8](repeating: 0xCC, count: 7))
            let (parsed, read) = try icParse(bytes + [0xFF]) { (r: inout WireReader) throws(WireError) in
                try VSSMessage(from: &r)
            }
            #expect(parsed == VSSMessage(operation: VSSOperation(rawValue: raw), flags: UInt32(raw) * 3) && read == 12)
        }
        #expect(VSSOperation.queryGuestClusterInformation.rawValue == 8 && VSSOperation.freeze.rawValue == 5)
    }
}

@Suite struct FCopyTests {
    @Test func writeCarriesExactlySizeBytesOfItsField() throws {
        var writer = WireWriter()
        try FileCopyMessage(operation: .writeToFile, content: .write(offset: 10, data: [1, 2, 3])).write(to: &writer)
        var bytes = writer.bytes
        bytes[55] = 0x99  // beyond `size`: not data
        let (parsed, read) = try icParse(bytes) { (r: inout WireReader) throws(WireError) in try FileCopyMessage(from: &r) }
        #expect(parsed.content == .write(offset: 10, data: [1, 2, 3]) && read == 6196)
    }

    @Test func unknownOperationsAndFlagsSurvive() throws {
        let unknown = FileCopyMessage(operation: FileCopyOperation(rawValue: 0x1234), serviceID0: GUID.vsockService(port: 3),
                                      content: .unknown([9, 8, 7]))
        var writer = WireWriter()
        try unknown.write(to: &writer)
        #expect(writer.bytes.count == 39)
        let (parsed, _) = try icParse(writer.bytes) { (r: inout WireReader) throws(WireError) in try FileCopyMessage(from: &r) }
        #expect(parsed == unknown)
        // The longest names that fit: 259 units and the NUL.
        let name = String(repeating: "n", count: 259)
        let start = FileCopyMessage(operation: .startFileCopy, content: .start(
            fileName: name, pathName: name, flags: FileCopyFlags(rawValue: 0xFFFF_FFFF), fileSize: .max))
        var startWriter = WireWriter()
        try start.write(to: &startWriter)
        let (parsedStart, _) = try icParse(startWriter.bytes) { (r: inout WireReader) throws(WireError) in
            try FileCopyMessage(from: &r)
        }
        #expect(parsedStart == start)
    }

    @Test func linuxDaemonNamesAreEightBit() {
        #expect(FileCopyMessage.linuxDaemonName("résumé.txt") == "rXsumX.txt")
        #expect(FileCopyMessage.linuxDaemonName("𝄞") == "XX")
    }
}
