import CPosixShims
import Glibc

/// Where media may come from: the repository folders and the host's own drives.
public struct MediaConfiguration: Sendable {
    /// The virtual media repository (`--media-dir`), as given.
    public var mediaDirectories: [String]
    /// Host block devices that may be loaded (`--host-drive`).
    public var hostDrives: [String]
    public init(mediaDirectories: [String] = [], hostDrives: [String] = []) {
        self.mediaDirectories = mediaDirectories; self.hostDrives = hostDrives
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
    }

    /// Opens `path` as `user` and checks it against the contract's refusal table.
    /// The caller owns the returned descriptor.
    func open(_ path: String, as user: Credentials) throws(VMError) -> OpenedImage {
        guard !path.isEmpty else { throw VMError(EINVAL, "empty path") }
        guard path.utf8.count < Int(PATH_MAX) else { throw VMError(ENAMETOOLONG, "path longer than PATH_MAX") }
        let (fd, real) = try user.asFileUser { () throws(VMError) -> (Int32, String) in
            guard let r = realpath(path, nil) else { throw VMError.system(errno, path) }
            let real = String(cString: r)
            free(r)
            var st = stat()
            guard stat(real, &st) == 0 else { throw VMError.system(errno, real) }
            var flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC
            // O_EXCL on a block device: refused while the host has it mounted or another
            // opener holds it exclusively.
            if (st.st_mode & S_IFMT) == S_IFBLK { flags |= O_EXCL }
            let fd = Glibc.open(real, flags)
            guard fd >= 0 else {
                let e = errno
                if e == EBUSY { throw VMError(EBUSY, "host drive \(real) is in use elsewhere") }
                throw VMError.system(e, real)
            }
            return (fd, real)
        }
        do {
            return try check(fd: fd, path: real)
        } catch {
            close(fd)
            throw error
        }
    }

    private func check(fd: Int32, path: String) throws(VMError) -> OpenedImage {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw VMError.system(errno, path) }
        let type = st.st_mode & S_IFMT
        guard type == S_IFREG || type == S_IFBLK else { throw VMError(EINVAL, "\(path) is not a regular file or block device") }
        if st.st_mode & S_IWOTH != 0 { throw VMError(EPERM, "\(path) is world-writable") }
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
            let actual = descriptorPath(fd) ?? path
            guard mediaRoots.contains(where: { actual.hasPrefix($0) }) else {
                throw VMError(EPERM, "\(actual) lies outside every media directory")
            }
        }
        guard st.st_size > 0 else { throw VMError(EINVAL, "\(path) is empty, not an image") }
        return OpenedImage(path: path, kind: .file, fd: fd, identity: ImageIdentity(st, size: UInt64(st.st_size)))
    }

    private func descriptorPath(_ fd: Int32) -> String? {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/fd/\(fd)", &buf, buf.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Is `path` (already resolved) inside the repository?
    func isInRepository(_ path: String) -> Bool { mediaRoots.contains { path.hasPrefix($0) } }
}
