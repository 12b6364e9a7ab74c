import CFuse3
import Dispatch
import Glibc
import Synchronization

/// What the kernel connection should be asked for when it starts.
public struct SessionOptions: Sendable {
    /// Largest read request the kernel may send (bytes). Reads capped just under 1 MiB keep
    /// libfuse's splice path working (its pipe cannot grow past pipe-max-size).
    public var maxRead: UInt32 = 1_032_192
    /// Ask the kernel to send file data to the daemon by splice where it can.
    public var splice = true
    /// The mount's readahead window in KiB (0 leaves the kernel's default, 128 KiB). The
    /// kernel offers only its default at INIT and keeps the smaller of its own value and
    /// the daemon's answer, so the window is raised in the bdi (as root) before INIT is
    /// answered. Buffered sequential reads then arrive as `maxRead`-sized requests.
    public var readaheadKiB: UInt32 = 2016
    /// Let the kernel open directories without OPENDIR/RELEASEDIR where it can. It then
    /// keeps every directory's listing, so the filesystem must move the mtime of a
    /// directory that changes behind the kernel's back and invalidate its attributes.
    public var skipOpendir = true
    /// Ask the kernel to pass O_TRUNC with the open (FUSE_CAP_ATOMIC_O_TRUNC) instead of a
    /// separate truncating SETATTR before it, so that a filesystem can tell an open that
    /// truncates from a truncation on its own.
    public var truncateAtOpen = true
    /// Who speaks the FUSE protocol: vmediafs's own wire layer (`KernelChannel`) or libfuse.
    /// The wire layer needs mount(2), so it is used by root only and with the mount options
    /// it knows; otherwise the session falls back to libfuse.
    public var layer: FuseLayer = .own
    /// Let files that offer a descriptor (`OpenResult.passthroughDescriptor`) be read by the
    /// kernel directly (FUSE passthrough, Linux 6.9+, wire layer only; needs root).
    public var passthrough = false
    /// Take requests over io_uring queues, one per CPU (Linux 6.14+ with the fuse module's
    /// enable_uring set; wire layer only), besides the threads reading /dev/fuse.
    public var ioUring = false
    public init() {}
}

/// The two implementations of the FUSE protocol a session can run on.
public enum FuseLayer: String, Sendable {
    /// vmediafs's own (`KernelChannel`): /dev/fuse read and written directly; passthrough and
    /// io_uring where the kernel has them.
    case own
    /// libfuse 3.14's session and multithreaded loop.
    case libfuse
}

/// Mount failures and libfuse refusals, with a one-line reason.
public struct SessionError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// State every C callback reaches through libfuse's userdata pointer.
final class SessionBox: @unchecked Sendable {
    let fileSystem: any FileSystem
    let options: SessionOptions
    /// Directory snapshots taken at opendir, by handle. Guarded by its mutex; held only
    /// to insert, copy out or remove a snapshot.
    let directories = Mutex<[UInt64: [DirectoryItem]]>([:])
    let nextDirectoryHandle = Atomic<UInt64>(1)
    /// True once the kernel agreed to open directories without asking (no OPENDIR or
    /// RELEASEDIR requests; it then keeps every listing until the directory's mtime or
    /// version moves). Directory snapshots are then kept by inode in `listings`.
    let opendirSkipped = Atomic<Bool>(false)
    /// Snapshots of listings being paged to the kernel without an opendir, by inode:
    /// taken at offset 0, dropped once the end has been sent.
    let listings = Mutex<[UInt64: [DirectoryItem]]>([:])
    weak var session: FuseSession?
    /// The mountpoint as the mount table shows it (absolute, symlinks resolved).
    var mountpoint = ""

    init(fileSystem: any FileSystem, options: SessionOptions) {
        self.fileSystem = fileSystem
        self.options = options
    }
}

extension SessionBox {
    /// OPENDIR: a snapshot of the listing under a new handle, and whether the kernel may
    /// keep it. nil where directories are opened without OPENDIR (the answer is ENOSYS).
    func openDirectory(_ ctx: RequestContext, ino: UInt64) throws(FSError) -> (handle: UInt64, keep: Bool)? {
        if opendirSkipped.load(ordering: .relaxed) { return nil }
        let items = try fileSystem.listDirectory(ctx, ino: ino)
        let h = nextDirectoryHandle.add(1, ordering: .relaxed).oldValue
        directories.withLock { $0[h] = items }
        return (h, fileSystem.directoryListingMayBeKept(ino: ino))
    }

