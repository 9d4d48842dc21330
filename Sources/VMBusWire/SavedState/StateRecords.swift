/// Saved state (docs/SAVED-STATE.md) is a tree of tagged records: `tag u16, length u32, value`,
/// little-endian, one after another. A value is a fixed-width integer, raw bytes, UTF-8 text or
/// a nested record list. The tree form lets a later version add tags that an older reader
/// skips, and lets each layer (bus, channel, device) own one subtree without knowing the others.

/// Builds a record list.
public struct StateWriter: Sendable {
    /// The encoded records so far.
    public private(set) var bytes: [UInt8] = []

    /// An empty record list.
    public init() {}

    /// Appends a record holding raw bytes.
    public mutating func write<C: Collection<UInt8>>(_ tag: UInt16, bytes value: C) {
        var header = WireWriter(capacity: 6)
        header.writeUInt16(tag)
        header.writeUInt32(UInt32(value.count))
        self.bytes += header.bytes
        self.bytes += value
    }

    /// Appends a 1-byte record.
    public mutating func write(_ tag: UInt16, _ value: UInt8) { self.write(tag, bytes: [value]) }
    /// Appends a 1-byte record: 1 for `true`, 0 for `false`.
    public mutating func write(_ tag: UInt16, _ value: Bool) { self.write(tag, bytes: [value ? 1 : 0]) }

    /// Appends a 2-byte little-endian record.
    public mutating func write(_ tag: UInt16, _ value: UInt16) {
        var w = WireWriter(capacity: 2)
        w.writeUInt16(value)
        self.write(tag, bytes: w.bytes)
    }

    /// Appends a 4-byte little-endian record.
    public mutating func write(_ tag: UInt16, _ value: UInt32) {
        var w = WireWriter(capacity: 4)
        w.writeUInt32(value)
        self.write(tag, bytes: w.bytes)
    }

    /// Appends an 8-byte little-endian record.
    public mutating func write(_ tag: UInt16, _ value: UInt64) {
        var w = WireWriter(capacity: 8)
        w.writeUInt64(value)
        self.write(tag, bytes: w.bytes)
    }

    /// Appends a 16-byte record in the GUID's wire form.
    public mutating func write(_ tag: UInt16, _ value: GUID) {
        var w = WireWriter(capacity: 16)
        w.writeGUID(value)
        self.write(tag, bytes: w.bytes)
    }

    /// Appends a record of UTF-8 text, without a terminator.
    public mutating func write(_ tag: UInt16, text: String) { self.write(tag, bytes: Array(text.utf8)) }

    /// Appends a record whose value is the record list `body` writes.
    public mutating func nested(_ tag: UInt16, _ body: (inout StateWriter) -> Void) {
        var inner = StateWriter()
        body(&inner)
        self.write(tag, bytes: inner.bytes)
    }
}

/// Why saved state was refused. A state file may come from an older or newer program, or be
/// cut short or corrupted in transit: every reader path throws one of these, never traps.
public struct SavedStateError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    /// An error saying why, for logs and the person reading them.
    public init(_ description: String) { self.description = description }
}

/// Reads a record list: every record's bounds are checked once, up front; then values are
/// looked up by tag. Tags the reader does not ask for are ignored (they come from a newer
/// writer); a single-valued tag that appears twice is refused.
public struct StateReader: Sendable {
    /// The records, in file order.
    public let records: [(tag: UInt16, value: ArraySlice<UInt8>)]
    /// How deep this list sits in the tree (bounded, so hostile nesting cannot exhaust the stack).
    let depth: Int

    /// Deepest nesting accepted.
    public static let maximumDepth = 16

    /// Splits `bytes` into records.
    /// - Throws: ``SavedStateError`` when a record's length runs past the end.
    public init(_ bytes: ArraySlice<UInt8>) throws(SavedStateError) {
        try self.init(bytes, depth: 0)
    }

    init(_ bytes: ArraySlice<UInt8>, depth: Int) throws(SavedStateError) {
        guard depth <= Self.maximumDepth else { throw SavedStateError("records nested deeper than \(Self.maximumDepth)") }
        var reader = WireReader(bytes)
        var records: [(tag: UInt16, value: ArraySlice<UInt8>)] = []
        do throws(WireError) {
            while reader.remaining > 0 {
                let tag = try reader.readUInt16()
                let length = Int(try reader.readUInt32())
                records.append((tag, try reader.readBytes(length)))
            }
        } catch {
            throw SavedStateError("a record is cut short (\(error))")
        }
        self.records = records
        self.depth = depth
    }

    /// Every value with this tag, in order.
    public func values(_ tag: UInt16) -> [ArraySlice<UInt8>] { self.records.filter { $0.tag == tag }.map(\.value) }

