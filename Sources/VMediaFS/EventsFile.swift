import FuseKernel
import Glibc
import Synchronization
import VirtualMedia

/// `MOUNTPOINT/events`: read-only; each open is a reader of the host's event stream from
/// that moment on.
struct EventsNode: TreeNode {
    let fs: VMediaFileSystem
    var key: NodeKey { .events }

    func attributes() throws(FSError) -> FileAttributes { fs.attributes(key, mode: S_IFREG | 0o444) }

    func open(flags: Int32, _ ctx: RequestContext) throws(FSError) -> OpenResult {
        guard (flags & O_ACCMODE) == O_RDONLY else { throw FSError(EACCES) }
        // Seekable: a read below what this reader was handed reads it again (bash's `read`
        // seeks back), any other offset takes the next bytes (docs/contract.md, events).
        return OpenResult(handle: EventsHandle(fs: fs).retainForKernel(), directIO: true)
    }
}

/// An open `events` file: a subscription to the host's event stream. A read with nothing
/// to give waits (its reply is kept and answered when a line arrives, or with EINTR when
/// the reader gives up); `poll` reports POLLIN when lines are waiting.
///
/// libfuse may call the interrupt callback at once, inside the registration, while it
/// holds the request's lock; the callback then must not answer. So it only sets
/// `interrupted`, and the reader checks that flag when it stores its reply.
final class EventsHandle: OpenHandle, @unchecked Sendable {
    private struct Waiting: ~Copyable {
        var reply: DataReply? = nil
        var hasReply = false
        var size = 0
        var interrupted = false
        var poll: PollHandle?
    }
    private let waiting = Mutex(Waiting())
    private var subscription: EventSubscription!
    private let bus: EventBus

    init(fs: VMediaFileSystem) {
        bus = fs.host.events
        super.init()
        subscription = bus.subscribe { [weak self] in self?.wake() }
    }

    /// What this reader has been handed, at least the last `historyLimit` bytes of it, with the
    /// stream offset of its first byte. A reader may seek back into it and read again:
    /// bash's `read` reads ahead and seeks back to the end of the line it used.
    private let history = Mutex<(bytes: [UInt8], start: UInt64)>(([], 0))
    static let historyLimit = 65536

    /// Serves a read of this reader's stream, which starts when it opened `events`:
    /// offsets below what it has been handed read those bytes again (while kept), any
    /// other offset takes the next bytes, and waits for them when none are there. With
    /// O_NONBLOCK (at open, or later through `fcntl`) it answers EAGAIN instead of waiting.
    override func read(offset: UInt64, size: Int, flags: Int32, reply: consuming DataReply) {
        let nonBlocking = flags & O_NONBLOCK != 0
        if let again = replay(from: offset, size: size) { return reply.data(again) }
        if let bytes = takeNew(maxBytes: size) { return reply.data(bytes) }
        if nonBlocking { return reply.fail(EAGAIN) }
        waiting.withLock { $0.interrupted = false }
        reply.notifyOnInterrupt(id: fh)
        var r: DataReply? = Optional(reply)
        let refused = waiting.withLock { w -> DataReply? in
            if w.interrupted || w.hasReply { return r.take() }
            w.reply = r.take()
            w.hasReply = true
            w.size = size
            return nil
        }
        if let refused { refused.fail(EINTR) }
        wake()
    }

    /// Bytes already handed out, from `offset`: nil when `offset` is not before the end of
    /// them; empty (an end of file) when they are no longer kept.
    private func replay(from offset: UInt64, size: Int) -> [UInt8]? {
        history.withLock { h -> [UInt8]? in
            let end = h.start + UInt64(h.bytes.count)
            guard offset < end else { return nil }
            guard offset >= h.start else { return [] }
            let from = Int(offset - h.start)
            return Array(h.bytes[from..<min(h.bytes.count, from + size)])
        }
    }

    /// The next bytes of the stream, at most `maxBytes`, remembered for `replay`.
    /// Lock order: `waiting`, then `history`, then the subscription's queue.
    private func takeNew(maxBytes: Int) -> [UInt8]? {
        history.withLock { h -> [UInt8]? in
            guard let bytes = subscription.take(maxBytes: maxBytes) else { return nil }
            h.bytes += bytes
            // Trimmed back to the limit only once it is twice over, so that one-byte reads
            // (bash, `dd bs=1`) do not each move the whole window.
            if h.bytes.count > 2 * Self.historyLimit {
                let drop = h.bytes.count - Self.historyLimit
                h.bytes.removeFirst(drop)
                h.start += UInt64(drop)
            }
            return bytes
        }
    }

    /// Answers a waiting read if lines have arrived, and wakes a poller.
    private func wake() {
        guard let subscription, subscription.hasData else { return }
        let poll = waiting.withLock { w -> PollHandle? in
            defer { w.poll = nil }
            return w.poll
        }
        poll?.notify()
        waiting.withLock { w in
            guard w.hasReply, let bytes = takeNew(maxBytes: w.size) else { return }
            w.hasReply = false
            w.reply.take()?.data(bytes)
        }
    }

    /// The reader stopped waiting (a signal): answer its read with EINTR, or remember it.
    override func interrupt() {
        let reply = waiting.withLock { w -> DataReply? in
            guard w.hasReply else {
                w.interrupted = true
                return nil
            }
            w.hasReply = false
            return w.reply.take()
        }
        reply?.fail(EINTR)
    }

    override func poll(_ wake: PollHandle?) -> UInt32 {
        if subscription.hasData { return UInt32(POLLIN | POLLRDNORM) }
        if let wake { waiting.withLock { $0.poll = wake } }
        if subscription.hasData { self.wake() }
        return 0
    }

    override func release() {
        bus.unsubscribe(subscription)
        let reply = waiting.withLock { w -> DataReply? in
            w.hasReply = false
            return w.reply.take()
        }
        reply?.fail(EINTR)
    }
}
