import Glibc

/// Who sent a request: the calling process's ids, as the kernel reported them.
public struct RequestContext: Sendable {
    public var uid: UInt32
    public var gid: UInt32
    public var pid: Int32
    /// Supplementary groups of the caller (read from /proc by libfuse); may be empty if unavailable.
    public var groups: [UInt32]
    /// The file creation mask of the caller (meaningful in mkdir/create).
    public var umask: UInt32

    public init(uid: UInt32, gid: UInt32, pid: Int32, groups: [UInt32], umask: UInt32 = 0o022) {
        self.uid = uid; self.gid = gid; self.pid = pid; self.groups = groups; self.umask = umask
    }
}

/// A point in time as the kernel's `struct timespec` carries it.
public struct Timestamp: Sendable, Hashable {
    public var seconds: Int64
    public var nanoseconds: Int64
    public init(seconds: Int64, nanoseconds: Int64 = 0) { self.seconds = seconds; self.nanoseconds = nanoseconds }
    public static var now: Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(seconds: Int64(ts.tv_sec), nanoseconds: Int64(ts.tv_nsec))
    }
}

/// The attributes of one inode, as `stat(2)` shows them.
public struct FileAttributes: Sendable {
    public var ino: UInt64
    /// File type and permission bits (`S_IFDIR | 0o755`).
    public var mode: UInt32
    public var linkCount: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var size: UInt64
    public var accessTime: Timestamp
    public var modificationTime: Timestamp
    public var changeTime: Timestamp
    /// Preferred I/O size reported as `st_blksize`.
    public var blockSize: UInt32

    public init(ino: UInt64, mode: UInt32, linkCount: UInt32 = 1, uid: UInt32 = 0, gid: UInt32 = 0,
                size: UInt64 = 0, accessTime: Timestamp, modificationTime: Timestamp, changeTime: Timestamp,
                blockSize: UInt32 = 4096) {
        self.ino = ino; self.mode = mode; self.linkCount = linkCount; self.uid = uid; self.gid = gid
        self.size = size; self.accessTime = accessTime; self.modificationTime = modificationTime
        self.changeTime = changeTime; self.blockSize = blockSize
    }

    var statValue: stat {
        var st = stat()
        st.st_ino = ino_t(ino)
        st.st_mode = mode_t(mode)
        st.st_nlink = nlink_t(linkCount)
        st.st_uid = uid
        st.st_gid = gid
        st.st_size = off_t(truncatingIfNeeded: size)
        st.st_blocks = blkcnt_t((size + 511) / 512)
        st.st_blksize = blksize_t(blockSize)
        st.st_atim = timespec(tv_sec: Int(atime: accessTime.seconds), tv_nsec: Int(accessTime.nanoseconds))
        st.st_mtim = timespec(tv_sec: Int(atime: modificationTime.seconds), tv_nsec: Int(modificationTime.nanoseconds))
        st.st_ctim = timespec(tv_sec: Int(atime: changeTime.seconds), tv_nsec: Int(changeTime.nanoseconds))
        return st
    }
}

extension Int {
    fileprivate init(atime value: Int64) { self = Int(truncatingIfNeeded: value) }
}

/// What `lookup`, `mkdir` and `create` answer: the inode and how long the kernel may cache it.
public struct Entry: Sendable {
    public var attributes: FileAttributes
    /// Bumped when an inode number is reused for another object.
    public var generation: UInt64
    /// Seconds the kernel may keep the name -> inode binding.
    public var entryTimeout: Double
    /// Seconds the kernel may keep the attributes.
    public var attributeTimeout: Double

    public init(attributes: FileAttributes, generation: UInt64 = 0, entryTimeout: Double, attributeTimeout: Double) {
        self.attributes = attributes; self.generation = generation
        self.entryTimeout = entryTimeout; self.attributeTimeout = attributeTimeout
    }
}

/// How an opened file should be treated by the kernel.
public struct OpenResult: Sendable {
    public var handle: UInt64
    /// Bypass the page cache: every read and write reaches the daemon.
    public var directIO: Bool
    /// Keep the pages cached from earlier opens of this inode.
    public var keepCache: Bool
    /// The file has no positions (a stream such as `events`).
    public var nonSeekable: Bool
    /// Closing it needs no FLUSH request (read-only files: nothing to complete at close).
    public var noFlush: Bool
    /// A descriptor whose bytes are this file's, for the kernel to read directly (FUSE
    /// passthrough) where the session agreed to it; reads then never reach the daemon.
    /// The session owns it once the open is answered and closes it (the kernel keeps its
    /// own reference to the file).
    public var passthroughDescriptor: Int32? = nil

    public init(handle: UInt64, directIO: Bool = false, keepCache: Bool = false, nonSeekable: Bool = false,
                noFlush: Bool = false) {
        self.handle = handle; self.directIO = directIO; self.keepCache = keepCache; self.nonSeekable = nonSeekable
        self.noFlush = noFlush
    }
}

/// One name in a directory listing.
public struct DirectoryItem: Sendable {
    public var name: String
    public var ino: UInt64
    /// The file type bits (`S_IFDIR`, `S_IFREG`, `S_IFLNK`).
    public var type: UInt32
    public init(name: String, ino: UInt64, type: UInt32) { self.name = name; self.ino = ino; self.type = type }
}

/// The subset of `setattr` a filesystem is asked to apply; nil fields are left alone.
public struct AttributeChanges: Sendable {
    public var mode: UInt32?
    public var uid: UInt32?
    public var gid: UInt32?
    public var size: UInt64?
    public var accessTime: Timestamp?
    public var modificationTime: Timestamp?
    /// The handle, when the change came through an open file (ftruncate).
    public var handle: UInt64?
    public init() {}
}

/// Filesystem-wide numbers for `statfs(2)`.
public struct VolumeStatistics: Sendable {
    public var blockSize: UInt64 = 2048
    public var blocks: UInt64 = 0
    public var files: UInt64 = 0
    public var nameMax: UInt64 = 255
    public init() {}
}

/// Where a successful read's bytes come from.
public enum ReadSource {
    /// Bytes in memory, copied into the reply.
    case bytes(UnsafeRawBufferPointer)
    /// A range of an open descriptor, sent by splice where the kernel allows (no copy through user space).
    case file(descriptor: Int32, offset: UInt64, length: Int)
}
