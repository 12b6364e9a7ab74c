import Foundation
import Glibc
import XCTest

/// The session's two FUSE layers and passthrough (issue 12). Every other mount test runs on
/// the default, vmediafs's own wire layer; these check that it is the one serving, that the
/// libfuse fallback still serves the contract's core, and what passthrough changes.
final class OwnLayerTests: MountTestCase {
    func testTheOwnWireLayerServesByDefault() throws {
        // The daemon logs its start after mount(2) returns, so maybe after the mount appears.
        XCTAssertTrue(eventually { self.fx.logText.contains("FUSE: own wire layer") }, fx.logText)
        let image = try fx.makeISO("own.iso", files: ["a.txt": "own\n"])
        makeDrive()
        XCTAssertEqual(writeErrno(mediaFile, image), 0)
        XCTAssertEqual(sh("cmp '\(disc)' '\(image)'").status, 0)
        XCTAssertEqual(readText(fx.path("guests/aix01/cd0/contents/a.txt")), "own\n")
        // The mount table names it as libfuse's mounts were named.
        let line = (readText("/proc/self/mountinfo") ?? "").split(separator: "\n").first { $0.contains(" \(fx.mnt) ") }
        XCTAssertNotNil(line?.range(of: "fuse.vmediafs vmediafs"), String(line ?? ""))
    }
}

final class LibfuseLayerTests: MountTestCase {
    override var daemonArguments: [String] { ["-o", "fuse_layer=libfuse"] }

    func testLibfuseStillServesInsertReadSwapAndEject() throws {
        XCTAssertTrue(eventually { self.fx.logText.contains("FUSE: libfuse") }, fx.logText)
        let a = try fx.makeISO("a.iso", files: ["a.txt": "first\n"])
        let b = try fx.makeISO("b.iso", label: "SECOND", files: ["b.txt": "second\n", "pad.bin": String(repeating: "x", count: 100_000)])
        makeDrive()
        XCTAssertEqual(writeErrno(mediaFile, a), 0)
        XCTAssertEqual(sh("cmp '\(disc)' '\(a)'").status, 0)
        let old = open(disc, O_RDONLY)
        XCTAssertGreaterThanOrEqual(old, 0)
        defer { close(old) }
        var byte: UInt8 = 0
        XCTAssertEqual(pread(old, &byte, 1, 0), 1)
        XCTAssertEqual(writeErrno(mediaFile, b), 0, "swap")
        XCTAssertEqual(pread(old, &byte, 1, 32768), -1)
        XCTAssertEqual(errno, ESTALE, "a handle from before the swap")
        XCTAssertEqual(sh("cmp '\(disc)' '\(b)'").status, 0)
        XCTAssertEqual(readText(fx.path("guests/aix01/cd0/contents/b.txt")), "second\n")
        XCTAssertEqual(unlink(mediaFile), 0, "eject")
        XCTAssertEqual(fx.status("aix01", "cd0")["state"], "empty")
    }
}

final class PassthroughTests: MountTestCase {
    override var daemonArguments: [String] { ["-o", "passthrough", "-d"] }

    /// The requests with `opcode` the daemon saw for inode `ino` (its -d log names every request).
    private func requests(_ opcode: Int, of ino: UInt64) -> Int {
        fx.logText.split(separator: "\n").filter { $0.contains(": opcode \(opcode) node \(ino) ") }.count
    }

    /// READs for `ino`; the OPENs of it are counted too, so that a log this cannot read
    /// fails instead of reporting no READ.
    private func reads(of ino: UInt64, file: StaticString = #filePath, line: UInt = #line) -> Int {
        XCTAssertGreaterThan(requests(14, of: ino), 0, "the -d log shows the OPENs of inode \(ino)", file: file, line: line)
        return requests(15, of: ino)
    }

