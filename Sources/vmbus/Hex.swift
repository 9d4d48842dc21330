import ArgumentParser

/// Parses hex text into bytes. Whitespace, colons, commas and `0x` prefixes are ignored, so
/// output of `xxd -p`, `hexdump`, Wireshark and this tool itself can be pasted.
func parseHex(_ text: String) throws -> [UInt8] {
    var digits: [UInt8] = []
    var scalars = Array(text.unicodeScalars)
    var i = 0
    while i < scalars.count {
        let c = scalars[i]
        if c == "0", i + 1 < scalars.count, scalars[i + 1] == "x" || scalars[i + 1] == "X" {
            i += 2
            continue
        }
        switch c {
        case " ", "\t", "\n", "\r", ":", ",":
            break
        case "0"..."9": digits.append(UInt8(c.value - 48))
        case "a"..."f": digits.append(UInt8(c.value - 87))
        case "A"..."F": digits.append(UInt8(c.value - 55))
        default:
            throw CLIError("'\(c)' is not a hex digit")
        }
        i += 1
    }
    scalars.removeAll()
    guard digits.count % 2 == 0 else { throw CLIError("odd number of hex digits (\(digits.count))") }
    return stride(from: 0, to: digits.count, by: 2).map { digits[$0] << 4 | digits[$0 + 1] }
}

/// Two lower-case hex digits.
func hexByte(_ byte: UInt8) -> String {
    let text = String(byte, radix: 16)
    return byte < 16 ? "0" + text : text
}

/// Reads hex input: the argument itself, or standard input when it is `-`.
func readHexInput(_ argument: String) throws -> [UInt8] {
    if argument == "-" {
        var text = ""
        while let line = readLine() { text += line + "\n" }
        return try parseHex(text)
    }
    return try parseHex(argument)
}

/// A failure while running a command: printed as `Error: …` and exit status 1, without the
/// usage text (which ArgumentParser shows only for bad arguments).
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
