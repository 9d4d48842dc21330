import Synchronization
import VMBusChannel
import VMBusHost
import VMBusWire

/// Answers KVP's IP operations (06 §6.2) for a guest: the network configuration is the
/// system's business, so it is pluggable.
public protocol KVPIPHandler: Sendable {
    /// The configuration of the adapter with this MAC address text, or `nil` if unknown.
    func ipInfo(adapter: String) -> KVPIPInfo?
    /// Applies a configuration to the adapter with this GUID text; `false` if unknown.
    func setIPInfo(_ info: KVPIPInfo) -> Bool
    /// The binary form (KVP 5.0, OpenVMM's layout); by default unknown.
    func binaryIPInfo(adapter: String) -> KVPIPInfoBinary?
    /// Applies a binary-form configuration; by default the adapter is unknown.
    func setBinaryIPInfo(_ info: KVPIPInfoBinary) -> Bool
}

extension KVPIPHandler {
    public func binaryIPInfo(adapter: String) -> KVPIPInfoBinary? { nil }
    public func setBinaryIPInfo(_ info: KVPIPInfoBinary) -> Bool { false }
}

/// The guest side of KVP (06 §6): pools in a ``KVPStore``, the AUTO pool from the system's facts
/// (``KVPAutoPool``, what Linux's `hv_kvp_daemon` reports), IP operations through a
/// ``KVPIPHandler``. Answers overwrite the request body in
/// place; the response is as long as the request.
public final class KVPGuest: ICGuestService {
    public let name = "hv_kvp"
    public var classID: GUID { DeviceClass.kvp.classID }
    /// Linux's 4.0, 3.0, 1.0 by default; add 5.0 first to speak the binary IP form too.
    public let serviceVersions: [ICVersion]
    public let maximumPacketLength = 16384
    /// The pools the host's requests read and change.
    public let store: KVPStore
    let ipHandler: (any KVPIPHandler)?
    /// Pool AUTO: the fixed index → key table and its facts (06 §6.3).
    public let autoPool: KVPAutoPool

    /// - Parameters:
    ///   - store: pools 0, 1, 3 and 4.
    ///   - ipHandler: answers the IP operations; without one every adapter is unknown.
    ///   - serviceVersions: the KVP versions offered, preferred first.
    ///   - autoPool: the facts pool AUTO reports; by default this machine's.
    public init(
        store: KVPStore = KVPStore(), ipHandler: (any KVPIPHandler)? = nil, serviceVersions: [ICVersion] = ICVersions.linuxKVP,
        autoPool: KVPAutoPool = .system()
    ) {
        self.serviceVersions = serviceVersions
        self.store = store
        self.ipHandler = ipHandler
        self.autoPool = autoPool
    }

    public func answer(_ message: inout ICMessage, version: ICVersion) -> ICDisposition {
        // An unknown message type gets no answer at all, as Linux's KVP does.
        guard message.header.messageType == .kvpExchange else { return .drop }
        var reader = WireReader(message.remainder)
        guard let request = try? KVPMessage(from: &reader, serviceVersion: version) else { return .drop }
        let (status, content) = self.serve(request)
        if let content {
            var writer = WireWriter(capacity: message.remainder.count)
            guard (try? KVPMessage(operation: request.operation, pool: request.pool, content: content).write(to: &writer)) != nil,
                writer.count <= message.remainder.count
            else { return .reply(.fail) }
            var bytes = Array(message.remainder)
            bytes.replaceSubrange(0..<writer.count, with: writer.bytes)
            message.remainder = bytes[...]
        }
        return .reply(status)
    }

