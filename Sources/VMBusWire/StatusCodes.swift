/// An NTSTATUS-style status in OpenResult, GpadlCreated, ModifyChannelResponse and
/// TL connect result (04 §7). Any non-zero value is a failure.
public struct NTStatus: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Whether the status is 0 (STATUS_SUCCESS); any other value is a failure.
    public var isSuccess: Bool { self.rawValue == 0 }

    /// 0: success.
    public static let success = NTStatus(rawValue: 0)
    /// 0xC0000001 STATUS_UNSUCCESSFUL.
    public static let unsuccessful = NTStatus(rawValue: 0xC000_0001)
    /// 0xC000009A STATUS_INSUFFICIENT_RESOURCES.
    public static let insufficientResources = NTStatus(rawValue: 0xC000_009A)
    /// 0xC0000236 STATUS_CONNECTION_REFUSED: a TL connect with no listener.
    public static let connectionRefused = NTStatus(rawValue: 0xC000_0236)
    /// 0x8000FFFF: OpenVMM's failure value for GpadlCreated and ModifyChannelResponse
    /// (named "STATUS_UNSUCCESSFUL" in OpenVMM's constants).
    public static let openVMMFailure = NTStatus(rawValue: 0x8000_FFFF)
}

extension NTStatus: CustomStringConvertible {
    public var description: String { "0x" + hex(self.rawValue, digits: 8) }
}

/// VersionResponse `connection_state` (04 §3.14) and ModifyConnectionResponse's state.
public struct ConnectionState: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// 0: connected.
    public static let successful = ConnectionState(rawValue: 0)
    /// 1: failed for lack of resources.
    public static let failedLowResources = ConnectionState(rawValue: 1)
    /// 2: failed for an unknown reason (OpenVMM: monitor pages half given).
    public static let failedUnknown = ConnectionState(rawValue: 2)
}

/// An HRESULT-style status carried by integration-component messages (06 §1.5).
public struct ICStatus: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Whether the status is 0 (S_OK); any other value is a failure.
    public var isSuccess: Bool { self.rawValue == 0 }

    /// HV_S_OK.
    public static let ok = ICStatus(rawValue: 0)
    /// HV_E_FAIL: generic failure.
    public static let fail = ICStatus(rawValue: 0x8000_4005)
    /// HV_S_CONT (OpenVMM NO_MORE_ITEMS): KVP enumeration ended, key not found, set failed.
    public static let noMoreItems = ICStatus(rawValue: 0x8007_0103)
    /// HV_ERROR_NOT_SUPPORTED.
    public static let notSupported = ICStatus(rawValue: 0x8007_0032)
    /// HV_ERROR_MACHINE_LOCKED.
    public static let machineLocked = ICStatus(rawValue: 0x8007_04F7)
    /// HV_ERROR_DEVICE_NOT_CONNECTED.
    public static let deviceNotConnected = ICStatus(rawValue: 0x8007_048F)
    /// HV_INVALIDARG.
    public static let invalidArgument = ICStatus(rawValue: 0x8007_0057)
    /// HV_GUID_NOTFOUND: KVP set-IP-info for an unknown adapter.
    public static let guidNotFound = ICStatus(rawValue: 0x8004_1002)
    /// HV_ERROR_ALREADY_EXISTS: fcopy target exists and overwrite was not requested.
    public static let alreadyExists = ICStatus(rawValue: 0x8007_0050)
    /// HV_ERROR_DISK_FULL: fcopy ran out of space.
    public static let diskFull = ICStatus(rawValue: 0x8007_0070)
}

extension ICStatus: CustomStringConvertible {
    public var description: String { "0x" + hex(self.rawValue, digits: 8) }
}
