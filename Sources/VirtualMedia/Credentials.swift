import CPosixShims
import Glibc

/// The user a request acts for: the caller's ids, not the daemon's.
public struct Credentials: Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32
    public var groups: [UInt32]
    /// Who acted, when it was not a local process: `redfish:NAME` for a Redfish user. Shown
    /// as `via=` in the `events` lines and the log lines of what it did.
    public var agent: String?
    public init(uid: UInt32, gid: UInt32, groups: [UInt32] = [], agent: String? = nil) {
        self.uid = uid; self.gid = gid; self.groups = groups; self.agent = agent
    }

    /// Whether this user may `mask` (R_OK, W_OK, X_OK bits) an object with `owner`, by its
    /// mode bits as the kernel decides for a directory of the tree (root may all but run
    /// what no one may run).
    public func may(_ mask: UInt32, _ owner: Ownership) -> Bool {
        if uid == 0 { return true }
        let bits: UInt32
        if uid == owner.uid { bits = (owner.mode >> 6) & 7 }
        else if gid == owner.gid || groups.contains(owner.gid) { bits = (owner.mode >> 3) & 7 }
        else { bits = owner.mode & 7 }
        return mask & 7 & ~bits == 0
    }

    /// `[("via", agent)]`, or nothing for a local caller.
    var agentField: [(String, String)] { agent.map { [("via", $0)] } ?? [] }

    public static var daemon: Credentials { Credentials(uid: geteuid(), gid: getegid()) }

    /// The user `uid` as the password and group databases know them now (primary group
    /// and supplementary groups); a uid they do not know gets the group `nogroup` (65534)
    /// and no others. Used where no request carries the caller: media restored at start is
    /// checked again as the user who loaded it.
    public static func ofUser(_ uid: UInt32) -> Credentials {
        var pw = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getpwuid_r(uid, &pw, &buffer, buffer.count, &result) == 0, result != nil, let name = pw.pw_name else {
            return Credentials(uid: uid, gid: 65534)
        }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, pw.pw_gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(name, pw.pw_gid, &groups, &count)
        }
        return Credentials(uid: uid, gid: pw.pw_gid, groups: Array(groups.prefix(Int(max(0, count)))))
    }

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
