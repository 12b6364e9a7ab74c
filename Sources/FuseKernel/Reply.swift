import CFuse3
import Glibc

/// Phantom types naming what a `Reply` may answer with. Each operation gets a reply of
/// its own kind, so that a handler cannot answer `open` with directory data.
public enum EntryAnswer {}
public enum AttributeAnswer {}
public enum OpenAnswer {}
public enum CreateAnswer {}
public enum DataAnswer {}
public enum WriteAnswer {}
public enum StatusAnswer {}
public enum StatfsAnswer {}
public enum LinkAnswer {}
public enum PollAnswer {}

/// The answer to one kernel request. It must be used exactly once: every success method
/// and `fail` consume it. One that is dropped unanswered is a bug: debug builds stop, and
/// release builds answer `EIO` so that the caller never hangs.
public struct Reply<Answer>: ~Copyable {
    let route: ReplyRoute

    init(_ request: OpaquePointer) { self.route = .libfuse(request) }
    init(_ request: KernelRequest) { self.route = .kernel(request) }

    /// Answers with an error number (`ENOENT`, `EACCES`, ...).
    public consuming func fail(_ errno: Int32) {
        route.fail(errno)
        discard self
    }

    /// The caller's process was told to stop waiting (the request was interrupted).
    public var isInterrupted: Bool {
        switch route {
        case .libfuse(let request): return fuse_req_interrupted(request) != 0
        case .kernel(let request): return request.channel.isInterrupted(request.unique)
        }
    }

    deinit {
        assertionFailure("a FUSE request was dropped without a reply")
        route.fail(EIO)
    }
}

/// Where an answer goes: to libfuse's request object, or straight to the kernel through
/// vmediafs's own wire layer (`KernelChannel`).
enum ReplyRoute {
    case libfuse(OpaquePointer)
    case kernel(KernelRequest)

    func fail(_ errno: Int32) {
        switch self {
        case .libfuse(let request): fuse_reply_err(request, errno)
        case .kernel(let request): request.channel.reply(request, error: errno)
        }
    }
}

/// One request read from /dev/fuse by the wire layer: its id and the channel to answer on.
/// The channel is held unretained so that a `Reply` stays trivially destroyed (`discard`
/// needs that); the session keeps the channel alive for as long as it serves, and replies
/// are never answered after the session is gone.
struct KernelRequest {
    let unique: UInt64
    /// The inode the request is about (FUSE's nodeid).
    var node: UInt64 = 0
    private let unmanaged: Unmanaged<KernelChannel>
    /// The io_uring entry the request came in on (answered by committing it), or nil for a
    /// request read from /dev/fuse (answered by a write).
    private let ringEntry: Unmanaged<RingEntry>?
    init(unique: UInt64, channel: KernelChannel, entry: RingEntry? = nil) {
        self.unique = unique
        self.unmanaged = .passUnretained(channel)
        self.ringEntry = entry.map { .passUnretained($0) }
    }
    var channel: KernelChannel { unmanaged.takeUnretainedValue() }
    var entry: RingEntry? { ringEntry?.takeUnretainedValue() }
}

public typealias EntryReply = Reply<EntryAnswer>
public typealias AttributeReply = Reply<AttributeAnswer>
public typealias OpenReply = Reply<OpenAnswer>
public typealias CreateReply = Reply<CreateAnswer>
public typealias DataReply = Reply<DataAnswer>
public typealias WriteReply = Reply<WriteAnswer>
/// For operations whose only answer is success or an error (unlink, rmdir, rename, flush, release).
public typealias StatusReply = Reply<StatusAnswer>
public typealias StatfsReply = Reply<StatfsAnswer>
public typealias LinkReply = Reply<LinkAnswer>
public typealias PollReply = Reply<PollAnswer>

func entryParam(_ e: Entry) -> fuse_entry_param {
    var p = fuse_entry_param()
    p.ino = e.attributes.ino
    p.generation = e.generation
    p.attr = e.attributes.statValue
    p.attr_timeout = e.attributeTimeout
    p.entry_timeout = e.entryTimeout
    return p
}

extension Reply where Answer == EntryAnswer {
    public consuming func entry(_ e: Entry) {
        switch route {
        case .libfuse(let request):
            var p = entryParam(e)
            fuse_reply_entry(request, &p)
        case .kernel(let k):
            k.channel.reply(k, value: WireFormat.entry(e))
        }
        discard self
    }
}

extension Reply where Answer == AttributeAnswer {
    public consuming func attributes(_ a: FileAttributes, timeout: Double) {
        switch route {
        case .libfuse(let request):
            var st = a.statValue
            fuse_reply_attr(request, &st, timeout)
        case .kernel(let k):
            k.channel.reply(k, value: WireFormat.attributes(a, timeout: timeout))
        }
        discard self
    }
}

func fileInfo(_ o: OpenResult, base: fuse_file_info = fuse_file_info()) -> fuse_file_info {
    var fi = base
    fi.fh = o.handle
    fi.direct_io = o.directIO ? 1 : 0
    fi.keep_cache = o.keepCache ? 1 : 0
    fi.nonseekable = o.nonSeekable ? 1 : 0
    fi.noflush = o.noFlush ? 1 : 0
    return fi
}

extension Reply where Answer == OpenAnswer {
    public consuming func opened(_ o: OpenResult) {
        switch route {
        case .libfuse(let request):
            var fi = fileInfo(o)
            fuse_reply_open(request, &fi)
            if let d = o.passthroughDescriptor { close(d) }     // libfuse 3.14 has no passthrough
        case .kernel(let k):
            k.channel.reply(k, value: k.channel.openAnswer(o, node: k.node))
        }
        discard self
    }
}

