import Glibc

/// Whether `unloadopt` waits for an eject the guest has deferred by locking the tray.
public enum EjectWait: Sendable, Equatable {
    /// Report the pending eject and return (exit status 3).
    case no
    /// Poll `status` until the drive is empty, at most `timeout` seconds (nil: no limit).
    case until(timeout: Double?, pollInterval: Double = 0.2)
}

extension VMediaTree {
    /// `loadopt DRIVE MEDIA [--force]`: writes MEDIA's path (or library NAME) into the drive's
    /// `media` file, the way `echo PATH > media` does.
    ///
    /// A drive with media is left alone unless `force`, which swaps in one step (SPEC 2.1: if
    /// the new media is refused, the old stays). A refusal is reported with the contract's
    /// reason from `last_error=` in `status`.
    /// - Returns: the text written (without the newline): a library NAME or an absolute path.
    @discardableResult
    public func load(drive spec: String, media: String, force: Bool = false) throws(VMediaError) -> String {
        let ref = try findDrive(spec)
        let before = try readStatus(ref)
        if before.isLoaded && !force {
            throw VMediaError(ref.description,
                              "media is loaded (\(before.media ?? "?")); use --force to replace it",
                              exit: .refused, errno: .busy)
        }
        let value = mediaArgument(media)
        do {
            try io.writeControl(mediaPath(ref), value + "\n", create: true)
        } catch {
            // A failed open is about the drive (gone, not ours); a failed write or close is
            // the filesystem's verdict on the media, explained in `last_error=`.
            let reason = error.step == .open ? nil : (try? readStatus(ref))?.lastError
            throw VMediaError.from(error.errno, subject: "\(ref): load \(value)", reason: reason, operation: .load)
        }
        return value
    }

    /// What to write into `media` for what the user typed: an http(s) URL as it is; a path with a `/` is made
    /// absolute from the caller's working directory; a bare word is a `library/` NAME when
    /// there is one, else a file of that name in the working directory, else it is passed on
    /// as a NAME for the filesystem to refuse.
    public func mediaArgument(_ media: String) -> String {
        let lower = media.prefix(8).lowercased()
        if lower.hasPrefix("http://") || lower.hasPrefix("https://") { return media }   // a URL, for the daemon to check
        if media.contains("/") { return Paths.absolute(media, from: workingDirectory) }
        if (try? io.info(libraryEntryPath(media)).isDirectory) == true { return media }
        let local = Paths.absolute(media, from: workingDirectory)
        if let info = try? io.info(local), !info.isDirectory { return local }
        return media
    }

    /// `unloadopt DRIVE [--wait [--timeout S]]`: `rm media`.
    ///
    /// `EBUSY` with `eject_pending=yes` in `status` means the guest has locked the tray: the
    /// eject was requested from the guest and completes by itself when the guest allows it.
    public func unload(drive spec: String, wait: EjectWait = .no) throws(VMediaError) {
        let ref = try findDrive(spec)
        do {
            try io.unlink(mediaPath(ref))
            return
        } catch where error == .noSuchFile {
            throw VMediaError(ref.description, "no media loaded", exit: .notFound, errno: error)
        } catch where error == .busy {
            let status = try readStatus(ref)
            guard status.ejectPending else {
                throw VMediaError.from(error, subject: ref.description, reason: status.lastError, operation: .unload)
            }
            guard case .until(let timeout, let interval) = wait else {
                throw VMediaError(ref.description,
                                  "the guest has locked the drive; eject requested, it completes when the guest allows removal (--wait waits for it)",
                                  exit: .pending, errno: error)
            }
            try waitForEject(ref, timeout: timeout, interval: interval)
        } catch {
            throw VMediaError.from(error, subject: ref.description, operation: .unload)
        }
    }

    /// Polls `status` until the drive is empty.
    private func waitForEject(_ ref: DriveRef, timeout: Double?, interval: Double) throws(VMediaError) {
        let start = Monotonic.now()
        while true {
            let status = try readStatus(ref)
            if !status.isLoaded { return }
            if !status.ejectPending {
                throw VMediaError(ref.description,
                                  "the eject is no longer pending but media is still loaded (\(status.media ?? "?"))",
                                  exit: .refused)
            }
            if let timeout, Monotonic.now() - start >= timeout {
                throw VMediaError(ref.description,
                                  "timed out after \(Monotonic.format(timeout)) s: the guest still has the drive locked; the eject stays pending",
                                  exit: .pending, errno: .busy)
            }
            Monotonic.sleep(interval)
        }
    }

    /// `status DRIVE`: the drive's `status` file.
    public func status(drive spec: String) throws(VMediaError) -> (ref: DriveRef, text: String) {
        let ref = try findDrive(spec)
        return (ref, try readStatusText(ref))
    }
}

/// Time for waiting and timeouts, from the monotonic clock.
enum Monotonic {
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func sleep(_ seconds: Double) {
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }

    static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
    }
}