    /// The status, and the content to write back (nil: leave the body as it came).
    func serve(_ request: KVPMessage) -> (ICStatus, KVPMessage.Content?) {
        let pool = request.pool.rawValue
        switch (request.operation, request.content) {
        case (.get, .record(let record)):
            guard let value = try? self.store.get(pool: pool, key: record.key) else { return (.noMoreItems, nil) }
            return (.ok, .record(KVPRecord(key: record.key, value: .string(value))))
        case (.set, .record(let record)):
            let text: String
            switch record.value {
            case .string(let s): text = s
            case .dword(let n): text = "\(n)"
            case .linuxU64(let n): text = "\(n)"
            // Other types are stored as an empty value, as Linux's daemon does.
            case .expandString, .qword, .raw: text = ""
            }
            return ((try? self.store.set(pool: pool, key: record.key, value: text)) != nil ? .ok : .noMoreItems, nil)
        case (.delete, .delete(let key)):
            return ((try? self.store.delete(pool: pool, key: key)) != nil ? .ok : .noMoreItems, nil)
        case (.enumerate, .enumerate(let index, _)):
            let entry: (key: String, value: String)?
            if request.pool == .auto {
                entry = Int(exactly: index).flatMap { self.autoPool.entry(at: $0) }
            } else {
                entry = try? self.store.entry(pool: pool, index: Int(index))
            }
            guard let entry else { return (.noMoreItems, nil) }
            return (.ok, .enumerate(index: index, KVPRecord(key: entry.key, value: .string(entry.value))))
        case (.getIPInfo, .ipInfo(let info)):
            guard let answer = self.ipHandler?.ipInfo(adapter: info.adapterID) else { return (.fail, nil) }
            return (.ok, .ipInfo(answer))
        case (.setIPInfo, .ipInfo(let info)):
            return (self.ipHandler?.setIPInfo(info) == true ? .ok : .guidNotFound, nil)
        case (.getIPInfo, .binaryIPInfo(let info)):
            guard let answer = self.ipHandler?.binaryIPInfo(adapter: info.adapterID) else { return (.fail, nil) }
            return (.ok, .binaryIPInfo(answer))
        case (.setIPInfo, .binaryIPInfo(let info)):
            return (self.ipHandler?.setBinaryIPInfo(info) == true ? .ok : .guidNotFound, nil)
        default:
            return (.fail, nil)
        }
    }
}

/// The host side of KVP: get, set, delete and enumerate a guest's pools.
public final class KVPHost: Sendable {
    /// The integration-service device to register on the host bus.
    public let device: ICHostDevice
    /// OpenVMM's fixed buffer for value operations: 2 + 2578 bytes.
    static let valueBufferSize = 2580

    /// - Parameter instance: the offer's instance GUID; by default the class GUID.
    /// - Parameter versions: the KVP versions offered, in order (Windows' by default).
    /// - Parameter timeout: how long one request waits for the guest's answer.
    public init(instance: GUID = DeviceClass.kvp.classID, versions: [ICVersion] = ICVersions.windowsKVP, timeout: Duration = .seconds(35)) {
        self.device = ICHostDevice(classID: DeviceClass.kvp.classID, instance: instance, serviceVersions: versions, timeout: timeout)
    }

    func send(_ request: KVPMessage) async throws(ICError) -> (status: ICStatus, body: KVPMessage?) {
        var writer = WireWriter(capacity: Self.valueBufferSize)
        do { try request.write(to: &writer) } catch { throw ICError.badResponse("cannot encode: \(error)") }
        if writer.count < Self.valueBufferSize { writer.writeZeros(Self.valueBufferSize - writer.count) }
        let answer = try await self.device.transact(.kvpExchange, body: writer.bytes)
        let version = self.device.negotiated?.service ?? ICVersion(4, 0)
        var reader = WireReader(answer.body)
        return (answer.header.status, try? KVPMessage(from: &reader, serviceVersion: version))
    }

    /// The value of `key` in `pool`, or `nil` if the guest has none.
    public func get(pool: KVPPool, key: String) async throws(ICError) -> String? {
        let (status, body) = try await self.send(KVPMessage(
            operation: .get, pool: pool, content: .record(KVPRecord(key: key, value: .string("")))))
        guard status.isSuccess else { return nil }
        guard case .record(let record)? = body?.content, case .string(let value) = record.value else {
            throw ICError.badResponse("GET answered without a string value")
        }
        return value
    }

    /// Stores `value` under `key` in `pool`; returns the guest's status.
    /// - Throws: ``ICError/badResponse(_:)`` for a key or value too long for its field.
    @discardableResult
    public func set(pool: KVPPool, key: String, value: String) async throws(ICError) -> ICStatus {
        try await self.send(KVPMessage(operation: .set, pool: pool, content: .record(KVPRecord(key: key, value: .string(value))))).status
    }