    /// READDIR: the listing to page from `offset`. With a handle, the snapshot taken at
    /// OPENDIR. Without one (the kernel opened the directory by itself), the listing is taken
    /// at offset 0 and kept by inode until its end has been sent, so that a large directory
    /// paged in many requests is listed once; a later offset with no snapshot (its reader
    /// went away and came back, or two readers raced) lists afresh.
    func directoryItems(_ ctx: RequestContext, ino: UInt64, handle: UInt64, offset: Int) throws(FSError) -> [DirectoryItem] {
        if handle != 0 || !opendirSkipped.load(ordering: .relaxed) {
            guard let items = directories.withLock({ $0[handle] }) else { throw FSError(EBADF) }
            return items
        }
        var items = offset == 0 ? nil : listings.withLock { $0[ino] }
        if items == nil {
            let fresh = try fileSystem.listDirectory(ctx, ino: ino)
            items = fresh
            listings.withLock { l in
                if l.count >= 256 { l.removeAll() }   // readers that stopped half way
                l[ino] = fresh
            }
        }
        let all = items ?? []
        if offset >= all.count { _ = listings.withLock { $0.removeValue(forKey: ino) } }
        return all
    }

    func releaseDirectory(_ handle: UInt64) {
        _ = directories.withLock { $0.removeValue(forKey: handle) }
    }
}

func sessionBox(_ req: OpaquePointer) -> SessionBox? {
    guard let raw = fuse_req_userdata(req) else { return nil }
    return Unmanaged<SessionBox>.fromOpaque(raw).takeUnretainedValue()
}

/// One FUSE mount served by a `FileSystem`: creates the session, mounts it, runs the
/// multithreaded loop and sends cache invalidations.
///
/// Invalidations are queued and sent from a thread of their own, after the request that
/// caused them has been answered: the kernel may hold the directory's lock while it waits
/// for that answer (unlink, rename), and an invalidation needs the same lock.
public final class FuseSession: @unchecked Sendable {
    private let box: SessionBox
    /// libfuse's session, when the session runs on libfuse.
    private let handle: OpaquePointer?
    /// The wire layer, when the session runs on it.
    private let kernel: KernelEngine?
    private var args: fuse_args
    private let notifyQueue = DispatchQueue(label: "vmediafs.fuse.notify")
    private var mounted = false
    public let mountpoint: String