    private func inode(_ path: String) -> UInt64 {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_ino) : 0
    }

    private func image(_ name: String, bytes: Int, seed: UInt8) throws -> String {
        let path = fx.media + "/" + name
        try Data((0..<bytes).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o644)
        return path
    }

    func testDiscReadsGoStraightToTheImageAndNewOpensSeeTheNewMedia() throws {
        // INIT is answered after mount(2) returns: wait for its log line.
        XCTAssertTrue(eventually { self.fx.logText.contains("passthrough yes") }, "the kernel agreed to passthrough: \(fx.logText.prefix(600))")
        let a = try image("a.iso", bytes: 8 << 20, seed: 1)
        let b = try image("b.iso", bytes: 4 << 20, seed: 2)
        makeDrive()
        XCTAssertEqual(writeErrno(mediaFile, a), 0)
        let first = inode(disc)
        XCTAssertEqual(sh("cmp '\(disc)' '\(a)'").status, 0)
        XCTAssertEqual(sh("dd if='\(disc)' of=/dev/null bs=4k iflag=direct status=none").status, 0, "O_DIRECT reads too")
        XCTAssertEqual(reads(of: first), 0, "no READ reached the daemon")
        // Several opens of one disc at once (fio's readers, two cmp's): one backing file serves all.
        let readers = sh("for i in 1 2 3 4; do cmp '\(disc)' '\(a)' & done; wait", timeout: 60)
        XCTAssertEqual(readers.err, "", "four readers at once")
        let both = (open(disc, O_RDONLY), open(disc, O_RDONLY))
        XCTAssertGreaterThanOrEqual(both.0, 0)
        XCTAssertGreaterThanOrEqual(both.1, 0, "a second open of the same disc: \(String(cString: strerror(errno)))")
        close(both.0); close(both.1)

        // A handle from before a swap: the emulator no longer decides its reads; it keeps
        // reading the image it opened (never the new one). New opens get the new disc.
        let old = open(disc, O_RDONLY)
        XCTAssertGreaterThanOrEqual(old, 0)
        defer { close(old) }
        XCTAssertEqual(writeErrno(mediaFile, b), 0, "swap")
        XCTAssertEqual(sh("cmp '\(disc)' '\(b)'").status, 0)
        var got = [UInt8](repeating: 0, count: 4096)
        XCTAssertEqual(pread(old, &got, 4096, 6 << 20), 4096)
        let expected = try Data(contentsOf: URL(fileURLWithPath: a))[(6 << 20)..<((6 << 20) + 4096)]
        XCTAssertEqual(Data(got), expected, "the old image's bytes, as docs/performance.md says")
        XCTAssertEqual(fx.status("aix01", "cd0")["media"], b)
    }

    func testImagesOfPartBlocksAreStillReadThroughTheEmulator() throws {
        // 3.5 blocks: `disc` is 4 blocks, the last completed with zeros, which the kernel
        // reading the image itself would not do: such images are not passed through.
        let odd = try image("odd.iso", bytes: 2048 * 3 + 1024, seed: 3)
        makeDrive()
        XCTAssertEqual(writeErrno(mediaFile, odd), 0)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: disc))
        XCTAssertEqual(bytes.count, 2048 * 4)
        XCTAssertEqual(bytes.prefix(2048 * 3 + 1024), try Data(contentsOf: URL(fileURLWithPath: odd)))
        XCTAssertTrue(bytes.suffix(1024).allSatisfy { $0 == 0 })
        XCTAssertGreaterThan(reads(of: inode(disc)), 0, "read through the daemon")
    }
}

/// Requests over io_uring queues (`-o io_uring`). The kernel takes them only with the fuse
/// module's `enable_uring` set, which this test sets for its own mount and puts back after.
final class IoUringTests: MountTestCase {
    private static let parameter = "/sys/module/fuse/parameters/enable_uring"
    private var previous: String?

    override var daemonArguments: [String] { ["-o", "io_uring,open_timeout=5", "-d"] }

    override func setUpWithError() throws {
        previous = readText(Self.parameter)?.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertNotNil(previous, "this kernel has FUSE over io_uring (CONFIG_FUSE_IO_URING)")
        XCTAssertEqual(writeErrno(Self.parameter, "Y"), 0)
        try super.setUpWithError()
    }

    override func tearDown() {
        super.tearDown()
        if let previous { _ = writeErrno(Self.parameter, previous) }
    }

    func testRequestsArriveOnTheQueuesAndTheContractHolds() throws {
        // INIT is answered after mount(2) returns: wait for its log line.
        XCTAssertTrue(eventually { self.fx.logText.contains("io_uring yes") }, "the kernel agreed to io_uring: \(fx.logText.prefix(800))")
        XCTAssertTrue(eventually { self.fx.logText.contains("queues of 16 entries registered") })
        let a = try fx.makeISO("a.iso", files: ["a.txt": "ring\n"])
        let b = try fx.makeISO("b.iso", label: "B", files: ["b.txt": "second\n"])
        makeDrive()
        XCTAssertEqual(writeErrno(mediaFile, a), 0)
        XCTAssertEqual(sh("cmp '\(disc)' '\(a)'").status, 0)
        XCTAssertEqual(readText(fx.path("guests/aix01/cd0/contents/a.txt")), "ring\n")
        let old = open(disc, O_RDONLY)
        XCTAssertGreaterThanOrEqual(old, 0)
        defer { close(old) }
        XCTAssertEqual(writeErrno(mediaFile, b), 0, "swap")
        var byte: UInt8 = 0
        XCTAssertEqual(pread(old, &byte, 1, 0), -1)
        XCTAssertEqual(errno, ESTALE)
        XCTAssertEqual(writeErrno(mediaFile, "/nonexistent.iso"), ENOENT, "errors come back over the ring too")
        let onRing = fx.logText.split(separator: "\n").filter { $0.contains("(io_uring queue ") }.count
        XCTAssertGreaterThan(onRing, 20, "requests came over the queues")
    }

