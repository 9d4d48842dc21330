/// Time-sync flags (06 §5.3). An open set of *values*, not bits: Linux compares the whole byte.
public struct TimeSyncFlags: RawRepresentable, Hashable, Sendable {
    /// The flags byte (v4 body offset 16, older bodies offset 24).
    public var rawValue: UInt8
    /// Wraps any wire value, named or not.
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// 0 ICTIMESYNCFLAG_PROBE: nothing to do; just answer.
    public static let probe = Self(rawValue: 0)
    /// 1 ICTIMESYNCFLAG_SYNC: set the guest clock now.
    public static let sync = Self(rawValue: 1)
    /// 2 ICTIMESYNCFLAG_SAMPLE: a periodic sample for clock discipline.
    public static let sample = Self(rawValue: 2)
}

/// Windows FILETIME: 100 ns units since 1601-01-01 00:00:00 UTC, no leap seconds (06 §5).
///
/// Every conversion is total: results that do not fit saturate instead of trapping, since the
/// FILETIME comes from the peer.
public enum FileTime {
    /// `WLTIMEDELTA`: the FILETIME of the Unix epoch.
    public static let unixEpoch: UInt64 = 116_444_736_000_000_000
    /// FILETIME ticks per second.
    public static let ticksPerSecond: UInt64 = 10_000_000

    /// 100 ns ticks since the Unix epoch (`t − WLTIMEDELTA`), negative before 1970, saturating
    /// at `Int64.max` for FILETIMEs beyond it (above Windows' own maximum 0x7FFF…).
    public static func unixTicks(_ fileTime: UInt64) -> Int64 {
        if fileTime >= Self.unixEpoch {
            return Int64(exactly: fileTime - Self.unixEpoch) ?? .max
        }
        // unixEpoch − fileTime ≤ unixEpoch < Int64.max: always exact, and so is its negation.
        return -(Int64(exactly: Self.unixEpoch - fileTime) ?? .max)
    }

    /// Nanoseconds since the Unix epoch (`(t − WLTIMEDELTA) × 100`), negative before 1970,
    /// saturating at the limits of `Int64` (about ±292 years around 1970).
    public static func unixNanoseconds(_ fileTime: UInt64) -> Int64 {
        let (product, overflow) = Self.unixTicks(fileTime).multipliedReportingOverflow(by: 100)
        guard overflow else { return product }
        return fileTime < Self.unixEpoch ? .min : .max
    }

    /// Whole seconds since the Unix epoch and the nanoseconds within that second (0–999 999 900),
    /// as a `timespec` holds them; exact for every FILETIME up to `Int64.max` ticks past 1970.
    public static func unixTime(_ fileTime: UInt64) -> (seconds: Int64, nanoseconds: Int32) {
        let ticks = Self.unixTicks(fileTime)
        let perSecond = Int64(Self.ticksPerSecond)
        var seconds = ticks / perSecond
        var remainder = ticks % perSecond
        if remainder < 0 {
            // Floor division, so the nanoseconds are never negative (as in a timespec).
            seconds -= 1
            remainder += perSecond
        }
        // remainder < 10^7, × 100 < 10^9: fits an Int32.
        return (seconds, Int32(remainder * 100))
    }

    /// The FILETIME of a Unix time in nanoseconds (truncated to 100 ns). Every `Int64` maps to
    /// a valid FILETIME: |nanoseconds / 100| < 9.3e16 < `unixEpoch` (1.16e17).
    public static func fromUnix(nanoseconds: Int64) -> UInt64 {
        UInt64(Int64(Self.unixEpoch) + nanoseconds / 100)
    }

    /// The FILETIME of a Unix time in 100 ns ticks; times before 1601 give 0, times past the
    /// end of `UInt64` give `UInt64.max`.
    public static func fromUnix(ticks: Int64) -> UInt64 {
        if ticks >= 0 {
            let (sum, overflow) = Self.unixEpoch.addingReportingOverflow(UInt64(ticks))
            return overflow ? .max : sum
        }
        return Self.unixEpoch - min(ticks.magnitude, Self.unixEpoch)
    }
}

/// The time-sync body for service versions below 4.0 (`ictimesync_data`, 06 §5.1).
///
/// Linux declares 25 bytes (no reserved tail) and requires only those; Windows and OpenVMM
/// send 28. The 3 reserved bytes are written as zeros and ignored when read.
public struct TimeSyncMessageV3: Hashable, Sendable {
    /// Bytes Linux declares and requires.
    public static let minimumSize = 25
    /// Bytes Windows and OpenVMM send, and what ``write(to:)`` produces.
    public static let wireSize = 28

