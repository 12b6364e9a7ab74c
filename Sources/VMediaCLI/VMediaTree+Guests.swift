import Glibc

/// One row of `lsguest`.
public struct GuestInfo: Sendable, Equatable {
    public var name: String
    public var owner: String
    public var uid: UInt32
    public var gid: UInt32
    /// Permission bits of the guest directory.
    public var mode: UInt32
    /// Number of drives; nil when the guest directory cannot be listed by the caller.
    public var drives: Int?
}

extension VMediaTree {
    /// `mkguest`: `mkdir guests/GUEST`. The guest belongs to the caller, with the mode
    /// `mkdir` gives (0777 less the umask, as for any directory).
    public func makeGuest(_ name: String) throws(VMediaError) {
        try Names.check(name, as: "guest")
        do { try io.makeDirectory(guestPath(name), mode: 0o777) } catch {
            throw VMediaError.from(error, subject: name, operation: .makeGuest)
        }
    }

    /// `rmguest`: `rmdir guests/GUEST`; the filesystem refuses with `ENOTEMPTY` while the
    /// guest has drives.
    public func removeGuest(_ name: String) throws(VMediaError) {
        try Names.check(name, as: "guest")
        do { try io.removeDirectory(guestPath(name)) } catch {
            throw VMediaError.from(error, subject: name,
                                   reason: error == .noSuchFile ? "no such guest" : nil, operation: .removeGuest)
        }
    }

    /// `lsguest`: every guest with its owner and number of drives.
    public func listGuests() throws(VMediaError) -> [GuestInfo] {
        var result: [GuestInfo] = []
        for name in try guestNames() {
            guard let info = try? io.info(guestPath(name)) else { continue }  // removed meanwhile
            let drives = try? driveNames(of: name).count
            result.append(GuestInfo(name: name, owner: UserNames.name(of: info.uid), uid: info.uid,
                                    gid: info.gid, mode: info.permissions, drives: drives))
        }
        return result
    }
}

/// User names for uids, from the system's user database.
enum UserNames {
    /// The login name, or the number when the uid has none. The corresponding C function is
    /// `getpwuid_r`.
    static func name(of uid: UInt32) -> String {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        let rc = getpwuid_r(uid_t(uid), &entry, &buffer, buffer.count, &result)
        guard rc == 0, result != nil, let name = entry.pw_name else { return String(uid) }
        return String(cString: name)
    }
}
