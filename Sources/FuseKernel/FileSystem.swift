import Glibc

/// An operation's failure as the kernel sees it: an error number.
public struct FSError: Error, Sendable, Equatable {
    public var errno: Int32
    public init(_ errno: Int32) { self.errno = errno }
}

/// A filesystem served through `FuseSession`: one method per FUSE operation.
///
/// Every method receives a reply that it must answer exactly once, either before it
/// returns or later from any thread (a blocking read may keep its reply until data
/// arrives). Methods are called on libfuse's worker threads, many at once. Operations
/// that a filesystem does not implement answer `ENOSYS` (the defaults below).
public protocol FileSystem: AnyObject, Sendable {
    /// The session is mounted and about to serve requests.
    func sessionStarted(_ session: FuseSession)
    func lookup(_ ctx: RequestContext, parent: UInt64, name: String, reply: consuming EntryReply)
    func getattr(_ ctx: RequestContext, ino: UInt64, handle: UInt64?, reply: consuming AttributeReply)
    func setattr(_ ctx: RequestContext, ino: UInt64, changes: AttributeChanges, reply: consuming AttributeReply)
    /// access(2), asked only on mounts without `default_permissions` (the kernel checks
    /// modes itself otherwise). `mask` is R_OK, W_OK, X_OK or F_OK (0).
    func access(_ ctx: RequestContext, ino: UInt64, mask: Int32, reply: consuming StatusReply)
    func readlink(_ ctx: RequestContext, ino: UInt64, reply: consuming LinkReply)
    func mkdir(_ ctx: RequestContext, parent: UInt64, name: String, mode: UInt32, reply: consuming EntryReply)
    func unlink(_ ctx: RequestContext, parent: UInt64, name: String, reply: consuming StatusReply)
    func rmdir(_ ctx: RequestContext, parent: UInt64, name: String, reply: consuming StatusReply)
    func rename(_ ctx: RequestContext, parent: UInt64, name: String, newParent: UInt64, newName: String,
                flags: UInt32, reply: consuming StatusReply)
    func create(_ ctx: RequestContext, parent: UInt64, name: String, mode: UInt32, flags: Int32,
                reply: consuming CreateReply)
    func open(_ ctx: RequestContext, ino: UInt64, flags: Int32, reply: consuming OpenReply)
    /// `flags` are the open file's flags as they are now (`fcntl(F_SETFL)` may have set
    /// O_NONBLOCK since the open).
    func read(_ ctx: RequestContext, ino: UInt64, handle: UInt64, offset: UInt64, size: Int, flags: Int32,
              reply: consuming DataReply)
    /// `data` is valid until the reply is sent or the method returns, whichever comes
    /// first (over io_uring the answer is written into the buffer the data came in).
    func write(_ ctx: RequestContext, ino: UInt64, handle: UInt64, offset: UInt64,
               data: UnsafeRawBufferPointer, reply: consuming WriteReply)
    func flush(_ ctx: RequestContext, ino: UInt64, handle: UInt64, reply: consuming StatusReply)
    func release(_ ctx: RequestContext, ino: UInt64, handle: UInt64, flags: Int32, reply: consuming StatusReply)
    /// Lists a directory: when it is opened, or, where the kernel opens directories by
    /// itself (`SessionOptions.skipOpendir`), when a listing starts at offset 0. The
    /// session pages the snapshot to the kernel. Include "." and "..".
    func listDirectory(_ ctx: RequestContext, ino: UInt64) throws(FSError) -> [DirectoryItem]
    /// True when the kernel may keep a directory's listing between opens (no READDIR on
    /// later opens). It drops the kept listing by itself when the directory changes
    /// through this mount (mkdir, create, unlink, rename) or when a fresh getattr shows a
    /// new mtime, so a directory that changes behind the kernel's back must move its mtime.
    /// Asked only where the kernel sends OPENDIR: without it the kernel keeps every
    /// listing, and every directory must follow that rule.
    func directoryListingMayBeKept(ino: UInt64) -> Bool
    func statfs(_ ctx: RequestContext, ino: UInt64, reply: consuming StatfsReply)
    /// `poll(2)` on an open file. `handle` is nil when the caller asked not to be woken.
    func poll(_ ctx: RequestContext, ino: UInt64, handle: UInt64, wake: PollHandle?, reply: consuming PollReply)
    /// The kernel gave up waiting for the request (e.g. the caller got a signal).
    func interrupted(requestID: UInt64)
}

