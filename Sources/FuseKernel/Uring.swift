import CFuseABI
import Glibc
import Dispatch
import Synchronization

// FUSE over io_uring (Linux 6.14+): after INIT, each CPU's queue gets entries, each a header
// buffer and a payload buffer registered with the kernel through an io_uring command. A
// request is delivered by completing an entry's command; it is answered by committing the
// entry (COMMIT_AND_FETCH), which in the same step hands the entry back for the next request.
// No read(2) or write(2) per request. FORGET, INTERRUPT and notifications stay on /dev/fuse,
// whose reader threads keep running.

/// One registered entry: its two buffers, its queue, and the commit id of the request it holds.
final class RingEntry: @unchecked Sendable {
    unowned let queue: RingQueue
    let index: Int
    let header: UnsafeMutablePointer<vmfs_fuse_uring_req_header>
    let payload: UnsafeMutableRawPointer
    let payloadCapacity: Int
    /// The two buffers as the kernel takes them.
    let buffers: UnsafeMutablePointer<iovec>
    /// Room for the in header and the fixed arguments, right before the payload, so that a
    /// request reads as /dev/fuse gives it without copying the payload (a WRITE's data).
    private static let headroom = 4096
    private let storage: UnsafeMutableRawPointer
    var commitID: UInt64 = 0

    init(queue: RingQueue, index: Int, payloadCapacity: Int) {
        self.queue = queue
        self.index = index
        self.payloadCapacity = payloadCapacity
        header = .allocate(capacity: 1)
        header.initialize(to: vmfs_fuse_uring_req_header())
        storage = .allocate(byteCount: Self.headroom + payloadCapacity, alignment: 4096)
        payload = storage + Self.headroom
        buffers = .allocate(capacity: 2)
        buffers[0] = iovec(iov_base: UnsafeMutableRawPointer(header), iov_len: MemoryLayout<vmfs_fuse_uring_req_header>.size)
        buffers[1] = iovec(iov_base: payload, iov_len: payloadCapacity)
    }

    deinit {
        header.deallocate()
        storage.deallocate()
        buffers.deallocate()
    }

    /// The request the kernel just put in the entry, laid out as /dev/fuse would give it:
    /// the in header and the fixed arguments are copied in front of the payload.
    func request() -> UnsafeRawBufferPointer {
        commitID = header.pointee.commit_id
        let payloadSize = min(Int(header.pointee.payload_sz), payloadCapacity)
        return withUnsafeBytes(of: &header.pointee.in_out) { inOut -> UnsafeRawBufferPointer in
            let h = inOut.loadUnaligned(as: fuse_in_header.self)
            let fixed = max(0, min(128, Int(h.len) - 40 - payloadSize))
            let start = payload - (40 + fixed)
            start.copyMemory(from: inOut.baseAddress!, byteCount: 40)
            withUnsafeBytes(of: &header.pointee.op_in) { (start + 40).copyMemory(from: $0.baseAddress!, byteCount: fixed) }
            return UnsafeRawBufferPointer(start: start, count: 40 + fixed + payloadSize)
        }
    }

    /// Answers the entry's request and asks for the next one.
    func commit(unique: UInt64, status: Int32, _ answer: UnsafeRawBufferPointer) {
        let count = min(answer.count, payloadCapacity)
        if count > 0 { payload.copyMemory(from: answer.baseAddress!, byteCount: count) }
        finish(unique: unique, status: answer.count > payloadCapacity ? -EIO : status, payloadSize: answer.count > payloadCapacity ? 0 : count)
    }

    /// A READ answer read straight from `descriptor` into the payload buffer.
    func commitRead(unique: UInt64, descriptor: Int32, offset: UInt64, length: Int) {
        let want = min(length, payloadCapacity)
        var done = 0
        while done < want {
            let n = pread(descriptor, payload + done, want - done, off_t(offset) + off_t(done))
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return finish(unique: unique, status: -errno, payloadSize: 0) }
            if n == 0 { break }
            done += n
        }
        finish(unique: unique, status: 0, payloadSize: done)
    }

    private func finish(unique: UInt64, status: Int32, payloadSize: Int) {
        var out = fuse_out_header()
        out.len = UInt32(MemoryLayout<fuse_out_header>.size + payloadSize)
        out.error = status
        out.unique = unique
        withUnsafeMutableBytes(of: &header.pointee.in_out) { $0.storeBytes(of: out, as: fuse_out_header.self) }
        header.pointee.payload_sz = UInt32(payloadSize)
        queue.submit(self, command: VMFS_FUSE_IO_URING_CMD_COMMIT_AND_FETCH)
    }
}

