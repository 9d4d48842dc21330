/// Stops the fuzzer with a message: a property that must hold for every input did not.
/// (`fatalError` traps, libFuzzer sees the signal and saves the input as `crash-<sha1>`.)
public func violated(_ property: String, _ input: ArraySlice<UInt8>) -> Never {
    fatalError("\(property); input \(input.map { String($0, radix: 16) }.joined(separator: " "))")
}

/// Copies the fuzzer's buffer into an array (the parsers take ArraySlice).
public func fuzzInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> [UInt8] {
    Array(UnsafeBufferPointer(start: data, count: size))
}
