/// Time-sync flags (06 §5.3): values, not bits.
public struct TimeSyncFlags: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Nothing to do; just answer.
    public static let probe = Self(rawValue: 0)
    /// Set the guest clock now.
    public static let sync = Self(rawValue: 1)
    /// A periodic sample for clock discipline.
    public static let sample = Self(rawValue: 2)
}

/// Windows FILETIME: 100 ns units since 1601-01-01 UTC, no leap seconds (06 §5).
public enum FileTime {
    /// `WLTIMEDELTA`: FILETIME of the Unix epoch.
    public static let unixEpoch: UInt64 = 116_444_736_000_000_000

    /// Nanoseconds since the Unix epoch for a FILETIME (negative before 1970), saturating at
    /// the limits of `Int64` (about ±292 years around 1970) instead of trapping.
    public static func unixNanoseconds(_ fileTime: UInt64) -> Int64 {
        // The wrapping difference read as signed is exact for every FILETIME within 2^63 ticks
        // of 1970; only the × 100 can overflow.
        let delta = Int64(truncatingIfNeeded: fileTime &- Self.unixEpoch)
        let (product, overflow) = delta.multipliedReportingOverflow(by: 100)
        return overflow ? (delta < 0 ? .min : .max) : product
    }

    /// The FILETIME of a Unix time in nanoseconds.
    public static func fromUnix(nanoseconds: Int64) -> UInt64 {
        // |nanoseconds / 100| < 9.3e16 < unixEpoch (1.16e17): the sum is always positive.
        UInt64(Int64(Self.unixEpoch) + nanoseconds / 100)
    }
}

/// The time-sync body for service versions below 4.0 (06 §5.1). Linux declares 25 bytes;
/// Windows and OpenVMM send 28.
public struct TimeSyncMessageV3: Hashable, Sendable {
    public static let minimumSize = 25
    public static let wireSize = 28

    /// Host wall clock, FILETIME.
    public var parentTime: UInt64
    /// Unused.
    public var childTime: UInt64
    /// Host-measured round trip.
    public var roundTripTime: UInt64
    public var flags: TimeSyncFlags

    public init(parentTime: UInt64, childTime: UInt64 = 0, roundTripTime: UInt64 = 0, flags: TimeSyncFlags) {
        self.parentTime = parentTime
        self.childTime = childTime
        self.roundTripTime = roundTripTime
        self.flags = flags
    }

    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.minimumSize)
        self.parentTime = try reader.readUInt64()
        self.childTime = try reader.readUInt64()
        self.roundTripTime = try reader.readUInt64()
        self.flags = TimeSyncFlags(rawValue: try reader.readUInt8())
    }

    public func write(to writer: inout WireWriter) {
        writer.writeUInt64(self.parentTime)
        writer.writeUInt64(self.childTime)
        writer.writeUInt64(self.roundTripTime)
        writer.writeUInt8(self.flags.rawValue)
        writer.writeZeros(3)
    }
}

/// The time-sync body for service version 4.0, `ictimesync_ref_data` (06 §5.2). Linux
/// requires 22 bytes; Windows and OpenVMM send 24.
public struct TimeSyncMessageV4: Hashable, Sendable {
    public static let minimumSize = 22
    public static let wireSize = 24

    /// Host wall clock, FILETIME.
    public var parentTime: UInt64
    /// The guest's reference counter (100 ns) when `parentTime` was sampled.
    public var vmReferenceTime: UInt64
    public var flags: TimeSyncFlags
    /// NTP leap indicator.
    public var leapIndicator: UInt8
    /// NTP stratum.
    public var stratum: UInt8

    public init(parentTime: UInt64, vmReferenceTime: UInt64, flags: TimeSyncFlags, leapIndicator: UInt8 = 0, stratum: UInt8 = 0) {
        self.parentTime = parentTime
        self.vmReferenceTime = vmReferenceTime
        self.flags = flags
        self.leapIndicator = leapIndicator
        self.stratum = stratum
    }

    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.minimumSize)
        self.parentTime = try reader.readUInt64()
        self.vmReferenceTime = try reader.readUInt64()
        self.flags = TimeSyncFlags(rawValue: try reader.readUInt8())
        self.leapIndicator = try reader.readUInt8()
        self.stratum = try reader.readUInt8()
    }

    public func write(to writer: inout WireWriter) {
        writer.writeUInt64(self.parentTime)
        writer.writeUInt64(self.vmReferenceTime)
        writer.writeUInt8(self.flags.rawValue)
        writer.writeUInt8(self.leapIndicator)
        writer.writeUInt8(self.stratum)
        writer.writeZeros(5)
    }

    /// The host's time now, by Linux's estimate (06 §5.4): `parentTime` advanced by the
    /// reference-counter ticks since it was sampled.
    public func hostTime(referenceNow: UInt64) -> UInt64 {
        self.parentTime &+ (referenceNow &- self.vmReferenceTime)
    }
}

/// The time-sync service version that selects the v4 body.
extension ICVersion {
    public static let timeSyncV4 = ICVersion(4, 0)
}
