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
    let request: OpaquePointer

    init(_ request: OpaquePointer) { self.request = request }

    /// Answers with an error number (`ENOENT`, `EACCES`, ...).
    public consuming func fail(_ errno: Int32) {
        fuse_reply_err(request, errno)
        discard self
    }

    /// The caller's process was told to stop waiting (the request was interrupted).
    public var isInterrupted: Bool { fuse_req_interrupted(request) != 0 }

    deinit {
        assertionFailure("a FUSE request was dropped without a reply")
        fuse_reply_err(request, EIO)
    }
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
        var p = entryParam(e)
        fuse_reply_entry(request, &p)
        discard self
    }
}

extension Reply where Answer == AttributeAnswer {
    public consuming func attributes(_ a: FileAttributes, timeout: Double) {
        var st = a.statValue
        fuse_reply_attr(request, &st, timeout)
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
        var fi = fileInfo(o)
        fuse_reply_open(request, &fi)
        discard self
    }
}

extension Reply where Answer == CreateAnswer {
    public consuming func created(_ e: Entry, _ o: OpenResult) {
        var p = entryParam(e)
        var fi = fileInfo(o)
        fuse_reply_create(request, &p, &fi)
        discard self
    }
}

extension Reply where Answer == DataAnswer {
    /// Sends `source`'s bytes. A file range goes by splice when the kernel allows it
    /// (libfuse falls back to copying otherwise).
    public consuming func data(_ source: ReadSource) {
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
        _ = bytes.withUnsafeBytes { fuse_reply_buf(request, $0.baseAddress?.assumingMemoryBound(to: CChar.self), $0.count) }
        discard self
    }
}

extension Reply where Answer == WriteAnswer {
    public consuming func written(_ count: Int) {
        fuse_reply_write(request, count)
        discard self
    }
}

extension Reply where Answer == StatusAnswer {
    public consuming func ok() {
        fuse_reply_err(request, 0)
        discard self
    }
}

extension Reply where Answer == StatfsAnswer {
    public consuming func statistics(_ s: VolumeStatistics) {
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
        fuse_reply_readlink(request, path)
        discard self
    }
}

extension Reply where Answer == PollAnswer {
    public consuming func events(_ revents: UInt32) {
        fuse_reply_poll(request, revents)
        discard self
    }
}

/// A kernel poll handle: wakes a `poll(2)`/`select(2)` waiting on a file when notified.
public final class PollHandle: @unchecked Sendable {
    private let handle: OpaquePointer
    init(_ handle: OpaquePointer) { self.handle = handle }
    /// Tells the waiting process to poll again. Safe from any thread.
    public func notify() { fuse_lowlevel_notify_poll(handle) }
    deinit { fuse_pollhandle_destroy(handle) }
}

extension Reply {
    /// Asks to be told, through `FileSystem.interrupted(requestID:)`, when the caller stops
    /// waiting for this request. Register only after the reply is stored where the
    /// filesystem can find it by `id`: an already interrupted request calls back at once.
    public func notifyOnInterrupt(id: UInt64) {
        fuse_req_interrupt_func(request, { req, data in
            guard let req, let box = sessionBox(req) else { return }
            box.fileSystem.interrupted(requestID: UInt64(UInt(bitPattern: data)))
        }, UnsafeMutableRawPointer(bitPattern: UInt(id)))
    }
}

/// libfuse lets a request be answered from any thread.
extension Reply: @unchecked Sendable {}
