import SCSI

extension Host {
    /// The drive's `status` file: stable `key=value` lines (contract section 2.3).
    public func status(driveID: Int64) -> String? {
        // The emulator's state is read under the host lock too: an insert or eject changes
        // the emulator and then (once durable) the drive record, both under that lock, so
        // reading it outside could pair the old `media` with the new media's `generation`.
        let snapshot: (DriveRecord, String, DriveRuntime?, Bool, DriveState?, [String])? = state.withLock { st in
            guard let d = st.drives[driveID] else { return nil }
            let sharable = d.loaded.map { $0.kind != .device && (st.sharable[$0.path] ?? false) } ?? false
            let rt = st.runtimes[driveID]
            let guest = st.guests[d.guestID]?.name ?? ""
            return (d, guest, rt, sharable, rt?.emulator.state, st.sessions[guest] ?? [])
        }
        guard let (d, guest, rt, sharable, emu, sessions) = snapshot else { return nil }
        let blocks = d.loaded.map { ($0.identity.size + 2047) / 2048 } ?? 0
        var lines: [(String, String)] = [
            ("guest", guest),
            ("drive", d.name),
            ("state", d.loaded == nil ? "empty" : "loaded"),
            ("kind", d.loaded?.kind.rawValue ?? "none"),
            ("media", d.loaded?.path ?? ""),
            ("size", String(d.loaded?.identity.size ?? 0)),
            ("blocks", String(blocks)),
            ("block_size", "2048"),
            ("sharable", sharable ? "yes" : "no"),
            ("locked", emu?.locked == true ? "yes" : "no"),
            ("eject_pending", emu?.ejectPending == true ? "yes" : "no"),
            ("generation", String(emu?.generation ?? 0)),
            ("openers", String(rt?.openers.load(ordering: .relaxed) ?? 0)),
            ("loaded_by", d.loaded.map { String($0.loadedBy) } ?? ""),
            ("loaded_at", d.loaded.map { rfc3339($0.loadedAt) } ?? ""),
            ("last_error", d.lastError),
        ]
        lines.append(("lun", String(d.lun)))
        lines.append(("sessions", sessions.joined(separator: ",")))
        return lines.map { "\($0.0)=\($0.1.replacingNewlines())\n" }.joined()
    }
}