    /// `parenttime`: host wall clock, FILETIME.
    public var parentTime: UInt64
    /// `childtime`: unused.
    public var childTime: UInt64
    /// `roundtriptime`: host-measured round trip.
    public var roundTripTime: UInt64
    /// What the guest should do.
    public var flags: TimeSyncFlags

    /// A body.
    public init(parentTime: UInt64, childTime: UInt64 = 0, roundTripTime: UInt64 = 0, flags: TimeSyncFlags) {
        self.parentTime = parentTime
        self.childTime = childTime
        self.roundTripTime = roundTripTime
        self.flags = flags
    }

    /// Reads the 25 bytes Linux requires; the reserved tail, if present, is left unread.
    /// - Throws: ``WireError/truncated(needed:available:)`` for fewer than 25 bytes.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.minimumSize)
        self.parentTime = try reader.readUInt64()
        self.childTime = try reader.readUInt64()
        self.roundTripTime = try reader.readUInt64()
        self.flags = TimeSyncFlags(rawValue: try reader.readUInt8())
    }

    /// Appends the 28-byte Windows form.
    public func write(to writer: inout WireWriter) {
        writer.writeUInt64(self.parentTime)
        writer.writeUInt64(self.childTime)
        writer.writeUInt64(self.roundTripTime)
        writer.writeUInt8(self.flags.rawValue)
        writer.writeZeros(Self.wireSize - Self.minimumSize)
    }
}

/// The time-sync body for service version 4.0 (`ictimesync_ref_data`, 06 §5.2).
///
/// Linux's struct is 22 bytes (3 reserved) and it requires only those; Windows and OpenVMM
/// send 24 (5 reserved). The reserved bytes are written as zeros and ignored when read.
public struct TimeSyncMessageV4: Hashable, Sendable {
    /// Bytes Linux declares and requires.
    public static let minimumSize = 22
    /// Bytes Windows and OpenVMM send, and what ``write(to:)`` produces.
    public static let wireSize = 24

    /// `parenttime`: host wall clock, FILETIME.
    public var parentTime: UInt64
    /// `vmreferencetime`: the guest's partition reference counter (100 ns) when `parentTime`
    /// was sampled.
    public var vmReferenceTime: UInt64
    /// What the guest should do.
    public var flags: TimeSyncFlags
    /// NTP leap indicator.
    public var leapIndicator: UInt8
    /// NTP stratum.
    public var stratum: UInt8

    /// A body.
    public init(
        parentTime: UInt64, vmReferenceTime: UInt64, flags: TimeSyncFlags, leapIndicator: UInt8 = 0,
        stratum: UInt8 = 0
    ) {
        self.parentTime = parentTime
        self.vmReferenceTime = vmReferenceTime
        self.flags = flags
        self.leapIndicator = leapIndicator
        self.stratum = stratum
    }

    /// Reads the 19 meaningful bytes after checking that Linux's 22 are present.
    /// - Throws: ``WireError/truncated(needed:available:)`` for fewer than 22 bytes.
    public init(from reader: inout WireReader) throws(WireError) {
        try reader.require(Self.minimumSize)
        self.parentTime = try reader.readUInt64()
        self.vmReferenceTime = try reader.readUInt64()
        self.flags = TimeSyncFlags(rawValue: try reader.readUInt8())
        self.leapIndicator = try reader.readUInt8()
        self.stratum = try reader.readUInt8()
        try reader.skip(Self.minimumSize - 19)
    }

    /// Appends the 24-byte Windows form.
    public func write(to writer: inout WireWriter) {
        writer.writeUInt64(self.parentTime)
        writer.writeUInt64(self.vmReferenceTime)
        writer.writeUInt8(self.flags.rawValue)
        writer.writeUInt8(self.leapIndicator)
        writer.writeUInt8(self.stratum)
        writer.writeZeros(Self.wireSize - 19)
    }

    /// The host's time now, by Linux's estimate (06 §5.4 step 3): `parentTime` advanced by the
    /// reference-counter ticks since it was sampled (wrapping, never trapping).
    public func hostTime(referenceNow: UInt64) -> UInt64 {
        self.parentTime &+ (referenceNow &- self.vmReferenceTime)
    }
}

extension ICVersion {
    /// The time-sync service version from which the body is ``TimeSyncMessageV4`` (06 §5.2).
    public static let timeSyncV4 = ICVersion(4, 0)
}
