import CFuseABI
import Glibc
import Synchronization

/// vmediafs's own end of the FUSE wire protocol: it reads requests from /dev/fuse, hands
/// them to the `FileSystem` with replies that write straight back to the device, and sends
/// the notifications (invalidations, poll wake-ups). It replaces libfuse's session and loop;
/// the mount itself is `KernelMount`. The requests it decodes are in `KernelRequests.swift`.
///
/// Threads: `workers` threads read the one descriptor (the kernel gives each request to
/// one reader). Replies may be written from any thread; each is one `writev`, which the
/// kernel takes whole. No lock is held while a request is served.
final class KernelChannel: @unchecked Sendable {
    let fd: Int32
    let box: SessionBox
    let debug: Bool
    /// What INIT agreed; written once by the thread that answers INIT, before any other
    /// request is read (the kernel sends nothing else until INIT is answered).
    private(set) var agreed = Agreement()
    let exiting = Atomic<Bool>(false)
    private let interrupts = Mutex(InterruptTable())
    private let interruptEntries = Atomic<Int>(0)
    private let pipes = Mutex<[SplicePipe]>([])
    /// The io_uring queues, once started (kept alive here for the connection's life).
    var ringQueues: [RingQueue] = []
    /// Hands a queue to a new waiter when a request holds the old one (io_uring only).
    var ringWatchdog: RingWatchdog?
    /// Submits the ring commands of threads that may not last (`RingQueue.submit`).
    var ringSubmitter: RingSubmitter?
    /// Passthrough backing ids by inode, with how many open handles use each, and the inode
    /// of each such handle; from the first OPEN to the last RELEASE.
    private let backing = Mutex(BackingFiles())
    private struct BackingFiles {
        var byNode: [UInt64: (id: Int32, opens: Int)] = [:]
        var handles: [UInt64: UInt64] = [:]
    }
    /// The largest WRITE the kernel may send (and so the largest READ answer): 1 MiB.
    static let maxWrite: UInt32 = 1 << 20
    /// Bytes of one request buffer: the largest WRITE and its headers.
    static let bufferSize = Int(maxWrite) + 4096

    /// What INIT agreed to, of what the channel itself acts on.
    struct Agreement {
        var splice = false
        var passthrough = false
        var uring = false
    }

    init(fd: Int32, box: SessionBox, debug: Bool) {
        self.fd = fd
        self.box = box
        self.debug = debug
    }

    deinit {
        for p in pipes.withLock({ $0 }) { close(p.read); close(p.write) }
    }

    // MARK: Serving