/// One CPU's queue: an io_uring instance, its entries, and the one thread that waits on its
/// completions. The waiter serves each request itself and, answering it, only queues the
/// commit, which goes in with the system call that waits for the next request: one wake-up
/// and one system call per request. A request that holds the waiter longer than
/// `RingWatchdog.stuckAfter` gets the queue a new waiter (`handOffIfStuck`), so that one slow
/// request does not hold up the others; the old thread parks once its request is answered.
final class RingQueue: @unchecked Sendable {
    let qid: UInt16
    let ring: OpaquePointer
    unowned let channel: KernelChannel
    private(set) var entries: [RingEntry] = []
    /// The waiter's generation (high 32 bits) and, while it serves a request, the monotonic
    /// millisecond (low 32 bits, never 0) it took it; the low bits are 0 while it waits.
    private let state = Atomic<UInt64>(1 << 32)

    init?(qid: UInt16, depth: Int, payloadCapacity: Int, channel: KernelChannel) {
        guard let r = vmfs_ring_create(UInt32(depth * 2)) else { return nil }
        self.qid = qid
        self.ring = r
        self.channel = channel
        entries = (0..<depth).map { RingEntry(queue: self, index: $0, payloadCapacity: payloadCapacity) }
    }

    /// Submits an entry's command. A commit made by the queue's current waiter is only
    /// queued: the waiter submits it when it next waits (or, handed off, before it ends).
    /// A thread that may end before the connection does (one of a pool that retires idle
    /// threads, say, answering a kept `events` read) only queues its command too, and the
    /// ring's submitter thread submits it: io_uring would cancel the command when the thread
    /// that submitted it exits, and the queue's waiter would then stop.
    func submit(_ entry: RingEntry, command: UInt32) {
        let mine = vmfs_ring_waiter_generation(ring)
        let deferred = command == VMFS_FUSE_IO_URING_CMD_COMMIT_AND_FETCH && mine != 0
            && mine == state.load(ordering: .acquiring) >> 32
        let handOver = !deferred && vmfs_thread_is_lasting() == 0
        let rc = vmfs_ring_fuse_cmd(ring, channel.fd, command, qid, entry.commitID, entry.buffers, UInt64(entry.index),
                                    deferred || handOver ? 1 : 0)
        if rc < 0 { channel.log("io_uring queue \(qid): command \(command) failed: \(String(cString: strerror(-rc)))") }
        if handOver && rc == 0 {
            if let submitter = channel.ringSubmitter { submitter.kick() } else { _ = vmfs_ring_flush(ring) }
        }
    }

    /// Threads that were handed off and have answered their request, parked until a queue
    /// needs a new waiter. They stay alive: io_uring cancels the commands a thread submitted
    /// when that thread exits, and these submitted the commits that hold this queue's entries.
    private let spares = Mutex<[Spare]>([])
    private final class Spare: @unchecked Sendable {
        let wake = DispatchSemaphore(value: 0)
        var generation: UInt64 = 0
    }

    /// Gets the queue a waiter of `generation`: a parked thread if there is one, else a new one.
    func startWaiter(generation: UInt64) -> Bool {
        if let spare = spares.withLock({ $0.popLast() }) {
            spare.generation = generation
            spare.wake.signal()
            return true
        }
        // The thread holds the channel (and through it this queue) for as long as it runs.
        let rc = KernelChannel.startThread(RingHolder({ self.run(generation: generation) }, channel))
        guard rc == 0 else {
            channel.log("io_uring queue \(qid): no thread for a new waiter: \(String(cString: strerror(rc)))")
            return false
        }
        return true
    }