    /// Deletes `key` from `pool`; returns the guest's status.
    @discardableResult
    public func delete(pool: KVPPool, key: String) async throws(ICError) -> ICStatus {
        try await self.send(KVPMessage(operation: .delete, pool: pool, content: .delete(key: key))).status
    }

    /// The IP configuration of an adapter in the form the negotiated version uses: the string
    /// record up to KVP 4.0, the binary record from 5.0; `nil` if the guest does not know it.
    public func ipRecord(adapter mac: String) async throws(ICError) -> KVPMessage.Content? {
        let version = try await self.device.ready().service
        if version < KVPMessage.binaryIPVersion {
            return try await self.ipInfo(adapter: mac).map { .ipInfo($0) }
        }
        let request = KVPIPInfoBinary(
            counts: Array(repeating: 0, count: KVPIPInfoBinary.countCount), adapterID: mac, addressFamily: .both,
            dhcpEnabled: 0, areas: KVPIPInfoBinary.areaSizes.map { [UInt8](repeating: 0, count: $0) })
        let (status, body) = try await self.sendIP(KVPMessage(operation: .getIPInfo, pool: .external, content: .binaryIPInfo(request)))
        guard status.isSuccess else { return nil }
        guard case .binaryIPInfo? = body?.content else { throw ICError.badResponse("GET_IP_INFO answered without a binary record") }
        return body?.content
    }

    /// Applies a configuration in either form (the form must suit the negotiated version).
    public func setIPRecord(_ record: KVPMessage.Content) async throws(ICError) -> ICStatus {
        try await self.sendIP(KVPMessage(operation: .setIPInfo, pool: .external, content: record)).status
    }

    /// The IP configuration of the guest adapter with this MAC address (string form, KVP ≤ 4.0);
    /// `nil` if the guest does not know the adapter.
    public func ipInfo(adapter mac: String) async throws(ICError) -> KVPIPInfo? {
        let (status, body) = try await self.sendIP(KVPMessage(
            operation: .getIPInfo, pool: .external, content: .ipInfo(KVPIPInfo(adapterID: mac, addressFamily: .both))))
        guard status.isSuccess else { return nil }
        guard case .ipInfo(let info)? = body?.content else { throw ICError.badResponse("GET_IP_INFO answered without a record") }
        return info
    }

    /// Applies an IP configuration to the guest adapter named by `info.adapterID` (its GUID);
    /// returns the guest's status (HV_GUID_NOTFOUND for an unknown adapter).
    public func setIPInfo(_ info: KVPIPInfo) async throws(ICError) -> ICStatus {
        try await self.sendIP(KVPMessage(operation: .setIPInfo, pool: .external, content: .ipInfo(info))).status
    }

    /// IP operations travel in OpenVMM's 7428-byte buffer.
    func sendIP(_ request: KVPMessage) async throws(ICError) -> (status: ICStatus, body: KVPMessage?) {
        var writer = WireWriter(capacity: KVPMessage.ipInfoBodySize)
        do { try request.write(to: &writer) } catch { throw ICError.badResponse("cannot encode: \(error)") }
        // OpenVMM's fixed 7428-byte IP buffer, for both forms.
        if writer.count < KVPMessage.ipInfoBodySize { writer.writeZeros(KVPMessage.ipInfoBodySize - writer.count) }
        let answer = try await self.device.transact(.kvpExchange, body: writer.bytes)
        let version = self.device.negotiated?.service ?? ICVersion(4, 0)
        var reader = WireReader(answer.body)
        return (answer.header.status, try? KVPMessage(from: &reader, serviceVersion: version))
    }

    /// Every entry of `pool`: indices 0, 1, 2… until the guest answers an error (06 §6.3).
    public func enumerate(pool: KVPPool, limit: Int = 1024) async throws(ICError) -> [(key: String, value: String)] {
        var entries: [(key: String, value: String)] = []
        for index in 0..<UInt32(limit) {
            let (status, body) = try await self.send(KVPMessage(
                operation: .enumerate, pool: pool, content: .enumerate(index: index, KVPRecord(key: "", value: .string("")))))
            guard status.isSuccess, case .enumerate(_, let record)? = body?.content else { break }
            if case .string(let value) = record.value { entries.append((record.key, value)) } else { entries.append((record.key, "")) }
        }
        return entries
    }
}
