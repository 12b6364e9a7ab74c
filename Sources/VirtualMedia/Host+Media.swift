import Glibc
import SCSI

extension Host {
    /// Inserts the image named by `text` (an absolute path or a `library/` NAME, with or
    /// without a trailing newline) into a drive, for `user`. A loaded drive swaps in one
    /// step; if the new image is refused the old one stays. Returns the resolved path.
    /// A refusal is recorded as `last_error`, in the history, the log and `events`.
    public func insert(driveID: Int64, text: String, by user: Credentials) throws(VMError) -> String {
        try insert(driveID: driveID, request: Array(text.utf8), by: user)
    }

    /// Inserts what was written to `media`, as raw bytes (`ControlText.mediaRequest` says
    /// which are refused), for `user`.
    public func insert(driveID: Int64, request: [UInt8], by user: Credentials) throws(VMError) -> String {
        let text = String(decoding: request, as: UTF8.self)
        do {
            let path = try resolve(try ControlText.mediaRequest(request))
            let onChange: @Sendable (String) -> Void = { [weak self] why in self?.backingChanged(driveID: driveID, reason: why) }
            if MediaConfiguration.isURL(path) {
                let image = try remoteMedia().open(path, timeout: configuration.openTimeout)
                return try load(ImageSource(remote: image, onChange: onChange), driveID: driveID, by: user)
            }
            let opened = try policy.open(path, as: user)
            let source = ImageSource(path: opened.path, kind: opened.kind, fd: opened.fd, identity: opened.identity,
                                     onChange: onChange)
            return try load(source, driveID: driveID, by: user)
        } catch {
            refuse(driveID: driveID, text: text, error: error, user: user)
            throw error
        }
    }

    /// Where URL media come from; refused when the daemon was given no `--media-url`.
    private func remoteMedia() throws(VMError) -> any RemoteMediaSource {
        guard let remote = configuration.remote else {
            throw VMError(EPERM, "URL media are not enabled (the daemon has no --media-url)")
        }
        return remote
    }

    /// An absolute path or a URL as it is; anything else names a `library/` image.
    private func resolve(_ request: String) throws(VMError) -> String {
        if request.hasPrefix("/") || MediaConfiguration.isURL(request) { return request }
        guard let item = libraryItem(named: request) else { throw VMError(ENOENT, "no library image named \(request)") }
        return item.path
    }

    private func load(_ source: ImageSource, driveID: Int64, by user: Credentials) throws(VMError) -> String {
        let (label, swapped) = try state.withLock { (st: inout HostState) throws(VMError) -> (String, String?) in
            guard var d = st.drives[driveID], let rt = st.runtimes[driveID] else { throw VMError(ENOENT, "no such drive") }
            if let other = st.anotherDrive(holding: source.identity, except: driveID) {
                if source.kind == .device {
                    throw VMError(EBUSY, "host drive \(source.path) is in use by \(st.label(other))")
                }
                if !(st.sharable[source.path] ?? false) {
                    throw VMError(EBUSY, "\(source.path) is loaded in \(st.label(other)) and is not sharable")
                }
            }
            let old = rt.emulator.medium
            if source.kind == .device { _ = lockDoor(source, true) }
            do {
                try rt.emulator.insert(Medium(source: source))
            } catch {
                throw VMError(EBUSY, "the guest has locked drive \(st.label(d)); media not changed")
            }
            let loaded = LoadedMedia(path: source.path, kind: source.kind, identity: source.identity,
                                     loadedBy: user.uid, loadedAt: nowNanos())
            let swapped = d.loaded?.path
            do throws(VMError) {
                try record(loaded, in: &d, state: &st, kind: "insert", uid: user.uid, detail: source.path)
            } catch {
                // Not durable, so not done: put the drive back as it was.
                if let old { try? rt.emulator.insert(old) } else { _ = try? rt.emulator.eject() }
                throw error
            }
            return (st.label(d), swapped)
        }
        var fields = [("media", source.path), ("kind", source.kind.rawValue), ("uid", String(user.uid))] + user.agentField
        if let swapped { fields.append(("replaced", swapped)) }
        events.post("insert", label, fields)
        Log.info("\(label): inserted \(source.path) for uid \(user.uid)\(user.agent.map { " (\($0))" } ?? "")\(swapped.map { " (replacing \($0))" } ?? "")")
        notifyChanged(driveID)
        return source.path
    }

