import Glibc

/// Nanoseconds since the Unix epoch.
public typealias Nanos = Int64

func nowNanos() -> Nanos {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// Owner, group and permission bits of a guest or drive directory (from mkdir, chmod, chown).
public struct Ownership: Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32
    /// Permission bits only (0o7777).
    public var mode: UInt32
    public init(uid: UInt32, gid: UInt32, mode: UInt32) { self.uid = uid; self.gid = gid; self.mode = mode & 0o7777 }
}

/// A virtual machine whose drives vmediafs manages.
public struct GuestRecord: Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var owner: Ownership
    public var created: Nanos
    public var changed: Nanos
    /// iSCSI initiator names allowed to log in (none: nobody may).
    public var initiators: [String] = []
    /// CHAP "user:secret" required at login; empty: no CHAP.
    public var chap: String = ""
}

/// What is loaded in a drive.
public struct LoadedMedia: Sendable, Equatable {
    public var path: String
    public var kind: MediaKind
    public var identity: ImageIdentity
    public var loadedBy: UInt32
    public var loadedAt: Nanos
}

/// A virtual optical drive of a guest. Its `lun` is chosen at creation and kept for life.
public struct DriveRecord: Sendable, Equatable {
    public var id: Int64
    public var guestID: Int64
    public var name: String
    public var lun: Int
    public var owner: Ownership
    public var created: Nanos
    public var changed: Nanos
    public var loaded: LoadedMedia?
    public var lastError: String
}

/// One line of the history: who did what, when.
public struct HistoryEvent: Sendable, Equatable {
    public var time: Nanos
    public var kind: String
    public var guest: String
    public var drive: String
    public var uid: UInt32
    public var detail: String
}
