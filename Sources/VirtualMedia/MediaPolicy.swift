import CPosixShims
import Dispatch
import Glibc
import Synchronization

/// Where media may come from: the repository folders and the host's own drives.
public struct MediaConfiguration: Sendable {
    /// The virtual media repository (`--media-dir`), as given.
    public var mediaDirectories: [String]
    /// Host block devices that may be loaded (`--host-drive`).
    public var hostDrives: [String]
    /// How long an insert waits for the file system holding the image to answer the open
    /// (a hung NFS or FUSE mount, a device that does not answer) before it is refused with
    /// `EIO`. The open goes on in the background and its descriptor is closed when it ends.
    public var openTimeout: Double
    /// Where `http://` and `https://` media come from (`--media-url`); nil: URLs are refused.
    public var remote: (any RemoteMediaSource)?
    public init(mediaDirectories: [String] = [], hostDrives: [String] = [], openTimeout: Double = 15,
                remote: (any RemoteMediaSource)? = nil) {
        self.mediaDirectories = mediaDirectories; self.hostDrives = hostDrives; self.openTimeout = openTimeout
        self.remote = remote
    }

    /// Whether a media request names a URL rather than a path or a library name.
    public static func isURL(_ request: String) -> Bool {
        let lower = request.prefix(8).lowercased()
        return lower.hasPrefix("http://") || lower.hasPrefix("https://")
    }
}

/// An image opened and checked for one user, ready to load.
struct OpenedImage {
    var path: String
    var kind: MediaKind
    var fd: Int32
    var identity: ImageIdentity
}

/// The checks an insert makes before anything is loaded. Every check after the open is
/// made on the opened descriptor, so a path swapped between check and use gains nothing.
struct MediaPolicy: Sendable {
    /// The media folders with symlinks resolved, each ending in "/".
    let mediaRoots: [String]
    /// Device numbers of the host drives that may be loaded.
    let hostDevices: [UInt64: String]
    let openTimeout: Double
    /// The device number of vmediafs's own mount, once mounted: images inside it are refused
    /// (the daemon would read its own files through the kernel, one request waiting on another).
    let ownMount = OwnMount()
    private let opener = BoundedOpener()

    init(_ config: MediaConfiguration) {
        mediaRoots = config.mediaDirectories.compactMap { dir in
            guard let real = realpath(dir, nil) else { return nil }
            defer { free(real) }
            let s = String(cString: real)
            return s.hasSuffix("/") ? s : s + "/"
        }
        var devices: [UInt64: String] = [:]
        for dev in config.hostDrives {
            var st = stat()
            if stat(dev, &st) == 0, (st.st_mode & S_IFMT) == S_IFBLK { devices[UInt64(st.st_rdev)] = dev }
        }
        hostDevices = devices
        openTimeout = config.openTimeout
    }

    /// Opens `path` as `user` and checks it against the contract's refusal table.
    /// The caller owns the returned descriptor.
    ///
    /// Nothing here waits on what a user controls: the open cannot block (a FIFO is refused
    /// from its type before it is ever opened for reading; devices are opened non-blocking),
    /// and the path walk, which can hang on a stuck NFS or FUSE mount, runs on a thread of
    /// its own that the request waits for at most `openTimeout` seconds.
    func open(_ path: String, as user: Credentials, timeout: Double? = nil) throws(VMError) -> OpenedImage {
        guard !path.isEmpty else { throw VMError(EINVAL, "empty path") }
        guard path.utf8.count < Int(PATH_MAX) else { throw VMError(ENAMETOOLONG, "path longer than PATH_MAX") }
        let (fd, real) = try opener.run(timeout: timeout ?? openTimeout, what: path) { () throws(VMError) -> (Int32, String) in
            try user.asFileUser { () throws(VMError) -> (Int32, String) in try Self.openQuietly(path) }
        }
        do {
            try ControlText.checkPrintable(real.utf8, what: "the resolved path")
            return try check(fd: fd, path: real)
        } catch {
            close(fd)
            throw error
        }
    }

    /// The path walk and open, as the calling thread's file-system user. The path is first
    /// opened `O_PATH` (no data access, so a FIFO or device does nothing yet), refusing
    /// procfs's descriptor links; its type decides how it is opened for reading, through
    /// that very descriptor, so a path swapped meanwhile gains nothing. Returns the open
    /// descriptor (blocking mode restored) and the path it really has.
    private static func openQuietly(_ path: String) throws(VMError) -> (Int32, String) {
        let located = vmfs_open_location(path, 0)
        guard located >= 0 else {
            let e = errno
            if e == ELOOP, throughDescriptorLink(path) {
                throw VMError(EPERM, "\(path) passes through a /proc descriptor link, which vmediafs does not follow")
            }
            throw VMError.system(e, path)
        }
        defer { close(located) }
        var st = stat()
        guard fstat(located, &st) == 0 else { throw VMError.system(errno, path) }
        let real = descriptorPath(located) ?? path
        let type = st.st_mode & S_IFMT
        guard type == S_IFREG || type == S_IFBLK else { throw VMError(EINVAL, "\(real) is not a regular file or block device") }
        // O_EXCL on a block device: refused while the host has it mounted or another opener
        // holds it exclusively. O_NONBLOCK: a drive with no disc opens instead of failing.
        var flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC
        if type == S_IFBLK { flags |= O_EXCL }
        let fd = Glibc.open("/proc/self/fd/\(located)", flags)
        guard fd >= 0 else {
            let e = errno
            if e == EBUSY { throw VMError(EBUSY, "host drive \(real) is in use elsewhere") }
            throw VMError.system(e, real)
        }
        let mode = fcntl(fd, F_GETFL)
        if mode >= 0 { _ = fcntl(fd, F_SETFL, mode & ~O_NONBLOCK) }
        return (fd, real)
    }

