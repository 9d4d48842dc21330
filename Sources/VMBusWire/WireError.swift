/// Why a VMBus wire structure could not be read or written.
///
/// Every parser in `VMBusWire` throws this and only this. Peer input never traps: a truncated
/// message, an unknown type, an impossible field or a length above a named limit each get their
/// own case, so callers (and tests) can tell them apart.
public enum WireError: Error, Hashable, Sendable {
    /// The input ended before the structure did.
    /// - `needed`: bytes the structure requires from the point where reading stopped;
    /// - `available`: bytes that were left.
    case truncated(needed: Int, available: Int)

    /// A type number (channel message type, packet type, IC message type…) that this parser
    /// does not know how to read.
    case unknownType(UInt32)

    /// A field holds a value the format does not allow.
    case invalidField(name: String, value: UInt64)

    /// A peer-claimed count or length is above the named limit it is checked against, before
    /// anything is allocated for it.
    case limitExceeded(name: String, value: UInt64, limit: UInt64)

    /// Bytes are left after the structure where the format forbids them.
    case trailingBytes(count: Int)

    /// The message exists but may not be used at the negotiated protocol version or without a
    /// negotiated 6.0 feature (OpenVMM's parser rejects such messages the same way).
    case notAllowed(messageType: UInt32, version: UInt32)
}

extension WireError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .truncated(let needed, let available):
            return "truncated: needed \(needed) more bytes, \(available) available"
        case .unknownType(let type):
            return "unknown type \(type)"
        case .invalidField(let name, let value):
            return "invalid \(name): \(value) (0x\(String(value, radix: 16)))"
        case .limitExceeded(let name, let value, let limit):
            return "\(name) \(value) exceeds the limit \(limit)"
        case .trailingBytes(let count):
            return "\(count) trailing bytes"
        case .notAllowed(let type, let version):
            let v = VMBusVersion(rawValue: version)
            return "message type \(type) is not allowed at protocol \(v) with the negotiated features"
        }
    }
}

extension WireError {
    /// Throws ``limitExceeded(name:value:limit:)`` unless `value ≤ limit`: the one check every
    /// peer-claimed count or length passes before anything is allocated for it.
    @inlinable
    public static func check<V: BinaryInteger, L: BinaryInteger>(_ name: String, _ value: V, limit: L)
        throws(WireError)
    {
        if value > limit {
            throw WireError.limitExceeded(name: name, value: UInt64(clamping: value), limit: UInt64(clamping: limit))
        }
    }
}