    /// A waiter thread's life: it serves as the waiter of `generation`; handed off, it parks
    /// until the queue needs a waiter again. It ends only with the connection.
    private func run(generation: UInt64) {
        vmfs_thread_mark_lasting()
        // On the queue's own CPU, where its requests come from (if this process may run there).
        _ = vmfs_pin_to_cpu(Int32(qid))
        var generation = generation
        while serve(generation: generation) {
            let me = Spare()
            spares.withLock { $0.append(me) }
            while me.wake.wait(timeout: .now() + 1) == .timedOut {
                if channel.exiting.load(ordering: .relaxed) { return }
            }
            generation = me.generation
        }
    }

    /// Takes completions as the waiter of `generation` until the connection ends (false) or
    /// another thread takes its place (true).
    private func serve(generation: UInt64) -> Bool {
        vmfs_ring_set_waiter(ring, generation)
        defer { vmfs_ring_set_waiter(nil, 0) }
        while !channel.exiting.load(ordering: .relaxed) {
            var data: UInt64 = 0
            var result: Int32 = 0
            guard vmfs_ring_wait(ring, &data, &result) == 0 else { return false }
            guard result >= 0, Int(data) < entries.count else {
                // -ENOTCONN/-ECANCELED at the end of the connection; anything else is logged.
                if result != -ENOTCONN && result != -ECANCELED && result != -ENODEV || channel.debug {
                    channel.log("io_uring queue \(qid): an entry ended with \(String(cString: strerror(-result))); the queue's waiter stops")
                }
                return false
            }
            let busy = generation << 32 | RingWatchdog.now()
            state.store(busy, ordering: .releasing)
            let entry = entries[Int(data)]
            channel.dispatch(entry.request(), entry: entry)
            if !state.compareExchange(expected: busy, desired: generation << 32, ordering: .acquiringAndReleasing).exchanged {
                // Handed off while serving: the new waiter has the queue. A commit this thread
                // queued before it knew goes in now.
                vmfs_ring_set_waiter(nil, 0)
                _ = vmfs_ring_flush(ring)
                channel.ringWatchdog?.handedOffEnded()
                return true
            }
        }
        return false
    }

    /// Gives the queue a new waiter if the current one has served one request for at least
    /// `limit` milliseconds. Returns whether it did.
    func handOffIfStuck(now: UInt64, limit: UInt64) -> Bool {
        let s = state.load(ordering: .acquiring)
        let since = s & 0xffff_ffff
        guard since != 0, (now &- since) & 0xffff_ffff >= limit else { return false }
        let next = ((s >> 32) &+ 1) & 0xffff_ffff
        let generation = next == 0 ? 1 : next
        guard state.compareExchange(expected: s, desired: generation << 32, ordering: .acquiringAndReleasing).exchanged else { return false }
        if !startWaiter(generation: generation) {
            // No thread: the old waiter cannot know, so it keeps the queue when it is done.
            state.store(s & ~0xffff_ffff, ordering: .releasing)
            return false
        }
        return true
    }
}

/// Submits, from a thread that lasts as long as the connection, the commands that threads
/// which may not last have queued (`RingQueue.submit`).
final class RingSubmitter: @unchecked Sendable {
    private let queues: [RingQueue]
    private unowned let channel: KernelChannel
    private let wake = DispatchSemaphore(value: 0)
    /// How many times it has submitted for other threads.
    let rounds = Atomic<Int>(0)

    init(queues: [RingQueue], channel: KernelChannel) {
        self.queues = queues
        self.channel = channel
    }

    func kick() { wake.signal() }

    func run() {
        vmfs_thread_mark_lasting()
        while !channel.exiting.load(ordering: .relaxed) {
            guard wake.wait(timeout: .now() + 1) == .success else { continue }
            for queue in queues { _ = vmfs_ring_flush(queue.ring) }
            let n = rounds.add(1, ordering: .relaxed).newValue
            if channel.debug { channel.log("io_uring: submitted what a passing thread queued (\(n) times so far)") }
        }
    }
}

