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

    init(_ st: stat, size: UInt64) {
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        self.size = size
        modificationNanos = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
    }
    public init(device: UInt64, inode: UInt64, size: UInt64, modificationNanos: Int64) {
        self.device = device; self.inode = inode; self.size = size; self.modificationNanos = modificationNanos
    }
}

/// The kind of thing loaded in a drive.
public enum MediaKind: String, Sendable, Codable {
    case file
    case device
}

/// A loaded image: an open descriptor that the emulator reads through (and that the FUSE
/// layer may splice from), and the identity it had when loaded.
public final class ImageSource: BlockSource, @unchecked Sendable {
    public let path: String
    public let kind: MediaKind
    public let identity: ImageIdentity
    public let byteCount: UInt64
    private let fd: Int32
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
        self.path = path; self.kind = kind; self.fd = fd; self.identity = identity
        self.byteCount = identity.size; self.onChange = onChange
        pathCheckedAt.store(Self.monotonicNanos(), ordering: .relaxed)
    }

    deinit {
        if kind == .device { _ = vmfsLockDoor(fd, false) }
        close(fd)
    }

    public var fileDescriptor: Int32? { fd }

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

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(MediumError) -> Int {
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
}

/// Locks or unlocks a host drive's door (CDROM_LOCKDOOR); devices without a door
/// (loop devices) say ENOTTY, which is fine.
func vmfsLockDoor(_ fd: Int32, _ lock: Bool) -> Bool {
    vmfs_ioctl_int(fd, vmfs_ioctl_cdrom_lockdoor(), lock ? 1 : 0) == 0
}
