import CFuseABI
import Glibc

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

/// One CPU's queue: an io_uring instance, its entries, and the threads that take its
/// completions (more than one, so that a slow request does not hold up the others).
final class RingQueue: @unchecked Sendable {
    let qid: UInt16
    let ring: OpaquePointer
    unowned let channel: KernelChannel
    private(set) var entries: [RingEntry] = []

    init?(qid: UInt16, depth: Int, payloadCapacity: Int, channel: KernelChannel) {
        guard let r = vmfs_ring_create(UInt32(depth * 2)) else { return nil }
        self.qid = qid
        self.ring = r
        self.channel = channel
        entries = (0..<depth).map { RingEntry(queue: self, index: $0, payloadCapacity: payloadCapacity) }
    }

    func submit(_ entry: RingEntry, command: UInt32) {
        let rc = vmfs_ring_fuse_cmd(ring, channel.fd, command, qid, entry.commitID, entry.buffers, UInt64(entry.index))
        if rc < 0 { channel.log("io_uring queue \(qid): command \(command) failed: \(String(cString: strerror(-rc)))") }
    }

    /// Takes completions until the connection ends.
    func serve() {
        while !channel.exiting.load(ordering: .relaxed) {
            var data: UInt64 = 0
            var result: Int32 = 0
            guard vmfs_ring_wait(ring, &data, &result) == 0 else { return }
            guard result >= 0, Int(data) < entries.count else {
                // -ENOTCONN/-ECANCELED at the end of the connection; anything else is logged.
                if result != -ENOTCONN && result != -ECANCELED && result != -ENODEV {
                    channel.log("io_uring queue \(qid): an entry ended with \(String(cString: strerror(-result)))")
                }
                return
            }
            let entry = entries[Int(data)]
            channel.dispatch(entry.request(), entry: entry)
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
        for queue in queues {
            for entry in queue.entries { queue.submit(entry, command: VMFS_FUSE_IO_URING_CMD_REGISTER) }
            for _ in 0..<2 {
                var thread = pthread_t()
                _ = pthread_create(&thread, nil, { raw in
                    Unmanaged<RingQueue>.fromOpaque(raw!).takeUnretainedValue().serve()
                    return nil
                }, Unmanaged.passUnretained(queue).toOpaque())
                pthread_detach(thread)
            }
        }
        if debug { log("io_uring: \(queues.count) queues of 16 entries registered") }
    }
}