/// Watches the queues' waiters for requests that hold them (`RingQueue.handOffIfStuck`).
/// It wakes every `tick` milliseconds while the connection lasts.
final class RingWatchdog: @unchecked Sendable {
    static let stuckAfter: UInt64 = 20
    static let tick: UInt32 = 10
    /// At most this many handed-off threads at once; past it a slow request keeps its queue.
    static let maxHandedOff = 256
    private let queues: [RingQueue]
    private unowned let channel: KernelChannel
    private let handedOff = Atomic<Int>(0)
    let handOffs = Atomic<Int>(0)

    init(queues: [RingQueue], channel: KernelChannel) {
        self.queues = queues
        self.channel = channel
    }

    /// The monotonic clock in milliseconds, truncated to 32 bits and never 0.
    static func now() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        let ms = (UInt64(t.tv_sec) &* 1000 &+ UInt64(t.tv_nsec) / 1_000_000) & 0xffff_ffff
        return ms == 0 ? 1 : ms
    }

    func handedOffEnded() { handedOff.subtract(1, ordering: .relaxed) }

    func run() {
        var warned = false
        while !channel.exiting.load(ordering: .relaxed) {
            usleep(Self.tick * 1000)
            let now = Self.now()
            for queue in queues {
                guard handedOff.load(ordering: .relaxed) < Self.maxHandedOff else {
                    if !warned { channel.log("io_uring: \(Self.maxHandedOff) requests hold their threads; slow requests now hold their queues"); warned = true }
                    break
                }
                if queue.handOffIfStuck(now: now, limit: Self.stuckAfter) {
                    handedOff.add(1, ordering: .relaxed)
                    handOffs.add(1, ordering: .relaxed)
                    if channel.debug { channel.log("io_uring queue \(queue.qid): a request held its waiter for \(Self.stuckAfter) ms; a new waiter took the queue") }
                }
            }
        }
    }
}

extension KernelChannel {
    /// Sets up one queue per possible CPU, registers every entry, and starts each queue's
    /// threads. Runs on a thread of its own: a REGISTER completes only when a request comes.
    func startRing() {
        let cpus = Int(vmfs_possible_cpus())
        var queues: [RingQueue] = []
        for q in 0..<cpus {
            guard let queue = RingQueue(qid: UInt16(q), depth: 16, payloadCapacity: Self.bufferSize, channel: self) else {
                log("io_uring unavailable (\(String(cString: strerror(errno)))); requests stay on /dev/fuse")
                return
            }
            queues.append(queue)
        }
        ringQueues = queues
        let submitter = RingSubmitter(queues: queues, channel: self)
        ringSubmitter = submitter
        if Self.startThread(RingHolder(submitter.run, self)) != 0 {
            ringSubmitter = nil
            log("io_uring: no submitter thread; answers from passing threads are submitted by those threads")
        }
        for queue in queues {
            for entry in queue.entries { queue.submit(entry, command: VMFS_FUSE_IO_URING_CMD_REGISTER) }
            _ = queue.startWaiter(generation: 1)
        }
        let watchdog = RingWatchdog(queues: queues, channel: self)
        ringWatchdog = watchdog
        if Self.startThread(RingHolder(watchdog.run, self)) != 0 {
            log("io_uring: no watchdog thread; a slow request holds its queue")
        }
        if debug { log("io_uring: \(queues.count) queues of 16 entries registered") }
    }
}

/// A ring thread's body and the channel it keeps alive while it runs: a session in a process
/// that goes on after it (a test) must not free the channel under its threads.
final class RingHolder {
    let body: () -> Void
    let channel: KernelChannel
    init(_ body: @escaping () -> Void, _ channel: KernelChannel) { self.body = body; self.channel = channel }
}

extension KernelChannel {
    /// Runs `holder.body` on a detached thread of its own. Returns 0, or pthread_create's errno.
    static func startThread(_ holder: RingHolder) -> Int32 {
        let raw = Unmanaged.passRetained(holder).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            let holder = Unmanaged<RingHolder>.fromOpaque(raw!).takeRetainedValue()
            // Held to the end: ARC may otherwise let it (and the channel) go after its last use.
            withExtendedLifetime(holder) { holder.body() }
            return nil
        }, raw)
        guard rc == 0 else {
            Unmanaged<RingHolder>.fromOpaque(raw).release()
            return rc
        }
        pthread_detach(thread)
        return 0
    }
}
