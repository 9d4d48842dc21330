import VMBusMemory
import Foundation
import VMBusWire

/// Why a KVP store operation failed.
public enum KVPStoreError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A key longer than 512 bytes of UTF-8 (NUL included), or empty.
    case keyTooLong(Int)
    /// A value longer than 2048 bytes of UTF-8 (NUL included).
    case valueTooLong(Int)
    /// No such key.
    case notFound
    /// The pool number is not 0–4.
    case noSuchPool(UInt8)
    /// The pool file could not be written.
    case io(String)

    public var description: String {
        switch self {
        case .keyTooLong(let n): return "key of \(n) bytes (1…512 with its NUL)"
        case .valueTooLong(let n): return "value of \(n) bytes (at most 2048 with its NUL)"
        case .notFound: return "no such key"
        case .noSuchPool(let pool): return "no pool \(pool) (0–4)"
        case .io(let why): return "pool file: \(why)"
        }
    }
}

/// The guest's KVP pools 0–4 (06 §6), in memory and, with a directory, on disk.
///
/// File format — the one Linux's `hv_kvp_daemon` uses for `/var/lib/hyperv/.kvp_pool_N`, so
/// tools that read those files read these: file `.kvp_pool_N` per pool, a sequence of records
/// of 2560 bytes each, the key in UTF-8 NUL-padded to 512 bytes, then the value in UTF-8
/// NUL-padded to 2048 bytes, in insertion order. Files are replaced atomically (written to a
/// temporary file in the same directory, then renamed), so a crash leaves the old or the new
/// pool, never half of one.
public final class KVPStore: Sendable {
    /// Bytes of a key field (NUL included) and of a value field.
    public static let keySize = 512
    /// Bytes of a value field, NUL included.
    public static let valueSize = 2048
    /// Pools 0–4.
    public static let poolCount = 5

    /// Where the pool files `.kvp_pool_0`…`.kvp_pool_4` live; `nil` keeps the pools in memory only.
    public let directory: String?
    let pools: Locked<[[(key: String, value: String)]]>

    /// A store, loaded from `directory` if given (missing files are empty pools).
    public init(directory: String? = nil) {
        self.directory = directory
        var pools = Array(repeating: [(key: String, value: String)](), count: Self.poolCount)
        if let directory {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for pool in 0..<Self.poolCount { pools[pool] = Self.load(Self.path(directory, pool)) }
        }
        self.pools = Locked(pools)
    }

    static func path(_ directory: String, _ pool: Int) -> String { directory + "/.kvp_pool_\(pool)" }

    static func load(_ path: String) -> [(key: String, value: String)] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        let bytes = [UInt8](data)
        let record = Self.keySize + Self.valueSize
        var entries: [(key: String, value: String)] = []
        var offset = 0
        while offset + record <= bytes.count {
            let key = Self.text(bytes[offset..<(offset + Self.keySize)])
            let value = Self.text(bytes[(offset + Self.keySize)..<(offset + record)])
            if !key.isEmpty { entries.append((key, value)) }
            offset += record
        }
        return entries
    }

    static func text(_ field: ArraySlice<UInt8>) -> String {
        String(decoding: field.prefix { $0 != 0 }, as: UTF8.self)
    }

    static func check(_ pool: UInt8) throws(KVPStoreError) -> Int {
        guard Int(pool) < Self.poolCount else { throw KVPStoreError.noSuchPool(pool) }
        return Int(pool)
    }

    /// The value of `key` in `pool`.
    public func get(pool: UInt8, key: String) throws(KVPStoreError) -> String {
        let index = try Self.check(pool)
        guard let value = self.pools.withLock({ $0[index].first { $0.key == key }?.value }) else { throw KVPStoreError.notFound }
        return value
    }

    /// Sets `key` (replacing its value in place, or appending it) and saves the pool.
    public func set(pool: UInt8, key: String, value: String) throws(KVPStoreError) {
        let index = try Self.check(pool)
        guard !key.isEmpty, key.utf8.count + 1 <= Self.keySize else { throw KVPStoreError.keyTooLong(key.utf8.count + 1) }
        guard value.utf8.count + 1 <= Self.valueSize else { throw KVPStoreError.valueTooLong(value.utf8.count + 1) }
        let snapshot = self.pools.withLock { pools in
            if let at = pools[index].firstIndex(where: { $0.key == key }) {
                pools[index][at].value = value
            } else {
                pools[index].append((key, value))
            }
            return pools[index]
        }
        try self.save(index, snapshot)
    }

    /// Deletes `key` and saves the pool.
    public func delete(pool: UInt8, key: String) throws(KVPStoreError) {
        let index = try Self.check(pool)
        let snapshot: [(key: String, value: String)]? = self.pools.withLock { pools in
            guard let at = pools[index].firstIndex(where: { $0.key == key }) else { return nil }
            pools[index].remove(at: at)
            return pools[index]
        }
        guard let snapshot else { throw KVPStoreError.notFound }
        try self.save(index, snapshot)
    }

    /// Entry `index` of a pool, in insertion order.
    public func entry(pool: UInt8, index: Int) throws(KVPStoreError) -> (key: String, value: String) {
        let pool = try Self.check(pool)
        guard let entry = self.pools.withLock({ index < $0[pool].count ? $0[pool][index] : nil }) else {
            throw KVPStoreError.notFound
        }
        return entry
    }

    /// Every entry of a pool.
    public func entries(pool: UInt8) throws(KVPStoreError) -> [(key: String, value: String)] {
        let index = try Self.check(pool)
        return self.pools.withLock { $0[index] }
    }

    func save(_ pool: Int, _ entries: [(key: String, value: String)]) throws(KVPStoreError) {
        guard let directory = self.directory else { return }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(entries.count * (Self.keySize + Self.valueSize))
        for (key, value) in entries {
            bytes += Array(key.utf8) + [UInt8](repeating: 0, count: Self.keySize - key.utf8.count)
            bytes += Array(value.utf8) + [UInt8](repeating: 0, count: Self.valueSize - value.utf8.count)
        }
        // `.atomic` writes a temporary file beside the pool and renames it over the pool.
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: Self.path(directory, pool)), options: .atomic)
        } catch {
            throw KVPStoreError.io("\(error)")
        }
    }
}