    func testARequestThatWaitsDoesNotHoldItsQueue() throws {
        XCTAssertTrue(eventually { self.fx.logText.contains("queues of 16 entries registered") })
        // A second vmediafs, stopped: an insert of a path inside it waits in the request that
        // writes `media` until open_timeout (5 s here) answers it EIO.
        let other = try MountFixture()
        try other.start()
        defer { if let p = other.daemon { kill(p.processIdentifier, SIGCONT) }; other.destroy() }
        XCTAssertEqual(mkdir(other.path("guests/x"), 0o755), 0)
        makeDrive("aix01", "cd1")
        let iso = try fx.makeISO("a.iso", files: ["a.txt": "ring\n"])
        let cd1 = fx.path("guests/aix01/cd1")
        func handOffs() -> Int { fx.logText.components(separatedBy: "a new waiter took the queue").count - 1 }
        // Requests on CPU 0 first, so that the waiter about to be held has committed its
        // queue's entries.
        XCTAssertEqual(sh("taskset -c 0 bash -c 'for i in $(seq 20); do cat \(cd1)/status; done' | grep -c state=").out, "20\n")
        kill(other.daemon!.processIdentifier, SIGSTOP)
        // Three times: the later hand-offs take the threads the earlier ones parked.
        for round in 1...3 {
            // Through commands with timeouts, so that a queue that stopped fails the test
            // instead of holding it.
            XCTAssertEqual(sh("mkdir '\(fx.path("guests/aix01/w\(round)"))'", timeout: 10).status, 0)
            // The kernel puts a request on the queue of the CPU its caller runs on: the stuck
            // writer and the requests after it all run on CPU 0, so they share one queue.
            let (writer, writerErr) = background("taskset -c 0 bash -c \"echo '\(other.path("guests/x/status"))' > '\(fx.path("guests/aix01/w\(round)/media"))'\"")
            defer { if writer.isRunning { kill(writer.processIdentifier, SIGKILL) } }
            XCTAssertTrue(eventually(10) { handOffs() >= round }, "round \(round): the watchdog handed the queue on")
            for cpu in [0, 1] {
                XCTAssertTrue(sh("taskset -c \(cpu) cat '\(cd1)/status'", timeout: 10).out.contains("state="), "round \(round), CPU \(cpu)")
            }
            XCTAssertEqual(sh("taskset -c 0 bash -c \"echo '\(iso)' > '\(cd1)/media'\"", timeout: 10).status, 0)
            XCTAssertEqual(sh("taskset -c 0 cmp '\(iso)' '\(cd1)/disc'", timeout: 10).status, 0)
            XCTAssertEqual(sh("taskset -c 0 cat '\(cd1)/contents/a.txt'", timeout: 10).out, "ring\n")
            XCTAssertTrue(writer.isRunning, "round \(round): all of that was served while the insert still waited")
            // The held request is answered (EIO at the open timeout), over the ring.
            XCTAssertTrue(eventually(20) { !writer.isRunning }, "round \(round): the held insert was answered")
            XCTAssertTrue((readText(writerErr) ?? "").contains("Input/output error"))
            // The thread that held it is parked, not gone: had it ended, io_uring would have
            // cancelled the entries it committed and the queue would stop taking requests.
            usleep(300_000)
            for _ in 0..<20 {
                guard sh("taskset -c 0 cat '\(cd1)/contents/a.txt'", timeout: 10).out == "ring\n" else {
                    return XCTFail("round \(round): the queue stopped serving")
                }
            }
            XCTAssertEqual(sh("taskset -c 0 truncate -s 0 '\(cd1)/media'", timeout: 10).status, 0, "eject for the next round")
        }
        XCTAssertFalse(fx.logText.contains("the queue's waiter stops"), "no queue lost its waiter")
    }
}
