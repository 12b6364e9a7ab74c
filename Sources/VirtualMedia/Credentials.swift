import CPosixShims
import Glibc

/// The user a request acts for: the caller's ids, not the daemon's.
public struct Credentials: Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32
    public var groups: [UInt32]
    public init(uid: UInt32, gid: UInt32, groups: [UInt32] = []) { self.uid = uid; self.gid = gid; self.groups = groups }

    public static var daemon: Credentials { Credentials(uid: geteuid(), gid: getegid()) }

    /// Runs `body` on this thread with the file-system identity of this user, so that the
    /// kernel checks opens and path walks exactly as it would for the user (mode bits,
    /// ACLs, search permission on every directory). Only the calling thread changes.
    /// Without root, or for root callers, `body` runs as the daemon.
    public func asFileUser<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        guard geteuid() == 0, uid != 0 else { return try body() }
        let savedCount = getgroups(0, nil)
        var saved = [gid_t](repeating: 0, count: Int(max(0, savedCount)))
        _ = getgroups(savedCount, &saved)
        var list = groups.isEmpty ? [gid] : groups
        _ = vmfs_thread_setfsgid(gid)
        _ = vmfs_thread_setgroups(list.count, &list)
        _ = vmfs_thread_setfsuid(uid)
        defer {
            _ = vmfs_thread_setfsuid(geteuid())
            _ = vmfs_thread_setgroups(saved.count, &saved)
            _ = vmfs_thread_setfsgid(getegid())
        }
        return try body()
    }
}
