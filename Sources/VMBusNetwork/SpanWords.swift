/// Words of packets lent in place, read by both sides' data paths.
extension Span where Element == UInt8 {
    /// The little-endian u32 at `offset` (inside the span: checked by the caller), or with
    /// `zeroExtended` the bytes that exist and zeros past the end (a short message reads as
    /// its parser reads it).
    func littleEndianUInt32(at offset: Int, zeroExtended: Bool = false) -> UInt32 {
        var value: UInt32 = 0
        for byte in 0..<4 where !zeroExtended || offset + byte < self.count {
            value |= UInt32(self[offset + byte]) << (8 * byte)
        }
        return value
    }
}
