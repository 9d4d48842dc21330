/// Index arithmetic of 02 §2, shared by both ends.
///
/// ```
///  data area:  0 ......... r ========= w ......... D
///                          ^ read       ^ write
///  bytes to read  = w − r            (or D − r + w when w < r)
///  bytes to write = D − bytes to read (never all of it: w == r means empty)
/// ```
@usableFromInline
enum RingIndex {
    /// Checks a peer-written index: below the data size and 8-byte aligned.
    @inlinable
    static func validate(_ value: UInt32, word: String, dataSize: Int) throws(RingError) -> Int {
        let index = Int(value)
        guard index < dataSize, index & 7 == 0 else {
            throw RingError.invalidIndex(word: word, value: value, dataSize: dataSize)
        }
        return index
    }

    @inlinable
    static func bytesToRead(read: Int, write: Int, dataSize: Int) -> Int {
        write >= read ? write - read : dataSize - read + write
    }

    @inlinable
    static func bytesToWrite(read: Int, write: Int, dataSize: Int) -> Int {
        dataSize - bytesToRead(read: read, write: write, dataSize: dataSize)
    }

    /// `index + count` modulo the data size; `count` is below the data size.
    @inlinable
    static func advance(_ index: Int, by count: Int, dataSize: Int) -> Int {
        let next = index + count
        return next >= dataSize ? next - dataSize : next
    }
}
