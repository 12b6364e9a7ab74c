import CFuseABI
import Glibc
import Synchronization

/// The mount options the wire layer understands, from libfuse-style arguments
/// (`-o fsname=X,subtype=Y,allow_other,default_permissions,max_read=N,ro,noatime`, `-d`).
/// Anything else makes `parse` return nil, and the session falls back to libfuse, which
/// knows every option `mount.fuse3` may pass.
struct KernelMountOptions: Equatable {
    var fsname = "vmediafs"
    var subtype: String?
    var allowOther = false
    var defaultPermissions = false
    var maxRead: UInt32?
    var flags: UInt = UInt(MS_NOSUID) | UInt(MS_NODEV)
    var debug = false

    static func parse(_ arguments: [String]) -> KernelMountOptions? {
        var o = KernelMountOptions()
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            var list: String?
            switch a {
            case "-d", "-odebug": o.debug = true
            case "-f", "-s": break
            case "-o":
                i += 1
                guard i < arguments.count else { return nil }
                list = arguments[i]
            default:
                guard a.hasPrefix("-o") else { return nil }
                list = String(a.dropFirst(2))
            }
            for opt in (list ?? "").split(separator: ",").map(String.init) {
                guard o.apply(opt) else { return nil }
            }
            i += 1
        }
        return o
    }

    private mutating func apply(_ opt: String) -> Bool {
        let (k, v) = splitMountOption(opt)
        func set(_ bit: Int, _ on: Bool) { if on { flags |= UInt(bit) } else { flags &= ~UInt(bit) } }
        switch k {
        case "fsname": fsname = v
        case "subtype": subtype = v
        case "allow_other": allowOther = true
        case "default_permissions": defaultPermissions = true
        case "max_read":
            guard let n = UInt32(v) else { return false }
            maxRead = n
        case "debug": debug = true
        case "ro": set(Int(MS_RDONLY), true)
        case "rw": set(Int(MS_RDONLY), false)
        case "nosuid": set(Int(MS_NOSUID), true)
        case "suid": set(Int(MS_NOSUID), false)
        case "nodev": set(Int(MS_NODEV), true)
        case "dev": set(Int(MS_NODEV), false)
        case "noexec": set(Int(MS_NOEXEC), true)
        case "exec": set(Int(MS_NOEXEC), false)
        case "noatime": set(Int(MS_NOATIME), true)
        case "atime": set(Int(MS_NOATIME), false)
        case "nodiratime": set(Int(MS_NODIRATIME), true)
        case "relatime": set(Int(MS_RELATIME), true)
        case "strictatime": set(Int(MS_STRICTATIME), true)
        case "sync": set(Int(MS_SYNCHRONOUS), true)
        case "async": set(Int(MS_SYNCHRONOUS), false)
        case "dirsync": set(Int(MS_DIRSYNC), true)
        case "auto", "noauto", "user", "nouser", "users", "_netdev", "nofail", "defaults": break
        default: return false
        }
        return true
    }

    /// The `data` argument of mount(2) for the FUSE file system on descriptor `fd`.
    func kernelData(fd: Int32) -> String {
        var parts = ["fd=\(fd)", "rootmode=40000", "user_id=\(getuid())", "group_id=\(getgid())"]
        if defaultPermissions { parts.append("default_permissions") }
        if allowOther { parts.append("allow_other") }
        if let maxRead { parts.append("max_read=\(maxRead)") }
        return parts.joined(separator: ",")
    }
}

/// `key=value` as (key, value); a bare `key` as (key, ""). How every `-o` option is read.
public func splitMountOption(_ opt: String) -> (key: String, value: String) {
    guard let eq = opt.firstIndex(of: "=") else { return (opt, "") }
    return (String(opt[..<eq]), String(opt[opt.index(after: eq)...]))
}

/// The wire layer's session: opens /dev/fuse, mounts it with mount(2) (root only; others
/// use libfuse and fusermount3), runs the worker threads and unmounts.
final class KernelEngine: @unchecked Sendable {
    let options: KernelMountOptions
    let box: SessionBox
    private(set) var channel: KernelChannel?
    private var mounted = false
    /// The connection's number under /sys/fs/fuse/connections (the mount's minor device).
    private var connection: String?

    init(options: KernelMountOptions, box: SessionBox) {
        self.options = options
        self.box = box
    }