    private func lockDoor(_ source: ImageSource, _ lock: Bool) -> Bool {
        guard let fd = source.fileDescriptor else { return false }
        return vmfsLockDoor(fd, lock)
    }

    /// Ejects a drive's media for `user`. While the guest prevents removal the eject is
    /// requested from the guest, `eject_pending=yes` shows in status, and `EBUSY` is thrown;
    /// the eject then completes by itself when the guest allows removal.
    public func eject(driveID: Int64, by user: Credentials) throws(VMError) {
        do {
            let (label, path) = try state.withLock { (st: inout HostState) throws(VMError) -> (String, String) in
                guard var d = st.drives[driveID], let rt = st.runtimes[driveID] else { throw VMError(ENOENT, "no such drive") }
                guard let loaded = d.loaded else { throw VMError(ENOENT, "drive \(st.label(d)) is empty") }
                do {
                    try rt.emulator.eject()
                } catch HostError.noMedium {
                    // The emulator is already empty (a guest eject racing ours): record it.
                } catch {
                    throw VMError(EBUSY, "the guest has locked drive \(st.label(d)); eject requested from the guest")
                }
                try record(nil, in: &d, state: &st, kind: "eject", uid: user.uid, detail: loaded.path)
                return (st.label(d), loaded.path)
            }
            announceEject(driveID: driveID, label: label, path: path, by: "host", uid: user.uid, agent: user.agent)
        } catch {
            refuse(driveID: driveID, text: "eject", error: error, user: user)
            throw error
        }
    }

    /// Records a refusal: `last_error`, history, log and an `events` line.
    func refuse(driveID: Int64, text: String, error: VMError, user: Credentials) {
        let label: String? = state.withLock { st in
            guard var d = st.drives[driveID] else { return nil }
            d.lastError = error.reason
            st.update(d)
            try? store.setLastError(driveID: driveID, error.reason,
                                    history: HistoryEvent(time: nowNanos(), kind: "refuse", guest: st.guests[d.guestID]?.name ?? "",
                                                          drive: d.name, uid: user.uid, detail: "\(text.replacingNewlines()): \(error.reason)"))
            return st.label(d)
        }
        guard let label else { return }
        let pending = runtime(driveID: driveID)?.emulator.state.ejectPending ?? false
        events.post("refuse", label, [("request", text.replacingNewlines()), ("errno", String(error.errno)),
                                      ("reason", error.reason)] + (pending ? [("eject_pending", "yes")] : []) + user.agentField)
        Log.warning("\(label): refused \(text.replacingNewlines()) for uid \(user.uid): \(error.reason)")
    }

    /// Records that a drive's media came (`media`) or went (nil): in the store first, with
    /// its history line, then in the drive's record. The time is the drive directory's mtime
    /// from then on (`media` appeared or vanished in it). Called under `state`.
    private func record(_ media: LoadedMedia?, in d: inout DriveRecord, state st: inout HostState,
                        kind: String, uid: UInt32, detail: String) throws(VMError) {
        let now = media?.loadedAt ?? nowNanos()
        try store.setLoaded(driveID: d.id, media, lastError: "", changedAt: now,
                            history: HistoryEvent(time: now, kind: kind, guest: st.guests[d.guestID]?.name ?? "",
                                                  drive: d.name, uid: uid, detail: detail))
        d.loaded = media
        d.lastError = ""
        d.changed = now
        st.update(d)
    }

    /// A guest ejected (START STOP UNIT) or a deferred eject completed: the emulator is
    /// already empty; record it.
    func ejectedBySCSI(driveID: Int64, cause: EjectCause) {
        let who = if case .guest = cause { "guest" } else { "deferred" }
        let done: (String, String)? = state.withLock { st in
            guard var d = st.drives[driveID], let loaded = d.loaded else { return nil }
            if let rt = st.runtimes[driveID], rt.emulator.state.mediumPresent { return nil }
            try? record(nil, in: &d, state: &st, kind: "eject", uid: 0, detail: "\(loaded.path) by=\(who)")
            return (st.label(d), loaded.path)
        }
        guard let (label, path) = done else { return }
        announceEject(driveID: driveID, label: label, path: path, by: who, uid: nil)
    }

