import FuseKernel
import Glibc
import Synchronization
import VirtualMedia

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
    /// Opened with O_NONBLOCK: a read with nothing to give answers EAGAIN instead of waiting.
    private let nonBlocking: Bool

    init(fs: VMediaFileSystem, nonBlocking: Bool) {
        bus = fs.host.events
        self.nonBlocking = nonBlocking
        super.init()
        subscription = bus.subscribe { [weak self] in self?.wake() }
    }

    func read(size: Int, reply: consuming DataReply) {
        if let bytes = subscription.take(maxBytes: size) { return reply.data(bytes) }
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

    /// Answers a waiting read if lines have arrived, and wakes a poller.
    private func wake() {
        guard let subscription, subscription.hasData else { return }
        let poll = waiting.withLock { w -> PollHandle? in
            defer { w.poll = nil }
            return w.poll
        }
        poll?.notify()
        waiting.withLock { w in
            guard w.hasReply, let bytes = subscription.take(maxBytes: w.size) else { return }
            w.hasReply = false
            w.reply.take()?.data(bytes)
        }
    }

    /// The reader stopped waiting (a signal): answer its read with EINTR, or remember it.
    func interrupt() {
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

    /// The size `fstat` shows for this reader: what it has read plus what is waiting, so
    /// that a follower (`tail -f`) sees the file grow when lines arrive.
    var streamLength: UInt64 { subscription.streamLength }

    func poll(_ wake: PollHandle?) -> UInt32 {
        if subscription.hasData { return UInt32(POLLIN | POLLRDNORM) }
        if let wake { waiting.withLock { $0.poll = wake } }
        if subscription.hasData { self.wake() }
        return 0
    }

    func close() {
        bus.unsubscribe(subscription)
        let reply = waiting.withLock { w -> DataReply? in
            w.hasReply = false
            return w.reply.take()
        }
        reply?.fail(EINTR)
    }
}
