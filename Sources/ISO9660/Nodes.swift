/// Identifies one node (file, directory, symlink...) of an open `Volume`.
///
/// Ids are handed out as directories are first listed and stay valid, pointing to the same node,
/// for the life of the `Volume`. The root is always `Volume.rootID`.
public typealias NodeID = UInt64

/// What a node is.
public enum NodeKind: Sendable, Equatable {
    case directory, regularFile, symlink
    /// Devices, FIFOs and sockets (Rock Ridge PX/PN, UDF file types 6, 7, 9, 10).
    case other
}

/// A POSIX time: seconds since 1970-01-01 UTC plus nanoseconds.
public struct Timespec: Sendable, Equatable, Hashable {
    public var seconds: Int64
    public var nanoseconds: Int32
    public init(seconds: Int64, nanoseconds: Int32 = 0) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }
    /// The epoch, used when a disc records no time.
    public static let zero = Timespec(seconds: 0)
}

/// What `stat` shows for a node.
public struct NodeAttributes: Sendable, Equatable {
    public var kind: NodeKind
    /// Bytes of data; for a symlink, the length of its target in UTF-8.
    public var size: UInt64
    /// Permission bits plus file type bits, as in `st_mode`.
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var linkCount: UInt32
    public var modificationTime: Timespec
    public var accessTime: Timespec
    public var changeTime: Timespec
    /// The target of a symlink, as recorded (may be absolute, relative or dangling).
    public var symlinkTarget: String?

    public init(kind: NodeKind, size: UInt64, mode: UInt32, uid: UInt32 = 0, gid: UInt32 = 0,
                linkCount: UInt32 = 1, modificationTime: Timespec = .zero, accessTime: Timespec = .zero,
                changeTime: Timespec = .zero, symlinkTarget: String? = nil) {
        self.kind = kind
        self.size = size
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.linkCount = linkCount
        self.modificationTime = modificationTime
        self.accessTime = accessTime
        self.changeTime = changeTime
        self.symlinkTarget = symlinkTarget
    }
}

/// One name in a directory listing.
public struct DirectoryEntry: Sendable, Equatable {
    public var name: String
    public var id: NodeID
    public var kind: NodeKind
    public init(name: String, id: NodeID, kind: NodeKind) {
        self.name = name
        self.id = id
        self.kind = kind
    }
}

/// Where a file's bytes are on the disc, in file order.
public enum Extent: Sendable, Equatable {
    /// `length` bytes at an absolute byte offset on the disc. On a damaged disc the range may run
    /// past the disc's end; reading there fails with `DiscFormatError.Code.outOfRange`.
    case disc(byteOffset: UInt64, length: UInt64)
    /// Sparse or unrecorded: reads as zeros.
    case zeros(length: UInt64)
    /// Data stored inside the file's own descriptor (UDF embedded data).
    case inline([UInt8])

    /// The number of file bytes this extent covers.
    public var length: UInt64 {
        switch self {
        case .disc(_, let length), .zeros(let length): return length
        case .inline(let bytes): return UInt64(bytes.count)
        }
    }
}

/// Which of the disc's trees a `Volume` shows.
public enum VolumeFormat: Sendable, Equatable {
    /// ISO 9660 names (levels 1-3), `;1` and the dot of extension-less names removed.
    case iso9660
    /// The ISO 9660 tree with Rock Ridge names, modes, owners, times and symlinks.
    case rockRidge
    /// The Joliet (UCS-2) tree of a supplementary volume descriptor.
    case joliet
    /// The UDF file set (UDF-only or UDF-bridge discs).
    case udf
}

/// Choices and safety limits for `Volume.open`.
///
/// The limits bound memory and time on hostile images. When `maxEntriesPerDirectory`, `maxNodes`,
/// `maxDirectoryBytes` or `maxExtentsPerFile` is reached the affected listing is cut short (a
/// truncated but safe view); `maxDepth` is a hard cap that fails with
/// `DiscFormatError.Code.limitExceeded` instead, so that a deep tree is never shown silently cut.
public struct OpenOptions: Sendable {
    /// Show this tree instead of the automatic choice (Rock Ridge, UDF, Joliet, ISO 9660);
    /// `Volume.open` throws if the disc does not have it.
    public var format: VolumeFormat?
    /// At most this many entries are listed per directory.
    public var maxEntriesPerDirectory: Int
    /// At most this many nodes per volume (over all directories listed so far).
    public var maxNodes: Int
    /// Directories nested deeper than this (the root is depth 0) cannot be listed: `children(of:)`
    /// and `lookup(_:in:)` on them throw `DiscFormatError.Code.limitExceeded`. Real discs nest
    /// deeper than ISO 9660's 8 levels through Rock Ridge relocation, so the default is large;
    /// directory loops are cut off by the ancestor check, not by this limit.
    public var maxDepth: Int
    /// At most this many bytes of one directory's data are parsed. The default leaves room for
    /// `maxEntriesPerDirectory` of the largest entries: a Rock Ridge record of a 255-byte name
    /// fills about 254 bytes (8 to a sector), a UDF file identifier up to 296.
    public var maxDirectoryBytes: Int
    /// At most this many extents per file (multi-extent ISO files, UDF allocation descriptors).
    public var maxExtentsPerFile: Int
    /// At most this many bytes of directory data are read over the life of the volume, and never
    /// more than the disc holds (nil: the disc's size). The directories of a real disc lie in
    /// extents of their own, so listing all of them reads each byte once at most; a hostile disc
    /// whose thousands of directories point into the same large extents would otherwise make a
    /// walk of the tree read `maxDirectoryBytes` per directory. Past the budget, listing a
    /// directory not yet listed fails with `DiscFormatError.Code.limitExceeded`.
    public var maxTotalDirectoryBytes: UInt64?

    /// The default `maxDepth`: deeper than any tree the tools write (xorriso stops where an image
    /// path passes 4096 bytes: about 2048 levels of one-letter names), small enough that walking
    /// a hostile chain of that depth stays quick.
    public static let defaultMaxDepth = 4096

    public init(format: VolumeFormat? = nil, maxEntriesPerDirectory: Int = 250_000,
                maxNodes: Int = 2_000_000, maxDepth: Int = OpenOptions.defaultMaxDepth,
                maxDirectoryBytes: Int = 96 << 20, maxExtentsPerFile: Int = 65_536,
                maxTotalDirectoryBytes: UInt64? = nil) {
        self.format = format
        self.maxEntriesPerDirectory = maxEntriesPerDirectory
        self.maxNodes = maxNodes
        self.maxDepth = maxDepth
        self.maxDirectoryBytes = maxDirectoryBytes
        self.maxExtentsPerFile = maxExtentsPerFile
        self.maxTotalDirectoryBytes = maxTotalDirectoryBytes
    }
}

/// `st_mode` file type bits.
enum FileType {
    static let mask: UInt32 = 0o170000
    static let directory: UInt32 = 0o040000
    static let regular: UInt32 = 0o100000
    static let symlink: UInt32 = 0o120000
    static let fifo: UInt32 = 0o010000
    static let character: UInt32 = 0o020000
    static let block: UInt32 = 0o060000
    static let socket: UInt32 = 0o140000

    static func bits(for kind: NodeKind) -> UInt32 {
        switch kind {
        case .directory: return directory
        case .regularFile: return regular
        case .symlink: return symlink
        case .other: return fifo
        }
    }

    static func kind(ofMode mode: UInt32) -> NodeKind? {
        switch mode & mask {
        case directory: return .directory
        case regular: return .regularFile
        case symlink: return .symlink
        case fifo, character, block, socket: return .other
        default: return nil
        }
    }
}