    /// The tail of every eject, once it is recorded: the `events` line (`by=host` with the
    /// user's uid, `by=guest`, `by=deferred`), the log line, and the observer.
    private func announceEject(driveID: Int64, label: String, path: String, by who: String, uid: UInt32?, agent: String? = nil) {
        events.post("eject", label, [("media", path), ("by", who)] + (uid.map { [("uid", String($0))] } ?? []) + (agent.map { [("via", $0)] } ?? []))
        if let uid { Log.info("\(label): ejected \(path) for uid \(uid)\(agent.map { " (\($0))" } ?? "")") } else { Log.info("\(label): \(path) ejected (\(who))") }
        notifyChanged(driveID)
    }

    func lockChanged(driveID: Int64, locked: Bool) {
        guard let d = drive(id: driveID) else { return }
        let label = state.withLock { $0.label(d) }
        events.post(locked ? "lock" : "unlock", label)
        notifyChanged(driveID)
    }

    /// The image under a loaded drive changed: reads already fail (the source refuses);
    /// say why in status, the history, the log and `events`. Runs off the reader's thread.
    func backingChanged(driveID: Int64, reason: String) {
        background.async { [self] in
            let label: String? = state.withLock { st in
                guard var d = st.drives[driveID] else { return nil }
                // Logged before `last_error` shows it, so a reader of status finds the log line too.
                Log.error("\(st.label(d)): \(reason)")
                d.lastError = reason
                st.update(d)
                try? store.setLastError(driveID: driveID, reason,
                                        history: HistoryEvent(time: nowNanos(), kind: "change", guest: st.guests[d.guestID]?.name ?? "",
                                                              drive: d.name, uid: 0, detail: reason))
                return st.label(d)
            }
            guard let label else { return }
            events.post("change", label, [("reason", reason)])
            notifyChanged(driveID)
        }
    }

    /// Brings one drive back at start. Media whose image vanished or changed while the
    /// daemon was down are not loaded; `last_error` says why.
    func restore(_ stored: DriveRecord, deadline: Nanos) throws(VMError) {
        var d = stored
        let rt = makeRuntime(for: d)
        if let m = d.loaded, let why = reload(m, into: rt, driveID: stored.id, deadline: deadline) {
            d.loaded = nil
            d.lastError = why
            try store.setLoaded(driveID: d.id, nil, lastError: why,
                                history: HistoryEvent(time: nowNanos(), kind: "eject", guest: guest(id: d.guestID)?.name ?? "",
                                                      drive: d.name, uid: 0, detail: why))
            Log.warning("drive \(d.name): \(why)")
        }
        state.withLock { st in
            st.add(d)
            st.runtimes[d.id] = rt
        }
    }

    /// Loads recorded media into a drive's emulator at start; returns why not, if not.
    /// Files are opened again as the user who loaded them, within the shared `deadline`.
    /// URL media come back as recorded, without asking the server (the mount must not wait
    /// on one): the first read finds out whether it still serves the same image.
    private func reload(_ m: LoadedMedia, into rt: DriveRuntime, driveID: Int64, deadline: Nanos) -> String? {
        let onChange: @Sendable (String) -> Void = { [weak self] r in self?.backingChanged(driveID: driveID, reason: r) }
        do throws(VMError) {
            let source: ImageSource
            if m.kind == .url {
                source = ImageSource(remote: try remoteMedia().reopen(m.path, size: m.identity.size, validator: m.identity.validator),
                                     onChange: onChange)
            } else {
                let left = max(0.05, Double(deadline - nowNanos()) / 1e9)
                let opened = try policy.open(m.path, as: geteuid() == 0 ? .ofUser(m.loadedBy) : .daemon, timeout: left)
                source = ImageSource(path: opened.path, kind: opened.kind, fd: opened.fd, identity: opened.identity, onChange: onChange)
                if opened.identity != m.identity && !(m.kind == .device && opened.identity.device == m.identity.device) {
                    return "image \(m.path) changed while vmediafs was down; not reloaded"
                }
                if source.kind == .device { _ = lockDoor(source, true) }
            }
            try? rt.emulator.insert(Medium(source: source))
            return nil
        } catch {
            return error.errno == ENOENT ? "image \(m.path) vanished while vmediafs was down" : "image \(m.path) not reloaded: \(error.reason)"
        }
    }
}
