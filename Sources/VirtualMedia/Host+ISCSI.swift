import Glibc
import SCSI

/// The iSCSI names of things: each guest is one target.
public enum ISCSINames {
    public static let prefix = "iqn.2026-11.io.vmediafs:"
    public static func target(forGuest name: String) -> String { prefix + name }
    /// The guest a target name means (iSCSI names compare without regard to case).
    public static func guest(forTarget target: String) -> String? {
        guard target.lowercased().hasPrefix(prefix) else { return nil }
        return String(target.dropFirst(prefix.count))
    }

    /// An initiator name as iSCSI allows it (RFC 3720 3.2.6): `iqn.`, `eui.` or `naa.` forms,
    /// printable ASCII without spaces, at most 223 bytes.
    public static func isValidInitiator(_ name: String) -> Bool {
        let n = name.lowercased()
        guard n.utf8.count <= 223, n.hasPrefix("iqn.") || n.hasPrefix("eui.") || n.hasPrefix("naa.") else { return false }
        return n.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }
}

extension Host {
    /// Replaces who may log in to a guest over iSCSI: one initiator name per line (blank
    /// lines and `#` comments ignored; `ControlText.initiators`). Only the guest's owner (or
    /// root) may.
    public func setInitiators<C: Collection<UInt8>>(guestID: Int64, text: C, by user: Credentials) throws(VMError) {
        let names = try ControlText.initiators(text)
        try changeAccess(guestID: guestID, by: user, what: "initiators") { $0.initiators = names }
    }

    /// Sets the CHAP credentials a guest's initiators must present: `user:secret`, or
    /// nothing to require none (`ControlText.chap`). Only the guest's owner (or root) may.
    public func setChap<C: Collection<UInt8>>(guestID: Int64, text: C, by user: Credentials) throws(VMError) {
        let line = try ControlText.chap(text)
        try changeAccess(guestID: guestID, by: user, what: "chap") { $0.chap = line }
    }

    private func changeAccess(guestID: Int64, by user: Credentials, what: String,
                              _ change: (inout GuestRecord) -> Void) throws(VMError) {
        let name = try state.withLock { (st: inout HostState) throws(VMError) -> String in
            guard var g = st.guests[guestID] else { throw VMError(ENOENT, "no such guest") }
            guard user.uid == 0 || user.uid == g.owner.uid else { throw VMError(EACCES, "only the owner of guest \(g.name) may change \(what)") }
            change(&g)
            try store.setGuestAccess(id: guestID, initiators: g.initiators, chap: g.chap,
                                     history: HistoryEvent(time: nowNanos(), kind: "access", guest: g.name, drive: "",
                                                           uid: user.uid, detail: what))
            st.guests[guestID] = g
            return g.name
        }
        events.post("access", name, [("changed", what), ("uid", String(user.uid))])
        Log.info("guest \(name): \(what) changed by uid \(user.uid)")
    }

    /// The emulator of a guest's drive at `lun`, if any, and the LUNs of all its drives in
    /// order. Every iSCSI command asks: one look at the guest's own drives, under one lock.
    public func logicalUnit(guestID: Int64, lun: Int) -> (emulator: OpticalDrive?, luns: [Int]) {
        state.withLock { st in
            var emulator: OpticalDrive?
            var luns: [Int] = []
            for id in st.driveIDsByGuest[guestID] ?? [] {
                guard let d = st.drives[id] else { continue }
                luns.append(d.lun)
                if d.lun == lun { emulator = st.runtimes[id]?.emulator }
            }
            return (emulator, luns.sorted())
        }
    }

    /// The initiators logged in to a guest's target now (shown in its drives' status).
    public func setSessions(guest name: String, initiators: [String]) {
        state.withLock { $0.sessions[name] = initiators.isEmpty ? nil : initiators }
    }
}

extension StringProtocol {
    /// The text without leading and trailing whitespace (newlines included).
    public func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
