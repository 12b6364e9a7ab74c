import CPosixShims
import Glibc
import SCSI
import Synchronization

/// What identifies the bytes of an image when it was loaded. Any difference later means
/// the image was replaced, truncated or rewritten under the drive.
public struct ImageIdentity: Sendable, Equatable, Codable {
    public var device: UInt64
    public var inode: UInt64
    public var size: UInt64
    public var modificationNanos: Int64
    /// For media from a URL: the server's validator (an ETag, else a Last-Modified date) at
    /// insert. Empty for files and devices.
    public var validator: String = ""

    init(_ st: stat, size: UInt64) {
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        self.size = size
        modificationNanos = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
    }
    public init(device: UInt64, inode: UInt64, size: UInt64, modificationNanos: Int64, validator: String = "") {
        self.device = device; self.inode = inode; self.size = size; self.modificationNanos = modificationNanos
        self.validator = validator
    }

    /// The identity of the image a URL served with `validator` at `size` bytes. URLs have
    /// no device: `device` marks the kind, `inode` is the URL's FNV-1a hash, so that two
    /// drives holding one URL are found holding one image (the sharing rule).
    public init(url: String, size: UInt64, validator: String) {
        var hash = FNV1a()
        hash.add(url.utf8)
        self.init(device: Self.urlDevice, inode: hash.value, size: size, modificationNanos: 0, validator: validator)
    }

    /// The `device` of every URL identity ("URL" in ASCII; no block device has it).
    public static let urlDevice: UInt64 = 0x55_524C_0000_0000
}

/// The 64-bit FNV-1a hash of bytes added in order: cheap, stable across runs (unlike Swift's
/// `Hasher`), for identities and fingerprints that are stored or compared later.
public struct FNV1a {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    public init() {}
    public mutating func add<S: Sequence<UInt8>>(_ bytes: S) {
        for b in bytes { value = (value ^ UInt64(b)) &* 0x100_0000_01b3 }
    }
}

/// The kind of thing loaded in a drive.
public enum MediaKind: String, Sendable, Codable {
    case file
    case device
    /// An image on an http(s) server, read with range requests through a local cache.
    case url
}

/// An image read from a URL (implemented by the RemoteMedia module). Reads block for at most
/// the source's timeout; a server that does not answer in time gives a retryable sense
/// (02/04/01), one that changed the image or stopped serving ranges 03/11/00.
public protocol RemoteImage: AnyObject, Sendable {
    var url: String { get }
    var byteCount: UInt64 { get }
    var validator: String { get }
    /// Set, for good, once a response showed that the server no longer serves the bytes that
    /// were loaded (another validator or size, no range support).
    var changeReason: String? { get }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(MediumError) -> Int
    /// The `count` bytes at `offset` held in a local file for a zero-copy reply, fetched
    /// first if need be (as `read` would), and kept there until the lease ends; nil when the
    /// image has no such file (callers copy with `read`).
    func lease(at offset: UInt64, count: Int) throws(MediumError) -> ByteLease?
}

extension RemoteImage {
    public func lease(at offset: UInt64, count: Int) throws(MediumError) -> ByteLease? { nil }
}

/// Where URL media come from: the daemon's `--media-url` prefixes and its HTTP client.
public protocol RemoteMediaSource: Sendable {
    /// Refuses `url` unless it lies under an allowed prefix and is well formed (`EPERM`,
    /// `EINVAL`), then asks its server for the size and a validator within `timeout`
    /// seconds; refuses servers without range support (`EINVAL`), missing images (`ENOENT`),
    /// refused credentials (`EACCES`) and servers that do not answer (`EIO`).
    func open(_ url: String, timeout: Double) throws(VMError) -> any RemoteImage
    /// The image loaded before a restart, as recorded, without asking the server now: the
    /// first read compares what the server sends with `validator` and `size`.
    func reopen(_ url: String, size: UInt64, validator: String) throws(VMError) -> any RemoteImage
}

/// A loaded image: an open descriptor that the emulator reads through (and that the FUSE
/// layer may splice from), and the identity it had when loaded.
public final class ImageSource: BlockSource, @unchecked Sendable {
    public let path: String
    public let kind: MediaKind
    public let identity: ImageIdentity
    public let byteCount: UInt64
    /// Where the bytes are: a descriptor (files, devices) or a server (URLs).
    private enum Backing { case descriptor(Int32), remote(any RemoteImage) }
    private let backing: Backing
    /// Set once the backing is found changed; then every read fails.
    private let broken = Mutex<String?>(nil)
    /// `broken != nil`, readable without the lock on every READ.
    private let isBroken = Atomic<Bool>(false)
    /// When the path was last found to name this image (CLOCK_MONOTONIC, ns).
    private let pathCheckedAt = Atomic<UInt64>(0)
    /// Called once, the first time a change is found.
    let onChange: @Sendable (String) -> Void

