import ISCSI
import SCSI
import VirtualMedia

/// Serves the host's guests over iSCSI: each guest is a target named
/// `iqn.2026-11.io.vmediafs:GUEST`, its drives are the target's LUNs (each drive keeps the
/// LUN it was created with), and only the initiators in the guest's `initiators` file may
/// see or log in to it, with CHAP when its `chap` file is set.
///
/// Called from the iSCSI server's event-loop and pool threads; every answer is a short
/// look-up under the host's lock.
final class ISCSIBridge: ISCSIProvider {
    let host: Host
    init(host: Host) { self.host = host }

    private func guest(_ target: String) -> GuestRecord? {
        guard let name = ISCSINames.guest(forTarget: target) else { return nil }
        if let g = host.guest(named: name) { return g }
        return host.guests().first { $0.name.lowercased() == name.lowercased() }
    }

    private func allows(_ g: GuestRecord, _ initiator: String) -> Bool {
        g.initiators.contains { $0.lowercased() == initiator.lowercased() }
    }

    func discoverableTargets(initiator: String) -> [String] {
        host.guests().filter { allows($0, initiator) }.map { ISCSINames.target(forGuest: $0.name) }
    }

    func loginPolicy(target: String, initiator: String) -> LoginPolicy? {
        guard let g = guest(target), allows(g, initiator) else { return nil }
        guard let colon = g.chap.firstIndex(of: ":") else { return .open }
        return .chap(user: String(g.chap[..<colon]), secret: String(g.chap[g.chap.index(after: colon)...]))
    }

    func unit(_ lun: UInt64, of target: String) -> (drive: OpticalDrive?, luns: [UInt64]) {
        guard let g = guest(target) else { return (nil, []) }
        // A LUN past Int (an initiator's 8-byte LUN field can hold anything) names no drive.
        let u = host.logicalUnit(guestID: g.id, lun: Int(exactly: lun) ?? -1)
        return (u.emulator, u.luns.map(UInt64.init))
    }

    func lun(_ lun: UInt64, of target: String) -> OpticalDrive? { unit(lun, of: target).drive }

    func luns(of target: String) -> [UInt64] { unit(UInt64.max, of: target).luns }

    func sessionsChanged(target: String, initiators: [String]) {
        guard let g = guest(target) else { return }
        host.setSessions(guest: g.name, initiators: initiators)
    }
}