extension FileSystem {
    public func sessionStarted(_ session: FuseSession) {}
    public func lookup(_ ctx: RequestContext, parent: UInt64, name: String, reply: consuming EntryReply) { reply.fail(ENOSYS) }
    public func getattr(_ ctx: RequestContext, ino: UInt64, handle: UInt64?, reply: consuming AttributeReply) { reply.fail(ENOSYS) }
    public func setattr(_ ctx: RequestContext, ino: UInt64, changes: AttributeChanges, reply: consuming AttributeReply) { reply.fail(ENOSYS) }
    /// ENOSYS: the kernel stops asking and allows every access.
    public func access(_ ctx: RequestContext, ino: UInt64, mask: Int32, reply: consuming StatusReply) { reply.fail(ENOSYS) }
    public func readlink(_ ctx: RequestContext, ino: UInt64, reply: consuming LinkReply) { reply.fail(ENOSYS) }
    public func mkdir(_ ctx: RequestContext, parent: UInt64, name: String, mode: UInt32, reply: consuming EntryReply) { reply.fail(ENOSYS) }
    public func unlink(_ ctx: RequestContext, parent: UInt64, name: String, reply: consuming StatusReply) { reply.fail(ENOSYS) }
    public func rmdir(_ ctx: RequestContext, parent: UInt64, name: String, reply: consuming StatusReply) { reply.fail(ENOSYS) }
    public func rename(_ ctx: RequestContext, parent: UInt64, name: String, newParent: UInt64, newName: String,
                       flags: UInt32, reply: consuming StatusReply) { reply.fail(ENOSYS) }
    public func create(_ ctx: RequestContext, parent: UInt64, name: String, mode: UInt32, flags: Int32,
                       reply: consuming CreateReply) { reply.fail(ENOSYS) }
    public func open(_ ctx: RequestContext, ino: UInt64, flags: Int32, reply: consuming OpenReply) { reply.fail(ENOSYS) }
    public func read(_ ctx: RequestContext, ino: UInt64, handle: UInt64, offset: UInt64, size: Int, flags: Int32,
                     reply: consuming DataReply) { reply.fail(ENOSYS) }
    public func write(_ ctx: RequestContext, ino: UInt64, handle: UInt64, offset: UInt64,
                      data: UnsafeRawBufferPointer, reply: consuming WriteReply) { reply.fail(ENOSYS) }
    public func flush(_ ctx: RequestContext, ino: UInt64, handle: UInt64, reply: consuming StatusReply) { reply.ok() }
    public func release(_ ctx: RequestContext, ino: UInt64, handle: UInt64, flags: Int32, reply: consuming StatusReply) { reply.ok() }
    public func listDirectory(_ ctx: RequestContext, ino: UInt64) throws(FSError) -> [DirectoryItem] { throw FSError(ENOTDIR) }
    public func directoryListingMayBeKept(ino: UInt64) -> Bool { false }
    public func statfs(_ ctx: RequestContext, ino: UInt64, reply: consuming StatfsReply) { reply.statistics(VolumeStatistics()) }
    public func poll(_ ctx: RequestContext, ino: UInt64, handle: UInt64, wake: PollHandle?, reply: consuming PollReply) {
        reply.events(UInt32(POLLIN | POLLRDNORM))
    }
    public func interrupted(requestID: UInt64) {}
}