    /// How long a READ may rely on the last check of the path (rename over, removal). The
    /// descriptor itself (size, mtime: an in-place rewrite or truncation) is checked on every
    /// READ, and an open checks both.
    static let pathRecheckNanos: UInt64 = 250_000_000

    init(path: String, kind: MediaKind, fd: Int32, identity: ImageIdentity, onChange: @escaping @Sendable (String) -> Void) {
        self.path = path; self.kind = kind; self.backing = .descriptor(fd); self.identity = identity
        self.byteCount = identity.size; self.onChange = onChange
        pathCheckedAt.store(Self.monotonicNanos(), ordering: .relaxed)
    }

    init(remote: any RemoteImage, onChange: @escaping @Sendable (String) -> Void) {
        path = remote.url; kind = .url; backing = .remote(remote)
        identity = ImageIdentity(url: remote.url, size: remote.byteCount, validator: remote.validator)
        byteCount = remote.byteCount; self.onChange = onChange
    }

    deinit {
        guard case .descriptor(let fd) = backing else { return }
        if kind == .device { _ = vmfsLockDoor(fd, false) }
        close(fd)
    }

    public var fileDescriptor: Int32? {
        if case .descriptor(let fd) = backing { return fd }
        return nil
    }

    /// Checks, before a READ is answered, that the backing still matches what was loaded:
    /// the descriptor's size and mtime every time (an fstat), the path's device and inode
    /// at most every `pathRecheckNanos` (a stat walks the path: the costly half). A block
    /// device is checked by its descriptor only.
    public func validate() throws(MediumError) { try validate(forcingPathCheck: false) }

    /// `validate()`, checking the path now when `forcingPathCheck` (an open of disc, which
    /// must see a replaced image at once and record why).
    public func validate(forcingPathCheck: Bool) throws(MediumError) {
        if isBroken.load(ordering: .acquiring) { throw MediumError(reason: broken.withLock { $0 } ?? "image \(path) changed") }
        let now = Self.monotonicNanos()
        let checkPath = forcingPathCheck || now &- pathCheckedAt.load(ordering: .relaxed) >= Self.pathRecheckNanos
        guard let why = changeReason(checkingPath: checkPath) else {
            if checkPath { pathCheckedAt.store(now, ordering: .relaxed) }
            return
        }
        let first = broken.withLock { old -> Bool in
            if old != nil { return false }
            old = why
            return true
        }
        isBroken.store(true, ordering: .releasing)
        if first { onChange(why) }
        throw MediumError(reason: why)
    }

    /// Why the backing no longer matches what was loaded, or nil if it still does.
    private func changeReason(checkingPath: Bool) -> String? {
        let fd: Int32
        switch backing {
        case .remote(let image): return image.changeReason
        case .descriptor(let d): fd = d
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return "image \(path) cannot be examined: \(String(cString: strerror(errno)))" }
        if kind == .device { return nil }
        if UInt64(st.st_size) != identity.size { return "image \(path) changed size while loaded (\(identity.size) -> \(st.st_size) bytes)" }
        let mtime = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        if mtime != identity.modificationNanos { return "image \(path) was modified while loaded" }
        guard checkingPath else { return nil }
        var pst = stat()
        if stat(path, &pst) != 0 { return "image \(path) was removed while loaded" }
        if UInt64(pst.st_dev) != identity.device || UInt64(pst.st_ino) != identity.inode {
            return "image \(path) was replaced while loaded"
        }
        return nil
    }

    private static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    public func lease(offset: UInt64, length: Int) throws(MediumError) -> ByteLease? {
        switch backing {
        case .descriptor(let fd): return ByteLease(descriptor: fd, offset: offset)
        case .remote(let image): return try remote(image) { () throws(MediumError) in try image.lease(at: offset, count: length) }
        }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(MediumError) -> Int {
        let fd: Int32
        switch backing {
        case .descriptor(let d): fd = d
        case .remote(let image): return try remote(image) { () throws(MediumError) in try image.read(into: buffer, at: offset) }
        }
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw MediumError(reason: "reading \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Runs a read of a URL image; a failure whose response showed the image changed fails
    /// every later read too, and says why once.
    private func remote<T>(_ image: any RemoteImage, _ body: () throws(MediumError) -> T) throws(MediumError) -> T {
        do {
            return try body()
        } catch {
            if image.changeReason != nil { try validate(forcingPathCheck: false) }
            throw error
        }
    }
}

/// Locks or unlocks a host drive's door (CDROM_LOCKDOOR); devices without a door
/// (loop devices) say ENOTTY, which is fine.
func vmfsLockDoor(_ fd: Int32, _ lock: Bool) -> Bool {
    vmfs_ioctl_int(fd, vmfs_ioctl_cdrom_lockdoor(), lock ? 1 : 0) == 0
}
