import CFuseABI
import Glibc
import Synchronization
import XCTest
@testable import FuseKernel

/// A file system of one file, `/f` (4 KiB, read with direct I/O so every read reaches it),
/// whose reads are answered, while `passing` is set, by a thread that ends right after.
private final class PassingThreadFileSystem: FileSystem, @unchecked Sendable {
    let passing = Atomic<Bool>(false)
    let passers = Mutex<[pthread_t]>([])
    /// The kernel thread ids of the passing threads (gone from /proc/self/task once ended).
    let passerIDs = Mutex<[Int32]>([])

    private func attributes(_ ino: UInt64) -> FileAttributes {
        ino == 1
            ? FileAttributes(ino: 1, mode: S_IFDIR | 0o755, linkCount: 2, accessTime: .now, modificationTime: .now, changeTime: .now)
            : FileAttributes(ino: 2, mode: S_IFREG | 0o444, size: 4096, accessTime: .now, modificationTime: .now, changeTime: .now)
    }

    func getattr(_ ctx: RequestContext, ino: UInt64, handle: UInt64?, reply: consuming AttributeReply) {
        guard ino <= 2 else { return reply.fail(ENOENT) }
        reply.attributes(attributes(ino), timeout: 60)
    }

    func lookup(_ ctx: RequestContext, parent: UInt64, name: String, reply: consuming EntryReply) {
        guard parent == 1, name == "f" else { return reply.fail(ENOENT) }
        reply.entry(Entry(attributes: attributes(2), entryTimeout: 60, attributeTimeout: 60))
    }

    func open(_ ctx: RequestContext, ino: UInt64, flags: Int32, reply: consuming OpenReply) {
        reply.opened(OpenResult(handle: 7, directIO: true))
    }

    func read(_ ctx: RequestContext, ino: UInt64, handle: UInt64, offset: UInt64, size: Int, flags: Int32,
              reply: consuming DataReply) {
        let bytes = [UInt8](repeating: 0x5a, count: max(0, min(size, 4096 - Int(min(offset, 4096)))))
        guard passing.load(ordering: .relaxed) else { return reply.data(bytes) }
        final class Held: @unchecked Sendable {
            var reply: DataReply?
            let bytes: [UInt8]
            let fs: PassingThreadFileSystem
            init(_ r: consuming DataReply, _ b: [UInt8], _ f: PassingThreadFileSystem) { reply = Optional(r); bytes = b; fs = f }
        }
        let held = Unmanaged.passRetained(Held(reply, bytes, self)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            let h = Unmanaged<Held>.fromOpaque(raw!).takeRetainedValue()
            h.fs.passerIDs.withLock { $0.append(currentThreadID()) }
            h.reply.take()?.data(h.bytes)
            return nil
        }, held)
        if rc == 0 {
            passers.withLock { $0.append(thread) }
        } else {
            Unmanaged<Held>.fromOpaque(held).takeRetainedValue().reply.take()?.fail(EIO)
        }
    }
}

/// The kernel's id of the calling thread, from /proc/thread-self ("PID/task/TID").
private func currentThreadID() -> Int32 {
    var buf = [CChar](repeating: 0, count: 64)
    let n = readlink("/proc/thread-self", &buf, buf.count - 1)
    guard n > 0 else { return -1 }
    let text = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return Int32(text.split(separator: "/").last ?? "") ?? -1
}

/// FUSE over io_uring: an answer given by a thread that then ends must not take its queue
/// with it. io_uring cancels the commands a thread submitted when it exits, and an entry's
/// COMMIT_AND_FETCH stays pending until the next request: such a thread only queues it and
/// the ring's submitter thread submits it (`RingQueue.submit`).
final class RingThreadTests: XCTestCase {
    private static let parameter = "/sys/module/fuse/parameters/enable_uring"