    /// The one value with this tag, or `nil`; a second one is an error.
    public func optionalBytes(_ tag: UInt16) throws(SavedStateError) -> ArraySlice<UInt8>? {
        let found = self.values(tag)
        guard found.count <= 1 else { throw SavedStateError("tag \(tag) appears \(found.count) times") }
        return found.first
    }

    /// The one value with this tag.
    public func bytes(_ tag: UInt16) throws(SavedStateError) -> ArraySlice<UInt8> {
        guard let value = try self.optionalBytes(tag) else { throw SavedStateError("tag \(tag) is missing") }
        return value
    }

    func integer(_ tag: UInt16, width: Int) throws(SavedStateError) -> UInt64? {
        guard let value = try self.optionalBytes(tag) else { return nil }
        guard value.count == width else { throw SavedStateError("tag \(tag) is \(value.count) bytes, not \(width)") }
        return value.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// The 1-byte value with this tag, or `nil`.
    /// - Throws: ``SavedStateError`` for another width or a repeated tag.
    public func optionalUInt8(_ tag: UInt16) throws(SavedStateError) -> UInt8? { try self.integer(tag, width: 1).map { UInt8($0) } }
    /// The 2-byte value with this tag, or `nil`.
    /// - Throws: ``SavedStateError`` for another width or a repeated tag.
    public func optionalUInt16(_ tag: UInt16) throws(SavedStateError) -> UInt16? { try self.integer(tag, width: 2).map { UInt16($0) } }
    /// The 4-byte value with this tag, or `nil`.
    /// - Throws: ``SavedStateError`` for another width or a repeated tag.
    public func optionalUInt32(_ tag: UInt16) throws(SavedStateError) -> UInt32? { try self.integer(tag, width: 4).map { UInt32($0) } }
    /// The 8-byte value with this tag, or `nil`.
    /// - Throws: ``SavedStateError`` for another width or a repeated tag.
    public func optionalUInt64(_ tag: UInt16) throws(SavedStateError) -> UInt64? { try self.integer(tag, width: 8) }

    /// The 1-byte value with this tag.
    /// - Throws: ``SavedStateError`` when missing, repeated or of another width.
    public func uint8(_ tag: UInt16) throws(SavedStateError) -> UInt8 { try Self.required(tag, self.optionalUInt8(tag)) }
    /// The 2-byte value with this tag.
    /// - Throws: ``SavedStateError`` when missing, repeated or of another width.
    public func uint16(_ tag: UInt16) throws(SavedStateError) -> UInt16 { try Self.required(tag, self.optionalUInt16(tag)) }
    /// The 4-byte value with this tag.
    /// - Throws: ``SavedStateError`` when missing, repeated or of another width.
    public func uint32(_ tag: UInt16) throws(SavedStateError) -> UInt32 { try Self.required(tag, self.optionalUInt32(tag)) }
    /// The 8-byte value with this tag.
    /// - Throws: ``SavedStateError`` when missing, repeated or of another width.
    public func uint64(_ tag: UInt16) throws(SavedStateError) -> UInt64 { try Self.required(tag, self.optionalUInt64(tag)) }

    /// The boolean with this tag (one byte, 0 or 1).
    /// - Throws: ``SavedStateError`` when missing, repeated, or not 0 or 1.
    public func bool(_ tag: UInt16) throws(SavedStateError) -> Bool {
        switch try self.uint8(tag) {
        case 0: return false
        case 1: return true
        case let other: throw SavedStateError("tag \(tag) is \(other), not a boolean")
        }
    }

    /// The GUID with this tag (16 bytes, wire form).
    /// - Throws: ``SavedStateError`` when missing, repeated or not 16 bytes.
    public func guid(_ tag: UInt16) throws(SavedStateError) -> GUID {
        let value = try self.bytes(tag)
        guard value.count == 16, let guid = try? GUID(wireBytes: value) else { throw SavedStateError("tag \(tag) is not a GUID") }
        return guid
    }

    /// The text with this tag.
    /// - Throws: ``SavedStateError`` when missing, repeated or not valid UTF-8.
    public func text(_ tag: UInt16) throws(SavedStateError) -> String {
        guard let text = String(validating: try self.bytes(tag), as: UTF8.self) else { throw SavedStateError("tag \(tag) is not UTF-8") }
        return text
    }

    /// The one nested list with this tag.
    public func nested(_ tag: UInt16) throws(SavedStateError) -> StateReader {
        try StateReader(try self.bytes(tag), depth: self.depth + 1)
    }

    /// Every nested list with this tag, in order.
    public func all(_ tag: UInt16) throws(SavedStateError) -> [StateReader] {
        var lists: [StateReader] = []
        for value in self.values(tag) { lists.append(try StateReader(value, depth: self.depth + 1)) }
        return lists
    }

    static func required<T>(_ tag: UInt16, _ value: T?) throws(SavedStateError) -> T {
        guard let value else { throw SavedStateError("tag \(tag) is missing") }
        return value
    }
}