    /// Whether `path` failed with ELOOP only because it passes through a magic link (an
    /// O_PATH open that may follow them succeeds; it reads nothing and is closed at once).
    private static func throughDescriptorLink(_ path: String) -> Bool {
        let fd = vmfs_open_location(path, 1)
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }

    private func check(fd: Int32, path: String) throws(VMError) -> OpenedImage {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw VMError.system(errno, path) }
        let type = st.st_mode & S_IFMT
        guard type == S_IFREG || type == S_IFBLK else { throw VMError(EINVAL, "\(path) is not a regular file or block device") }
        if st.st_mode & S_IWOTH != 0 { throw VMError(EPERM, "\(path) is world-writable") }
        if UInt64(st.st_dev) == ownMount.device.load(ordering: .relaxed) {
            throw VMError(EPERM, "\(path) lies inside vmediafs's own mount")
        }
        if vmfs_fstatfs_type(fd) == vmfs_nfs_super_magic() {
            throw VMError(EOPNOTSUPP, "\(path) is on NFS, which is not supported")
        }
        if type == S_IFBLK {
            guard hostDevices[UInt64(st.st_rdev)] != nil else {
                throw VMError(EPERM, "\(path) is a block device not named by --host-drive")
            }
            var size: UInt64 = 0
            guard vmfs_ioctl_ptr(fd, vmfs_ioctl_blkgetsize64(), &size) == 0 else { throw VMError.system(errno, path) }
            guard size > 0 else { throw VMError(EINVAL, "\(path) holds no medium (size 0)") }
            return OpenedImage(path: path, kind: .device, fd: fd, identity: ImageIdentity(st, size: size))
        }
        if !mediaRoots.isEmpty {
            // Where the descriptor really points, whatever happened to the path meanwhile.
            let actual = Self.descriptorPath(fd) ?? path
            guard mediaRoots.contains(where: { actual.hasPrefix($0) }) else {
                throw VMError(EPERM, "\(actual) lies outside every media directory")
            }
        }
        guard st.st_size > 0 else { throw VMError(EINVAL, "\(path) is empty, not an image") }
        return OpenedImage(path: path, kind: .file, fd: fd, identity: ImageIdentity(st, size: UInt64(st.st_size)))
    }

    private static func descriptorPath(_ fd: Int32) -> String? {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/fd/\(fd)", &buf, buf.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Is `path` (already resolved) inside the repository?
    func isInRepository(_ path: String) -> Bool { mediaRoots.contains { path.hasPrefix($0) } }
}

/// The device number of the daemon's own mount (`UInt64.max` until mounted).
final class OwnMount: Sendable {
    let device = Atomic<UInt64>(UInt64.max)
}

/// Runs image opens on threads of their own and waits for each at most a timeout, so a
/// request never hangs on a file system that does not answer. An open still running when
/// its caller gave up closes its descriptor when it ends; at most `limit` may be left
/// running at once, after which inserts are refused at once (`EAGAIN`) until some end.
final class BoundedOpener: Sendable {
    private enum Outcome: Sendable { case running, abandoned, done(Result<(Int32, String), VMError>) }
    private final class Attempt: Sendable {
        let outcome = Mutex<Outcome>(.running)
        let finished = DispatchSemaphore(value: 0)
    }
    private let stuck = Atomic<Int>(0)
    let limit = 16

    func run(timeout: Double, what: String,
             _ body: @escaping @Sendable () throws(VMError) -> (Int32, String)) throws(VMError) -> (Int32, String) {
        guard stuck.load(ordering: .relaxed) < limit else {
            throw VMError(EAGAIN, "\(limit) image opens are still waiting for their file systems; try again later")
        }
        let attempt = Attempt()
        DetachedThread.detach { [self] in
            let result: Result<(Int32, String), VMError>
            do throws(VMError) { result = .success(try body()) } catch { result = .failure(error) }
            let abandoned = attempt.outcome.withLock { o -> Bool in
                if case .abandoned = o { return true }
                o = .done(result)
                return false
            }
            if abandoned {
                if case .success(let (fd, _)) = result { close(fd) }
                stuck.subtract(1, ordering: .relaxed)
                Log.info("the open of \(what.replacingNewlines()) ended after its insert had been refused")
            }
            attempt.finished.signal()
        }
        _ = attempt.finished.wait(timeout: .now() + timeout)
        let outcome = attempt.outcome.withLock { o -> Outcome in
            if case .running = o { o = .abandoned; return .abandoned }
            return o
        }
        switch outcome {
        case .done(let r): return try r.get()
        default:
            stuck.add(1, ordering: .relaxed)
            throw VMError(EIO, "opening \(what) did not finish within \(Int(timeout)) s (its file system does not answer)")
        }
    }
}

/// A plain POSIX thread for work that may block for long (GCD's pool is shared and bounded).
enum DetachedThread {
    static func detach(_ body: @escaping @Sendable () -> Void) {
        final class Box: @unchecked Sendable { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
        defer { pthread_attr_destroy(&attr) }
        var tid = pthread_t()
        let arg = Unmanaged.passRetained(Box(body)).toOpaque()
        let rc = pthread_create(&tid, &attr, { raw in
            Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, arg)
        if rc != 0 {
            Unmanaged<Box>.fromOpaque(arg).takeRetainedValue().body()
        }
    }
}