    func testAnAnswerFromAThreadThatEndsDoesNotStopItsQueue() throws {
        let previous = try String(contentsOfFile: Self.parameter, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(writeText(Self.parameter, "Y"), 0, "root can turn on FUSE over io_uring")
        defer { _ = writeText(Self.parameter, previous) }
        let dir = NSTemporaryDirectory() + "ring-thread-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        XCTAssertEqual(mkdir(dir, 0o755), 0)
        defer { rmdir(dir) }
        let fs = PassingThreadFileSystem()
        var options = SessionOptions()
        options.ioUring = true
        let session = try FuseSession(fileSystem: fs, mountpoint: dir, arguments: ["-o", "fsname=ringtest,subtype=ringtest"], options: options)
        try session.mount()
        let ended = DispatchSemaphore(value: 0)
        let loop = Thread { _ = session.run(maxThreads: 2); ended.signal() }
        loop.start()
        var connection: String?
        defer {
            // A queue that stopped would hold the reads below: abort the connection first so
            // that nothing waits on it, then unmount.
            if let connection, ended.wait(timeout: .now()) == .timedOut {
                // Through fusectl, mounted here if no init system did it.
                let abort = "/sys/fs/fuse/connections/\(connection)/abort"
                if access(abort, F_OK) != 0 { _ = Glibc.mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, nil) }
                XCTAssertEqual(writeText(abort, "1"), 0, "the connection was aborted")
            }
            session.unmount()
            XCTAssertEqual(ended.wait(timeout: .now() + 10), .success, "the session ended")
        }
        var st = stat()
        XCTAssertEqual(stat(dir, &st), 0)
        connection = String(UInt32(st.st_dev) & 0xff | (UInt32(st.st_dev) >> 12) & ~0xff)
        XCTAssertTrue(eventually { session.kernelChannel?.agreed.uring == true && session.kernelChannel?.ringQueues.isEmpty == false },
                      "the kernel agreed to io_uring")
        let file = dir + "/f"

        // Everything on CPU 0, so that all of it goes to CPU 0's queue: the kernel queues a
        // request on the CPU its caller runs on. Bounded, so that a stopped queue fails the
        // test instead of holding it.
        func onCPU0(_ seconds: Double = 15, _ body: @escaping @Sendable () -> Bool) -> Bool {
            let done = DispatchSemaphore(value: 0)
            let ok = Atomic<Bool>(false)
            Thread {
                _ = vmfs_pin_to_cpu(0)
                ok.store(body(), ordering: .relaxed)
                done.signal()
            }.start()
            return done.wait(timeout: .now() + seconds) == .success && ok.load(ordering: .relaxed)
        }
        @Sendable func readOnce(_ fd: Int32) -> Bool {
            var buf = [UInt8](repeating: 0, count: 4096)
            return pread(fd, &buf, 4096, 0) == 4096 && buf.allSatisfy { $0 == 0x5a }
        }
        @Sendable func reads(_ n: Int) -> Bool {
            for _ in 0..<n {
                let fd = Glibc.open(file, O_RDONLY)
                guard fd >= 0 else { return false }
                defer { close(fd) }
                guard readOnce(fd) else { return false }
            }
            return true
        }
        XCTAssertTrue(onCPU0 { reads(20) }, "reads over the ring")

        for round in 1...3 {
            // One read answered by a passing thread, and nothing else asked until that thread
            // has ended (the file stays open: no RELEASE), so that its entry is still waiting
            // for the next request when it ends.
            let opened = Atomic<Int32>(-1)
            XCTAssertTrue(onCPU0 { opened.store(Glibc.open(file, O_RDONLY), ordering: .relaxed); return true })
            let fd = opened.load(ordering: .relaxed)
            XCTAssertGreaterThanOrEqual(fd, 0)
            fs.passing.store(true, ordering: .relaxed)
            XCTAssertTrue(onCPU0 { readOnce(fd) }, "round \(round): the answer from the passing thread arrived")
            fs.passing.store(false, ordering: .relaxed)
            // Ended: its task is gone (io_uring cancels a thread's commands as it exits).
            let ids = fs.passerIDs.withLock { p -> [Int32] in defer { p.removeAll() }; return p }
            XCTAssertEqual(ids.count, 1)
            guard eventually(10, { ids.allSatisfy { access("/proc/self/task/\($0)", F_OK) != 0 } }) else {
                XCTFail("round \(round): the passing thread did not end")
                break
            }
            for t in fs.passers.withLock({ p -> [pthread_t] in defer { p.removeAll() }; return p }) { pthread_join(t, nil) }
            // Closing sends FLUSH, which waits for its answer: on CPU 0 and bounded too.
            guard onCPU0(15, { close(fd) == 0 && reads(50) }) else {
                XCTFail("round \(round): CPU 0's queue stopped serving after the passing thread ended")
                break
            }
        }
        XCTAssertGreaterThan(session.kernelChannel?.ringSubmitter?.rounds.load(ordering: .relaxed) ?? 0, 0,
                             "the ring's submitter sent the passing threads' commits")
    }

    private func writeText(_ path: String, _ text: String) -> Int32 {
        let fd = Glibc.open(path, O_WRONLY)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        return Array(text.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == text.utf8.count ? 0 : errno
    }

    private func eventually(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }
}