    /// Reads and serves requests until the connection ends (unmount, abort) or `exiting`.
    func serve() {
        // A worker ends only with the connection: it may submit io_uring commands.
        vmfs_thread_mark_lasting()
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: Self.bufferSize, alignment: 4096)
        defer { buffer.deallocate() }
        while !exiting.load(ordering: .relaxed) {
            let n = Glibc.read(fd, buffer, Self.bufferSize)
            if n < 0 {
                switch errno {
                case EINTR, EAGAIN: continue
                case ENOENT: continue          // the request was interrupted before it was read
                case ENODEV:                   // unmounted or aborted: the connection is gone
                    exiting.store(true, ordering: .relaxed)
                    return
                default:
                    log("reading /dev/fuse failed: \(String(cString: strerror(errno)))")
                    exiting.store(true, ordering: .relaxed)
                    return
                }
            }
            guard n >= MemoryLayout<fuse_in_header>.size else { continue }
            dispatch(UnsafeRawBufferPointer(start: buffer, count: n))
        }
    }

    /// Answers INIT: the protocol version and the features asked for in `box.options`,
    /// where the kernel offers them (`initAnswer`).
    func answerInit(_ answer: KernelRequest, _ request: fuse_init_in) {
        guard request.major == 7 else {
            // Only major 7 exists; an older kernel would be told ours and hang up.
            log("the kernel speaks FUSE \(request.major).\(request.minor); vmediafs speaks 7")
            reply(answer, error: EPROTO)
            return
        }
        let options = box.options
        var (out, agreement, skip) = Self.initAnswer(request, options)
        box.opendirSkipped.store(skip, ordering: .relaxed)
        // The kernel applies min(bdi window, answer) when this INIT is answered: raise the
        // bdi's window first, then answer with the same value.
        if options.readaheadKiB > 0, setReadahead(mountpoint: box.mountpoint, kib: options.readaheadKiB) {
            out.max_readahead = options.readaheadKiB * 1024
        }
        agreed = agreement
        if debug { log("INIT: kernel 7.\(request.minor), agreed 7.\(out.minor), flags 0x\(String(out.flags, radix: 16)), flags2 0x\(String(out.flags2, radix: 16)); passthrough \(agreement.passthrough ? "yes" : "no"), io_uring \(agreement.uring ? "yes" : "no")") }
        reply(answer, value: out)
        if agreement.uring { startRing() }
    }

    /// The INIT answer for `options` to a kernel that offers `request.flags` (and
    /// `flags2`): never a flag the kernel did not offer. Also what was agreed, and whether
    /// directories are opened without OPENDIR from now on.
    static func initAnswer(_ request: fuse_init_in, _ options: SessionOptions) -> (fuse_init_out, Agreement, Bool) {
        let offered = request.flags
        let offered2 = offered & UInt32(FUSE_INIT_EXT) != 0 ? request.flags2 : 0
        var want: UInt32 = 0
        // libfuse 3.14's defaults, so that the two layers behave alike.
        for f in [FUSE_ASYNC_READ, FUSE_PARALLEL_DIROPS, FUSE_HANDLE_KILLPRIV, FUSE_ASYNC_DIO, FUSE_BIG_WRITES, FUSE_AUTO_INVAL_DATA] {
            want |= UInt32(f) & offered
        }
        if options.truncateAtOpen { want |= UInt32(FUSE_ATOMIC_O_TRUNC) & offered }
        if options.splice { want |= UInt32(FUSE_SPLICE_WRITE) & offered }
        // No OPENDIR where the kernel can do without; it checks kept listings against the
        // directory's mtime only with auto_inval_data, so both or neither.
        let skip = options.skipOpendir && offered & UInt32(FUSE_NO_OPENDIR_SUPPORT) != 0 && want & UInt32(FUSE_AUTO_INVAL_DATA) != 0
        var out = fuse_init_out()
        out.major = 7
        out.minor = min(request.minor, UInt32(FUSE_KERNEL_MINOR_VERSION))
        var want2: UInt32 = 0
        if options.passthrough && offered2 & VMFS_FUSE_PASSTHROUGH_FLAGS2 != 0 && request.minor >= 40 {
            want2 |= VMFS_FUSE_PASSTHROUGH_FLAGS2
            out.minor = max(out.minor, 40)
            out.unused.0 = 1                 // max_stack_depth: images live on local file systems
        }
        if options.ioUring && offered2 & VMFS_FUSE_OVER_IO_URING_FLAGS2 != 0 && request.minor >= 42 {
            want2 |= VMFS_FUSE_OVER_IO_URING_FLAGS2
            out.minor = max(out.minor, 42)
        }
        out.minor = min(out.minor, request.minor)
        if want2 != 0 { want |= UInt32(FUSE_INIT_EXT) & offered }
        if offered & UInt32(FUSE_MAX_PAGES) != 0 {
            want |= UInt32(FUSE_MAX_PAGES)
            out.max_pages = UInt16((maxWrite - 1) / UInt32(getpagesize()) + 1)
        }
        out.flags = want
        out.flags2 = want2
        out.max_readahead = request.max_readahead
        out.max_background = 64
        out.congestion_threshold = 48
        out.max_write = maxWrite
        out.time_gran = 1
        let agreement = Agreement(splice: want & UInt32(FUSE_SPLICE_WRITE) != 0,
                                  passthrough: want2 & VMFS_FUSE_PASSTHROUGH_FLAGS2 != 0,
                                  uring: want2 & VMFS_FUSE_OVER_IO_URING_FLAGS2 != 0)
        return (out, agreement, skip)
    }

    // MARK: Replies

    /// Writes one message: the header, then `payload`. A reply to a request the kernel no
    /// longer waits for (it was interrupted and abandoned) fails with ENOENT: nothing to do.
    /// `status` goes into the header as it is: minus an errno, 0, or (with unique 0) a
    /// notification code. A request that came on a ring entry is answered by committing
    /// the entry (which also hands it the next request).
    private func send(_ request: KernelRequest?, status: Int32, _ payload: UnsafeRawBufferPointer) {
        let unique = request?.unique ?? 0
        finished(unique)
        if let entry = request?.entry { return entry.commit(unique: unique, status: status, payload) }
        var header = fuse_out_header()
        header.len = UInt32(MemoryLayout<fuse_out_header>.size + payload.count)
        header.error = status
        header.unique = unique
        withUnsafeMutableBytes(of: &header) { h in
            var iov = [iovec(iov_base: h.baseAddress, iov_len: h.count)]
            if payload.count > 0 { iov.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: payload.baseAddress), iov_len: payload.count)) }
            let n = writev(fd, iov, Int32(iov.count))
            if n < 0 && errno != ENOENT && unique != 0 {
                log("answering request \(unique) failed: \(String(cString: strerror(errno)))")
            }
        }
    }

    func reply(_ request: KernelRequest, error: Int32) {
        send(request, status: -abs(error), UnsafeRawBufferPointer(start: nil, count: 0))
    }

    func reply(_ request: KernelRequest, _ payload: [UInt8]) {
        payload.withUnsafeBytes { send(request, status: 0, $0) }
    }

    /// Answers with one of the kernel's fixed-size structures, from the stack.
    func reply<T>(_ request: KernelRequest, value: T) {
        withUnsafeBytes(of: value) { send(request, status: 0, $0) }
    }

    /// CREATE's answer: the entry, then the open.
    func reply(_ request: KernelRequest, _ entry: fuse_entry_out, _ open: fuse_open_out) {
        reply(request, WireFormat.bytes(of: entry) + WireFormat.bytes(of: open))
    }

    /// A READ answer. A file range goes by splice through a pipe where the kernel agreed to
    /// it (the bytes never enter this process), else it is read and written.
    func replyData(_ request: KernelRequest, _ source: ReadSource) {
        switch source {
        case .bytes(let buffer):
            send(request, status: 0, buffer)
        case .file(let descriptor, let offset, let length):
            if let entry = request.entry {
                // Straight into the entry's payload buffer: one copy, as splice cannot reach it.
                finished(request.unique)
                return entry.commitRead(unique: request.unique, descriptor: descriptor, offset: offset, length: length)
            }
            if agreed.splice, length >= 8192, spliceReply(request.unique, descriptor, offset, length) { return }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 4096)
            defer { buffer.deallocate() }
            var done = 0
            while done < length {
                let n = pread(descriptor, buffer.baseAddress! + done, length - done, off_t(offset) + off_t(done))
                if n < 0 && errno == EINTR { continue }
                if n < 0 { return reply(request, error: errno) }
                if n == 0 { break }
                done += n
            }
            send(request, status: 0, UnsafeRawBufferPointer(rebasing: buffer[0..<done]))
        }
    }

    /// Header into a pipe, the file's bytes spliced in after it, the whole message spliced
    /// to the device. False (nothing sent) when it cannot: the caller copies instead.
    private func spliceReply(_ unique: UInt64, _ descriptor: Int32, _ offset: UInt64, _ length: Int) -> Bool {
        guard let pipe = takePipe(), pipe.capacity >= length + 4096 else { return false }
        var keep = true
        defer { if keep { givePipe(pipe) } else { close(pipe.read); close(pipe.write) } }
        var header = fuse_out_header()
        header.len = UInt32(MemoryLayout<fuse_out_header>.size + length)
        header.unique = unique
        guard withUnsafeBytes(of: &header, { write(pipe.write, $0.baseAddress, $0.count) }) == MemoryLayout<fuse_out_header>.size else {
            keep = false
            return false
        }
        var position = Int64(offset)
        var moved = 0
        while moved < length {
            let n = vmfs_splice(descriptor, &position, pipe.write, nil, length - moved, 1)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            moved += n
        }
        if moved < length {
            // The image ended early (it shrank under us) or cannot be spliced: the pipe holds a
            // header that promises more; drop the pipe and answer by copying.
            keep = false
            return false
        }
        finished(unique)
        let total = MemoryLayout<fuse_out_header>.size + length
        let n = vmfs_splice(pipe.read, nil, fd, nil, total, 1)
        if n != total {
            keep = false
            if n < 0 && errno != ENOENT { log("splicing an answer failed: \(String(cString: strerror(errno)))") }
        }
        return true
    }

    private struct SplicePipe { var read: Int32; var write: Int32; var capacity: Int }

    private func takePipe() -> SplicePipe? {
        if let p = pipes.withLock({ $0.popLast() }) { return p }
        var fds: [Int32] = [0, 0]
        guard vmfs_pipe2_cloexec(&fds) == 0 else { return nil }
        let size = vmfs_set_pipe_size(fds[1], 1 << 20)
        let capacity = size > 0 ? Int(size) : Int(vmfs_get_pipe_size(fds[1]))
        return SplicePipe(read: fds[0], write: fds[1], capacity: capacity)
    }

    private func givePipe(_ p: SplicePipe) { pipes.withLock { $0.append(p) } }

    /// An OPEN or CREATE answer; files that ask for it are given passthrough to their backing
    /// descriptor where INIT agreed to it. One backing id serves every open of an inode (the
    /// kernel refuses a second open of an inode with a different backing file, EBUSY); it is
    /// kept until the inode's last passthrough handle is released: the opener looks it up
    /// after our answer is written, so it cannot be dropped sooner.
    func openAnswer(_ o: OpenResult, node: UInt64) -> fuse_open_out {
        var flags = WireFormat.openFlags(o)
        defer { if let d = o.passthroughDescriptor { close(d) } }
        if let descriptor = o.passthroughDescriptor, agreed.passthrough {
            let id = backing.withLock { b -> Int32 in
                if let shared = b.byNode[node] {
                    b.byNode[node] = (shared.id, shared.opens + 1)
                    b.handles[o.handle] = node
                    return shared.id
                }
                let id = vmfs_fuse_backing_open(fd, descriptor)
                guard id > 0 else { return -errno }
                b.byNode[node] = (id, 1)
                b.handles[o.handle] = node
                return id
            }
            if id > 0 {
                // The kernel refuses a passthrough open with any flag but direct_io,
                // noflush and parallel direct writes (FOPEN_PASSTHROUGH_MASK): the page
                // cache is the backing file's, so keep_cache has no meaning here.
                flags = flags & UInt32(FOPEN_NOFLUSH) | VMFS_FOPEN_PASSTHROUGH
                return WireFormat.open(handle: o.handle, flags: flags, backingID: id)
            }
            log("passthrough refused (\(String(cString: strerror(-id)))); reads of this file go through the daemon")
        }
        return WireFormat.open(handle: o.handle, flags: flags)
    }

    /// The handle was released: its inode's backing file goes with its last passthrough handle.
    func released(handle: UInt64) {
        guard agreed.passthrough else { return }
        let drop = backing.withLock { b -> Int32? in
            guard let node = b.handles.removeValue(forKey: handle), let shared = b.byNode[node] else { return nil }
            if shared.opens > 1 { b.byNode[node] = (shared.id, shared.opens - 1); return nil }
            b.byNode.removeValue(forKey: node)
            return shared.id
        }
        if let drop { _ = vmfs_fuse_backing_close(fd, UInt32(drop)) }
    }

    // MARK: Notifications

    private func notify<T>(_ code: fuse_notify_code, _ payload: T) {
        withUnsafeBytes(of: payload) { send(nil, status: Int32(bitPattern: code.rawValue), $0) }
    }

    /// Drops the kernel's cached attributes of `ino`, and its pages from `offset` for
    /// `length` bytes (0 = to the end); a negative offset keeps the pages.
    func invalidate(_ ino: UInt64, offset: Int64, length: Int64) {
        var out = fuse_notify_inval_inode_out()
        out.ino = ino
        out.off = offset
        out.len = length
        notify(FUSE_NOTIFY_INVAL_INODE, out)
    }

    func notifyPoll(_ kh: UInt64) {
        var out = fuse_notify_poll_wakeup_out()
        out.kh = kh
        notify(FUSE_NOTIFY_POLL, out)
    }

    // MARK: Interrupts

    /// Requests that asked to hear of an interrupt, and interrupts that came before that.
    private struct InterruptTable {
        var registered: [UInt64: UInt64] = [:]
        var interrupted: Set<UInt64> = []
    }

    /// FUSE_INTERRUPT for `unique`: calls the filesystem back if the request asked for it;
    /// else remembers it for `isInterrupted` and a later `notifyOnInterrupt`.
    func interrupt(_ unique: UInt64) {
        let id = interrupts.withLock { t -> UInt64? in
            if t.interrupted.count >= 4096 { t.interrupted.removeAll() }   // answered long ago
            t.interrupted.insert(unique)
            interruptEntries.add(1, ordering: .relaxed)
            return t.registered.removeValue(forKey: unique)
        }
        if let id { box.fileSystem.interrupted(requestID: id) }
    }

    func notifyOnInterrupt(_ unique: UInt64, id: UInt64) {
        let already = interrupts.withLock { t -> Bool in
            if t.interrupted.contains(unique) { return true }
            t.registered[unique] = id
            interruptEntries.add(1, ordering: .relaxed)
            return false
        }
        if already { box.fileSystem.interrupted(requestID: id) }
    }

    func isInterrupted(_ unique: UInt64) -> Bool {
        interruptEntries.load(ordering: .relaxed) > 0 && interrupts.withLock { $0.interrupted.contains(unique) }
    }

    /// A request is answered: forget its interrupt records.
    private func finished(_ unique: UInt64) {
        guard unique != 0, interruptEntries.load(ordering: .relaxed) > 0 else { return }
        interrupts.withLock { t in
            t.registered.removeValue(forKey: unique)
            t.interrupted.remove(unique)
            if t.registered.isEmpty && t.interrupted.isEmpty { interruptEntries.store(0, ordering: .relaxed) }
        }
    }

    func log(_ message: String) {
        let line = "vmediafs: fuse: \(message)\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
    }
}