    /// Creates a session; `arguments` are libfuse's own (`-o allow_other`, `-d`, ...).
    public init(fileSystem: any FileSystem, mountpoint: String, arguments: [String], options: SessionOptions = .init()) throws {
        self.box = SessionBox(fileSystem: fileSystem, options: options)
        self.mountpoint = mountpoint
        if let real = realpath(mountpoint, nil) {
            box.mountpoint = String(cString: real)
            free(real)
        } else {
            box.mountpoint = mountpoint
        }
        let argv = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: arguments.count + 2)
        argv[0] = strdup("vmediafs")
        for (i, a) in arguments.enumerated() { argv[i + 1] = strdup(a) }
        argv[arguments.count + 1] = nil
        self.args = fuse_args(argc: Int32(arguments.count + 1), argv: argv, allocated: 0)
        let wire = options.layer == .own && geteuid() == 0 ? KernelMountOptions.parse(arguments) : nil
        if let wire {
            self.kernel = KernelEngine(options: wire, box: box)
            self.handle = nil
            self.layer = .own
        } else {
            var ops = makeOperations()
            let userdata = Unmanaged.passUnretained(box).toOpaque()
            guard let se = fuse_session_new(&args, &ops, MemoryLayout<fuse_lowlevel_ops>.size, userdata) else {
                throw SessionError(description: "libfuse refused the options: \(arguments.joined(separator: " "))")
            }
            self.handle = se
            self.kernel = nil
            self.layer = .libfuse
        }
        box.session = self
    }

    /// The layer this session runs on: `.own` unless the options or the user's rights
    /// made it fall back to libfuse.
    public let layer: FuseLayer

    /// The own layer's connection, once mounted (nil on libfuse).
    var kernelChannel: KernelChannel? { kernel?.channel }

    deinit {
        if let handle {
            if mounted { fuse_session_unmount(handle) }
            fuse_session_destroy(handle)
        }
        for i in 0..<Int(args.argc) { free(args.argv[i]) }
        args.argv.deallocate()
    }

    /// Mounts on `mountpoint`. The corresponding C function is `fuse_session_mount`, or
    /// mount(2) for the wire layer.
    public func mount() throws {
        if let kernel {
            try kernel.mount(box.mountpoint)
        } else if let handle {
            guard fuse_session_mount(handle, mountpoint) == 0 else {
                throw SessionError(description: "cannot mount on \(mountpoint)")
            }
        }
        mounted = true
    }

    /// Lets SIGTERM, SIGINT and SIGHUP end the loop. A process started by a test runner
    /// can inherit them blocked, so they are unblocked first.
    public func installSignalHandlers() {
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&set, s) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        if let handle { fuse_set_signal_handlers(handle) } else { SignalPipe.shared.install() }
    }

    /// Serves requests on up to `maxThreads` threads until unmounted or signalled.
    /// Returns 0 after a clean stop: an unmount, or SIGTERM, SIGINT or SIGHUP (libfuse's
    /// loop reports the signal that ended it as its result; that is no failure).
    public func run(maxThreads: Int = 16) -> Int32 {
        box.fileSystem.sessionStarted(self)
        guard let handle else {
            let rc = kernel?.run(threads: maxThreads) ?? 1
            notifyQueue.sync {}
            return rc
        }
        let cfg = fuse_loop_cfg_create()
        fuse_loop_cfg_set_max_threads(cfg, UInt32(maxThreads))
        fuse_loop_cfg_set_idle_threads(cfg, UInt32(max(2, maxThreads / 2)))
        let rc = fuse_session_loop_mt(handle, cfg)
        fuse_loop_cfg_destroy(cfg)
        fuse_remove_signal_handlers(handle)
        notifyQueue.sync {}
        return [SIGTERM, SIGINT, SIGHUP].contains(rc) ? 0 : rc
    }

    /// Unmounts (the loop then ends). Safe to call more than once.
    public func unmount() {
        guard mounted else { return }
        mounted = false
        if let handle { fuse_session_unmount(handle) } else { kernel?.unmount() }
    }

    /// The device number the mount has (`st_dev` of every file in it), from the mount
    /// table: a stat of the mountpoint would be a request to this very daemon, which may
    /// not be serving yet.
    public var deviceNumber: UInt64? {
        guard let name = backingDeviceName(mountpoint: box.mountpoint) else { return nil }
        let parts = name.split(separator: ":")
        guard parts.count == 2, let major = UInt64(parts[0]), let minor = UInt64(parts[1]) else { return nil }
        // glibc's makedev(), a macro Swift cannot see.
        return ((major & 0xFFFF_F000) << 32) | ((major & 0xFFF) << 8) | ((minor & 0xFFFF_FF00) << 12) | (minor & 0xFF)
    }

    /// Asks the loop to end (takes effect when the next request arrives).
    public func exit() {
        if let handle { fuse_session_exit(handle) } else { kernel?.exit() }
    }

    /// Forgets the kernel's cached attributes and pages of `ino`. Dropping pages waits for
    /// page locks that a READ in flight holds: use it for a file whose bytes changed.
    public func invalidateInode(_ ino: UInt64) {
        notifyQueue.async { [self] in
            if let handle { _ = fuse_lowlevel_notify_inval_inode(handle, ino, 0, 0) } else { kernel?.channel?.invalidate(ino, offset: 0, length: 0) }
        }
    }

    /// Forgets the kernel's cached attributes of `ino` only (a negative offset leaves its
    /// pages alone), at once: when this returns, the next stat asks the daemon. It waits
    /// for no inode or page lock, so it is safe from a request handler, before its reply.
    /// For a directory whose mtime moved this also drops its kept listing: the next
    /// listing from the start fetches the attributes, sees the new mtime and reads anew.
    public func invalidateAttributes(_ ino: UInt64) {
        if let handle { _ = fuse_lowlevel_notify_inval_inode(handle, ino, -1, 0) } else { kernel?.channel?.invalidate(ino, offset: -1, length: 0) }
    }


    var options: SessionOptions { box.options }
}


/// The bdi name ("0:53") of the mount on `mountpoint`, from /proc/self/mountinfo; the last
/// mount on that path wins (the one on top). Reading the table never touches the mount.
func backingDeviceName(mountpoint: String) -> String? {
    guard let f = fopen("/proc/self/mountinfo", "r") else { return nil }
    defer { fclose(f) }
    var found: String?
    var line: UnsafeMutablePointer<CChar>?
    var cap = 0
    defer { free(line) }
    while getline(&line, &cap, f) > 0, let line {
        let fields = String(cString: line).split(separator: " ", maxSplits: 5)
        guard fields.count > 4 else { continue }
        if unescapeMountField(fields[4]) == mountpoint { found = String(fields[2]) }
    }
    return found
}

/// The mount table writes space, tab, newline and backslash as octal escapes (`\040`).
private func unescapeMountField(_ s: Substring) -> String {
    guard s.contains("\\") else { return String(s) }
    var bytes: [UInt8] = []
    var u = Array(s.utf8)[...]
    while let c = u.popFirst() {
        if c == UInt8(ascii: "\\"), u.count >= 3, let v = UInt8(String(decoding: u.prefix(3), as: UTF8.self), radix: 8) {
            bytes.append(v)
            u = u.dropFirst(3)
        } else {
            bytes.append(c)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Writes the mount's readahead window (KiB) to /sys/class/bdi/NAME/read_ahead_kb.
/// Returns false when it cannot (not root, no such bdi); the kernel's default then stays.
func setReadahead(mountpoint: String, kib: UInt32) -> Bool {
    guard let bdi = backingDeviceName(mountpoint: mountpoint) else { return false }
    let fd = open("/sys/class/bdi/\(bdi)/read_ahead_kb", O_WRONLY)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    let text = "\(kib)\n"
    return text.withCString { write(fd, $0, strlen($0)) } == text.utf8.count
}