extension Reply where Answer == CreateAnswer {
    public consuming func created(_ e: Entry, _ o: OpenResult) {
        switch route {
        case .libfuse(let request):
            var p = entryParam(e)
            var fi = fileInfo(o)
            fuse_reply_create(request, &p, &fi)
        case .kernel(let k):
            k.channel.reply(k, WireFormat.entry(e), k.channel.openAnswer(o, node: e.attributes.ino))
        }
        discard self
    }
}

extension Reply where Answer == DataAnswer {
    /// Sends `source`'s bytes. A file range goes by splice when the kernel allows it
    /// (libfuse falls back to copying otherwise).
    public consuming func data(_ source: ReadSource) {
        let request: OpaquePointer
        switch route {
        case .libfuse(let r): request = r
        case .kernel(let k):
            k.channel.replyData(k, source)
            discard self
            return
        }
        switch source {
        case .bytes(let buffer):
            fuse_reply_buf(request, buffer.baseAddress?.assumingMemoryBound(to: CChar.self), buffer.count)
        case .file(let fd, let offset, let length):
            var bv = fuse_bufvec()
            bv.count = 1
            bv.idx = 0
            bv.off = 0
            bv.buf.size = length
            bv.buf.flags = fuse_buf_flags(rawValue: FUSE_BUF_IS_FD.rawValue | FUSE_BUF_FD_SEEK.rawValue)
            bv.buf.fd = fd
            bv.buf.pos = off_t(offset)
            let rc = fuse_reply_data(request, &bv, fuse_buf_copy_flags(rawValue: 0))
            if rc < 0 {
                // The reply could not be built (e.g. the read from the descriptor failed):
                // libfuse has not answered, so answer with the error.
                fuse_reply_err(request, -rc)
            }
        }
        discard self
    }

    /// Sends a copy of `bytes`.
    public consuming func data(_ bytes: [UInt8]) {
        switch route {
        case .libfuse(let request):
            _ = bytes.withUnsafeBytes { fuse_reply_buf(request, $0.baseAddress?.assumingMemoryBound(to: CChar.self), $0.count) }
        case .kernel(let k):
            bytes.withUnsafeBytes { k.channel.replyData(k, .bytes($0)) }
        }
        discard self
    }
}

extension Reply where Answer == WriteAnswer {
    public consuming func written(_ count: Int) {
        switch route {
        case .libfuse(let request): fuse_reply_write(request, count)
        case .kernel(let k): k.channel.reply(k, value: WireFormat.written(count))
        }
        discard self
    }
}

extension Reply where Answer == StatusAnswer {
    public consuming func ok() {
        route.fail(0)
        discard self
    }
}

extension Reply where Answer == StatfsAnswer {
    public consuming func statistics(_ s: VolumeStatistics) {
        let request: OpaquePointer
        switch route {
        case .libfuse(let r): request = r
        case .kernel(let k):
            k.channel.reply(k, value: WireFormat.statfs(s))
            discard self
            return
        }
        var v = statvfs()
        v.f_bsize = UInt(s.blockSize)
        v.f_frsize = UInt(s.blockSize)
        v.f_blocks = fsblkcnt_t(s.blocks)
        v.f_files = fsfilcnt_t(s.files)
        v.f_namemax = UInt(s.nameMax)
        fuse_reply_statfs(request, &v)
        discard self
    }
}

extension Reply where Answer == LinkAnswer {
    public consuming func target(_ path: String) {
        switch route {
        case .libfuse(let request): fuse_reply_readlink(request, path)
        case .kernel(let k): k.channel.reply(k, Array(path.utf8))
        }
        discard self
    }
}

extension Reply where Answer == PollAnswer {
    public consuming func events(_ revents: UInt32) {
        switch route {
        case .libfuse(let request): fuse_reply_poll(request, revents)
        case .kernel(let k): k.channel.reply(k, value: WireFormat.poll(revents))
        }
        discard self
    }
}

/// A kernel poll handle: wakes a `poll(2)`/`select(2)` waiting on a file when notified.
public final class PollHandle: @unchecked Sendable {
    private enum Target {
        case libfuse(OpaquePointer)
        case kernel(KernelChannel, UInt64)
    }
    private let target: Target
    init(_ handle: OpaquePointer) { target = .libfuse(handle) }
    init(channel: KernelChannel, kernelHandle: UInt64) { target = .kernel(channel, kernelHandle) }
    /// Tells the waiting process to poll again. Safe from any thread.
    public func notify() {
        switch target {
        case .libfuse(let handle): fuse_lowlevel_notify_poll(handle)
        case .kernel(let channel, let kh): channel.notifyPoll(kh)
        }
    }
    deinit { if case .libfuse(let handle) = target { fuse_pollhandle_destroy(handle) } }
}

extension Reply {
    /// Asks to be told, through `FileSystem.interrupted(requestID:)`, when the caller stops
    /// waiting for this request. Register only after the reply is stored where the
    /// filesystem can find it by `id`: an already interrupted request calls back at once.
    public func notifyOnInterrupt(id: UInt64) {
        switch route {
        case .libfuse(let request):
            fuse_req_interrupt_func(request, { req, data in
                guard let req, let box = sessionBox(req) else { return }
                box.fileSystem.interrupted(requestID: UInt64(UInt(bitPattern: data)))
            }, UnsafeMutableRawPointer(bitPattern: UInt(id)))
        case .kernel(let k):
            k.channel.notifyOnInterrupt(k.unique, id: id)
        }
    }
}

/// libfuse lets a request be answered from any thread.
extension Reply: @unchecked Sendable {}
