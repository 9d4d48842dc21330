/// The part of an HTTP/1.x request the endpoint reads: the request line. Headers are skipped
/// (the endpoint needs none) but must end within the size limit.
struct HTTPRequestHead: Hashable, Sendable {
    var method: String
    /// The path, without any query string.
    var path: String

    /// What reading a request's head can come to.
    enum Parse: Hashable, Sendable {
        /// The head is complete.
        case complete(HTTPRequestHead)
        /// More bytes are needed (no blank line yet).
        case incomplete
        /// Not an HTTP/1.x request line.
        case malformed
    }

    /// Parses `bytes` received so far.
    static func parse(_ bytes: ArraySlice<UInt8>) -> Parse {
        guard let end = Self.headEnd(bytes) else {
            // A request line that is already wrong need not wait for the rest.
            if let lineEnd = bytes.firstIndex(of: UInt8(ascii: "\n")), Self.requestLine(bytes[bytes.startIndex..<lineEnd]) == nil {
                return .malformed
            }
            return .incomplete
        }
        // The head's end is a newline itself, so the first line always ends by then.
        let lineEnd = bytes[...end].firstIndex(of: UInt8(ascii: "\n")) ?? end
        guard let head = Self.requestLine(bytes[bytes.startIndex..<lineEnd]) else { return .malformed }
        return .complete(head)
    }

    /// Where the blank line ending the head starts, if it arrived (CRLF CRLF, or bare LFs).
    private static func headEnd(_ bytes: ArraySlice<UInt8>) -> Int? {
        var index = bytes.startIndex
        while let newline = bytes[index...].firstIndex(of: UInt8(ascii: "\n")) {
            let next = newline + 1
            if next < bytes.endIndex, bytes[next] == UInt8(ascii: "\n") { return newline }
            if next + 1 < bytes.endIndex, bytes[next] == UInt8(ascii: "\r"), bytes[next + 1] == UInt8(ascii: "\n") { return newline }
            index = next
        }
        return nil
    }

    /// `METHOD SP TARGET SP HTTP/1.x`, with or without the CR.
    private static func requestLine(_ line: ArraySlice<UInt8>) -> HTTPRequestHead? {
        var line = line
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3, let method = String(validating: parts[0], as: UTF8.self),
            let target = String(validating: parts[1], as: UTF8.self), let version = String(validating: parts[2], as: UTF8.self),
            version == "HTTP/1.1" || version == "HTTP/1.0", !method.isEmpty,
            method.utf8.allSatisfy({ (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }), target.hasPrefix("/")
        else { return nil }
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? target
        return HTTPRequestHead(method: method, path: path)
    }
}
