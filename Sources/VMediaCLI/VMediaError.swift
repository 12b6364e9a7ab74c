/// How `vmedia` ends, as a number for scripts. Documented in docs/vmedia.8.md.
public enum ExitStatus: Int32, Sendable {
    /// Done.
    case success = 0
    /// Bad usage, or something named does not exist: no mount found, unknown guest, drive or
    /// library media, no media loaded; any `ENOENT`.
    case notFound = 1
    /// The filesystem refused the operation (any errno but `ENOENT`), or `vmedia` refused to
    /// replace loaded media without `--force`.
    case refused = 2
    /// An eject was requested but the guest holds the tray locked: it will complete when the
    /// guest allows removal (`unloadopt` without `--wait`, or `--wait` timed out).
    case pending = 3
}

/// An error as the user sees it: `vmedia: <subject>: <reason>`.
public struct VMediaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What the operation was about: a drive (`web01/vtopt0`), a guest, a path, a media name.
    public var subject: String
    /// The contract's one-line reason (`last_error=`), or the errno's message with a hint.
    public var reason: String
    public var exit: ExitStatus
    /// The errno behind it, when a system call gave one.
    public var errno: Errno?

    public init(_ subject: String, _ reason: String, exit: ExitStatus, errno: Errno? = nil) {
        self.subject = subject
        self.reason = reason
        self.exit = exit
        self.errno = errno
    }

    /// The line printed on standard error.
    public var description: String {
        subject.isEmpty ? "vmedia: \(reason)" : "vmedia: \(subject): \(reason)"
    }

    /// An error from a system call on the tree, with the exit status the errno implies.
    /// - Parameters:
    ///   - errno: what the call returned.
    ///   - subject: what it was about.
    ///   - reason: the contract's one-line reason when there is one; else the errno's message.
    ///   - operation: which `vmedia` operation failed, to add a hint for errnos it explains.
    public static func from(_ errno: Errno, subject: String, reason: String? = nil,
                            operation: Operation? = nil) -> VMediaError {
        var text = reason ?? errno.description
        if reason == nil, let operation, let hint = operation.hint(for: errno) {
            text += " (\(hint))"
        }
        return VMediaError(subject, text, exit: errno == .noSuchFile ? .notFound : .refused,
                           errno: errno)
    }

    /// The administrative operations, for errno hints.
    public enum Operation: Sendable {
        case makeGuest, removeGuest, makeDrive, removeDrive, load, unload, share, read

        /// A short explanation of what this errno means for this operation, where the errno's
        /// own message would leave the user guessing.
        func hint(for errno: Errno) -> String? {
            switch (self, errno) {
            case (.read, _): return nil
            case (.removeGuest, .notEmpty): return "the guest still has drives: remove them with rmvopt first"
            case (.removeDrive, .busy): return "media is loaded: unload it first"
            case (.makeGuest, .exists): return "a guest of that name exists"
            case (.makeDrive, .exists): return "drive names are unique on the whole host"
            case (.makeGuest, .invalid), (.makeDrive, .invalid):
                return "names are 1 to 64 of A-Z a-z 0-9 . _ -, not starting with '.', not a name the tree uses"
            case (.makeDrive, .noSuchFile): return "no such guest"
            case (.share, .permissionDenied), (.share, .notPermitted):
                return "only the owner of the image file may change it"
            case (_, .permissionDenied), (_, .notPermitted): return "not the owner"
            default: return nil
            }
        }
    }
}