    /// Opens /dev/fuse and mounts it on `mountpoint`.
    func mount(_ mountpoint: String) throws(SessionError) {
        let fd = open("/dev/fuse", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw SessionError(description: "cannot open /dev/fuse: \(String(cString: strerror(errno)))") }
        let type = options.subtype.map { "fuse.\($0)" } ?? "fuse"
        let rc = Glibc.mount(options.fsname, mountpoint, type, options.flags, options.kernelData(fd: fd))
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw SessionError(description: "cannot mount on \(mountpoint): \(String(cString: strerror(e)))")
        }
        mounted = true
        channel = KernelChannel(fd: fd, box: box, debug: options.debug)
        connection = backingDeviceName(mountpoint: box.mountpoint).flatMap { $0.split(separator: ":").last.map(String.init) }
    }

    /// Serves on `threads` threads until the connection ends or a signal asks it to stop.
    /// Returns 0 after a clean stop (unmount, SIGTERM, SIGINT, SIGHUP).
    func run(threads: Int) -> Int32 {
        guard let channel else { return 1 }
        let done = vmfs_eventfd_cloexec()
        defer { close(done) }
        var workers: [pthread_t] = []
        for _ in 0..<max(1, threads) {
            let job = WorkerJob(channel: channel, done: done)
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let job = Unmanaged<WorkerJob>.fromOpaque(raw!).takeRetainedValue()
                job.channel.serve()
                var one: UInt64 = 1
                _ = write(job.done, &one, 8)
                return nil
            }, Unmanaged.passRetained(job).toOpaque())
            if rc == 0 { workers.append(thread) }
        }
        guard !workers.isEmpty else { return 1 }
        // Wait for a signal (its handler writes to the signal pipe) or a worker that ended.
        var fds = [pollfd(fd: done, events: Int16(POLLIN), revents: 0)]
        if let s = SignalPipe.shared.readEnd { fds.append(pollfd(fd: s, events: Int16(POLLIN), revents: 0)) }
        while poll(&fds, nfds_t(fds.count), -1) < 0 && errno == EINTR {}
        let signalled = fds.count > 1 && fds[1].revents != 0
        channel.exiting.store(true, ordering: .relaxed)
        var ended = 0
        if signalled {
            unmount()
            // A lazy unmount keeps the connection while files stay open in it: end it.
            if !waitForWorkers(done, count: workers.count, ended: &ended, milliseconds: 2000) { abortConnection() }
        }
        _ = waitForWorkers(done, count: workers.count, ended: &ended, milliseconds: 5000)
        for t in workers { pthread_detach(t) }
        return 0
    }

    /// Waits until `count` workers in all have reported on `done` (`ended` counts them
    /// across calls); false on timeout.
    private func waitForWorkers(_ done: Int32, count: Int, ended: inout Int, milliseconds: Int32) -> Bool {
        var pfd = pollfd(fd: done, events: Int16(POLLIN), revents: 0)
        var left = milliseconds
        while ended < count && left > 0 {
            if poll(&pfd, 1, 50) > 0 {
                var n: UInt64 = 0
                if read(done, &n, 8) == 8 { ended += Int(n) }
            }
            left -= 50
        }
        return ended >= count
    }

    private func abortConnection() {
        guard let connection else { return }
        let path = "/sys/fs/fuse/connections/\(connection)/abort"
        var fd = open(path, O_WRONLY)
        if fd < 0 && errno == ENOENT {
            // fusectl is not mounted where no init system did it (a container, a bare VM):
            // mount it, as systemd does at boot, and try again.
            if Glibc.mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, nil) == 0 { fd = open(path, O_WRONLY) }
        }
        guard fd >= 0 else { return }
        _ = write(fd, "1", 1)
        close(fd)
    }

    /// Lazily unmounts (as libfuse does for root). Safe to call more than once.
    func unmount() {
        guard mounted else { return }
        mounted = false
        _ = umount2(box.mountpoint, Int32(MNT_DETACH))
    }

    func exit() {
        channel?.exiting.store(true, ordering: .relaxed)
        SignalPipe.shared.poke()
    }

    deinit {
        if let channel { close(channel.fd) }
    }
}

private final class WorkerJob {
    let channel: KernelChannel
    let done: Int32
    init(channel: KernelChannel, done: Int32) { self.channel = channel; self.done = done }
}

/// SIGTERM, SIGINT and SIGHUP for the wire layer: the handler writes one byte to a pipe that
/// `KernelEngine.run` waits on (write is async-signal-safe; nothing else is done there).
final class SignalPipe: Sendable {
    static let shared = SignalPipe()
    let readEnd: Int32?

    private init() {
        var p: [Int32] = [0, 0]
        guard vmfs_pipe2_cloexec(&p) == 0 else { readEnd = nil; return }
        // Never block the handler on a full pipe: one byte waiting is enough.
        _ = fcntl(p[0], F_SETFL, O_NONBLOCK)
        _ = fcntl(p[1], F_SETFL, O_NONBLOCK)
        readEnd = p[0]
        signalWriteEnd.store(p[1], ordering: .relaxed)
    }

    /// Wakes `run` as a signal would.
    func poke() { pokeSignalPipe() }

    func install() {
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&set, s) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        for s in [SIGTERM, SIGINT, SIGHUP] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { _ in pokeSignalPipe() }
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            sigaction(s, &action, nil)
        }
        signal(SIGPIPE, SIG_IGN)
    }
}

/// The signal pipe's write end, where the handler can reach it without touching anything
/// that may need initialising; -1 until the pipe exists.
private let signalWriteEnd = Atomic<Int32>(-1)

private func pokeSignalPipe() {
    let w = signalWriteEnd.load(ordering: .relaxed)
    var b: UInt8 = 1
    if w >= 0 { _ = write(w, &b, 1) }
}
