import ArgumentParser
import Testing
import VMBusWire

@testable import vmbus

@Suite struct CLITests {
    @Test func hexInputAcceptsCommonDumpFormats() throws {
        #expect(try parseHex("0x01 02:03,0A\nff") == [1, 2, 3, 10, 255])
        #expect(throws: CLIError.self) { try parseHex("abc") }
        #expect(throws: CLIError.self) { try parseHex("0g") }
    }

    @Test func versionsParseInEitherForm() {
        #expect(VersionArgument(argument: "5.3")?.version == .win10_5_3)
        #expect(VersionArgument(argument: "0x60000")?.version == .copper)
        #expect(VersionArgument(argument: "five") == nil)
    }

    @Test func decodedMessagesShowTheirFields() throws {
        let bytes = try ChannelMessage.openResult(OpenResult(childRelID: 7, openID: 8, status: .unsuccessful)).encode()
        let text = describe(try ChannelMessage.parse(bytes, version: .win8))
        #expect(text.contains("openResult"))
        #expect(text.contains("childRelID: 7") && text.contains("openID: 8"))
        #expect(text.contains("status: 0xc0000001"))
    }

    @Test func commandsParseTheirArguments() throws {
        let command = try VMBusCommand.parseAsRoot(["decode", "message", "0300000000000000", "--version", "5.3"])
        #expect(command is DecodeMessage)
        #expect(throws: (any Error).self) { try VMBusCommand.parseAsRoot(["decode", "message", "00", "--version", "x"]) }
    }
}
