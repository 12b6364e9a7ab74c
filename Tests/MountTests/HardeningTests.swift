import Foundation
import Glibc
import XCTest

/// Nothing a user names in `media` can hang the daemon, reach its own files or load
/// something else than what was written (issue 15 symptoms 1, 2, 4; issue 17 items 4-6).
final class HardeningTests: MountTestCase {
    override var daemonArguments: [String] { ["-o", "allow_other,open_timeout=3"] }

    func testAFIFOIsRefusedAtOnceAndTheMountKeepsServing() throws {
        makeDrive()
        let fifo = fx.media + "/f.iso"
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        chmod(fifo, 0o644)
        let r = sh("echo '\(fifo)' > '\(mediaFile)'", timeout: 20)
        XCTAssertNotEqual(r.status, -2, "the writer hung on a FIFO")
        XCTAssertTrue(r.err.contains("Invalid argument"), r.err)
        XCTAssertTrue(fx.status("aix01", "cd0")["last_error"]?.contains("not a regular file") == true)
        XCTAssertEqual(sh("ls '\(fx.path("guests"))'", timeout: 10).out, "aix01\n")
        // A FIFO swapped in behind a symlink is refused the same way.
        symlink(fifo, fx.media + "/link.iso")
        XCTAssertEqual(writeErrno(mediaFile, fx.media + "/link.iso\n"), EINVAL)
    }

    func testPathsThroughProcDescriptorLinksAreRefusedWithoutNamingTheDaemonsFiles() throws {
        makeDrive()
        let iso = try fx.makeISO("a.iso")
        symlink("/proc/self/fd/3", fx.media + "/fd.iso")
        for path in ["/proc/self/fd/3", "/proc/thread-self/fd/4", fx.media + "/fd.iso", "/proc/self/root" + iso] {
            XCTAssertEqual(writeErrno(mediaFile, path + "\n"), EPERM, path)
            let why = fx.status("aix01", "cd0")["last_error"] ?? ""
            XCTAssertTrue(why.contains("/proc descriptor link"), why)
            for leak in ["/dev/fuse", "state.db", "socket:", "pipe:"] { XCTAssertFalse(why.contains(leak), why) }
        }
        XCTAssertEqual(fx.status("aix01", "cd0")["state"], "empty")
    }

    func testControlCharactersAndNULAreRefused() throws {
        makeDrive()
        let iso = try fx.makeISO("a.iso")
        // A NUL would have cut the path and loaded a.iso.
        XCTAssertEqual(writeErrno(mediaFile, ""), 0)
        let fd = open(mediaFile, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let bytes = Array((iso + "\u{0}junk\n").utf8)
        XCTAssertEqual(write(fd, bytes, bytes.count), -1)
        XCTAssertEqual(errno, EINVAL)
        close(fd)
        XCTAssertTrue(fx.status("aix01", "cd0")["last_error"]?.contains("NUL") == true)
        XCTAssertEqual(fx.status("aix01", "cd0")["state"], "empty")
        // A file whose name holds a newline, reached through a symlink, is refused: `media`
        // and `status` must read back one line.
        let odd = fx.media + "/x\ny.iso"
        XCTAssertEqual(sh("cp '\(iso)' '\(odd)'").status, 0)
        symlink(odd, fx.media + "/plain.iso")
        XCTAssertEqual(writeErrno(mediaFile, fx.media + "/plain.iso\n"), EINVAL)
        XCTAssertTrue(fx.status("aix01", "cd0")["last_error"]?.contains("control character") == true)
        XCTAssertEqual(writeErrno(mediaFile, "\(fx.media)/tab\there.iso\n"), EINVAL)
        XCTAssertEqual(fx.status("aix01", "cd0")["state"], "empty")
        XCTAssertEqual(readText(fx.path("guests/aix01/cd0/status"))?.split(separator: "\n").count,
                       readText(fx.path("guests/aix01/cd0/status"))?.split(separator: "\n").filter { $0.contains("=") }.count)
    }

    func testImagesInsideTheMountItselfAreRefused() throws {
        makeDrive()
        makeDrive("aix01", "cd1")
        let iso = try fx.makeISO("a.iso")
        XCTAssertEqual(writeErrno(fx.path("guests/aix01/cd1/media"), iso + "\n"), 0)
        XCTAssertEqual(writeErrno(mediaFile, fx.path("guests/aix01/cd1/disc") + "\n"), EPERM)
        XCTAssertTrue(fx.status("aix01", "cd0")["last_error"]?.contains("own mount") == true)
    }

    func testAnOldHandleGetsESTALEEvenWhereTheKernelKeptItsPages() throws {
        makeDrive()
        let a = try fx.makeISO("a.iso", label: "AAAA", files: ["a.txt": String(repeating: "a", count: 300_000)])
        let b = try fx.makeISO("b.iso", label: "BBBB", files: ["b.txt": String(repeating: "b", count: 300_000)])
        XCTAssertEqual(writeErrno(mediaFile, a + "\n"), 0)
        let fd = open(disc, O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 65536)
        XCTAssertEqual(pread(fd, &buf, buf.count, 32768), buf.count)
        let first = buf
        XCTAssertEqual(pread(fd, &buf, buf.count, 32768), buf.count, "a second read (from the kept pages) works")
        XCTAssertEqual(writeErrno(mediaFile, b + "\n"), 0)
        for _ in 0..<3 {
            XCTAssertEqual(pread(fd, &buf, buf.count, 32768), -1, "the old handle must not be served the kept pages")
            XCTAssertEqual(errno, ESTALE)
        }
        let fresh = open(disc, O_RDONLY)
        defer { close(fresh) }
        XCTAssertEqual(pread(fresh, &buf, buf.count, 32768), buf.count)
        XCTAssertNotEqual(buf, first, "a new open reads the new disc")
        let bBytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: b)).subdata(in: 32768..<(32768 + 65536)))
        XCTAssertEqual(buf, bBytes)
    }

    func testAStuckFileSystemHoldsOnlyItsOwnInsert() throws {
        // A second vmediafs, stopped: every path walk into its mount waits for it.
        let other = try MountFixture()
        try other.start()
        defer { if let p = other.daemon { kill(p.processIdentifier, SIGCONT) }; other.destroy() }
        XCTAssertEqual(mkdir(other.path("guests/x"), 0o755), 0)
        let stuckPath = other.path("guests/x/status")
        makeDrive()
        makeDrive("aix01", "cd1")
        let iso = try fx.makeISO("a.iso")
        kill(other.daemon!.processIdentifier, SIGSTOP)
        let started = Date()
        let (writer, writerErr) = background("echo '\(stuckPath)' > '\(mediaFile)'")
        defer { if writer.isRunning { kill(writer.processIdentifier, SIGKILL) } }
        usleep(300_000)
        // Everything else is served while that insert waits.
        XCTAssertTrue(sh("cat '\(fx.path("guests/aix01/cd1/status"))'", timeout: 5).out.contains("state=empty"))
        XCTAssertEqual(sh("ls '\(fx.path("guests/aix01"))'", timeout: 5).out.contains("cd1"), true)
        XCTAssertEqual(writeErrno(fx.path("guests/aix01/cd1/media"), iso + "\n"), 0)
        XCTAssertEqual(sh("cmp '\(iso)' '\(fx.path("guests/aix01/cd1/disc"))'", timeout: 10).status, 0)
        XCTAssertTrue(eventually(30) { !writer.isRunning })
        let err = readText(writerErr) ?? ""
        XCTAssertTrue(err.contains("Input/output error"), "the stuck insert is answered EIO: \(err)")
        XCTAssertGreaterThan(Date().timeIntervalSince(started), 2.5, "it waited for the open timeout")
        XCTAssertTrue(fx.status("aix01", "cd0")["last_error"]?.contains("did not finish") == true)
        // When the other file system answers again, the abandoned open ends on its own.
        kill(other.daemon!.processIdentifier, SIGCONT)
        XCTAssertTrue(eventually(10) { self.fx.logText.contains("ended after its insert had been refused") })
        XCTAssertEqual(fx.status("aix01", "cd0")["state"], "empty")
    }

    func testSIGTERMAndSIGINTExitWithStatusZero() throws {
        for signal in [SIGTERM, SIGINT] {
            let p = try XCTUnwrap(fx.daemon)
            kill(p.processIdentifier, signal)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, "signal \(signal)")
            XCTAssertEqual(p.terminationReason, .exit)
            XCTAssertFalse(fx.isMounted)
            fx.stop()
            try fx.start()
        }
    }

    func testSymlinkSwappedBetweenImagesNeverLoadsWhatTheUserCannotRead() throws {
        makeDrive()
        chmod(fx.path("guests/aix01/cd0"), 0o777)
        let good = try fx.makeISO("good.iso", label: "GOOD")
        let secret = try fx.makeISO("secret.iso", label: "SECRET", files: ["s.txt": "secret\n"])
        chmod(secret, 0o600)
        // A hard link to a root-only file is still that file.
        XCTAssertEqual(link(secret, fx.media + "/hard.iso"), 0)
        XCTAssertTrue(sh("echo '\(fx.media)/hard.iso' > '\(mediaFile)'", as: "nobody").err.contains("Permission denied"))
        symlink(good, fx.media + "/link.iso")
        let swapper = """
            import os
            d = '\(fx.media)'
            for i in range(10000):
                t = d + '/good.iso' if i % 2 else d + '/secret.iso'
                os.symlink(t, d + '/link.tmp'); os.replace(d + '/link.tmp', d + '/link.iso')
            """
        let inserter = """
            import os, errno
            media, disc = '\(mediaFile)', '\(disc)'
            good = open('\(good)', 'rb').read(65536)
            ok = bad = refused = other = 0
            for i in range(400):
                fd = os.open(media, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                try:
                    os.write(fd, b'\(fx.media)/link.iso\\n'); os.close(fd)
                except OSError as e:
                    os.close(fd)
                    if e.errno == errno.EACCES: refused += 1
                    else: other += 1
                    continue
                with open(disc, 'rb') as f:
                    if f.read(65536) == good: ok += 1
                    else: bad += 1
            print(ok, bad, refused, other)
            """
        try swapper.write(toFile: fx.root + "/swap.py", atomically: true, encoding: .utf8)
        try inserter.write(toFile: fx.root + "/insert.py", atomically: true, encoding: .utf8)
        let (swap, _) = background("python3 '\(fx.root)/swap.py'")
        defer { if swap.isRunning { kill(swap.processIdentifier, SIGKILL) } }
        let r = sh("python3 '\(fx.root)/insert.py'", as: "nobody", timeout: 120)
        XCTAssertTrue(eventually(120) { !swap.isRunning })
        let counts = r.out.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        XCTAssertEqual(counts.count, 4, r.out + r.err)
        guard counts.count == 4 else { return }
        XCTAssertEqual(counts[1], 0, "a load of the secret image was served to nobody")
        XCTAssertEqual(counts[3], 0, "only EACCES refusals")
        XCTAssertGreaterThan(counts[0], 0)
        XCTAssertGreaterThan(counts[2], 0, "the race was really run (some inserts met the secret target)")
        print("symlink race: \(counts[0]) loads of the readable image, \(counts[2]) refusals, 0 of the secret one")
    }

    func testFiftyConcurrentWritersOfOneMedia() throws {
        makeDrive()
        let images = try (0..<5).map { try fx.makeISO("w\($0).iso", label: "W\($0)") }
        for i in images { XCTAssertEqual(sh("echo yes > '\(fx.path("library/\((i as NSString).lastPathComponent)/sharable"))'").status, 0) }
        let script = """
            import os, sys, threading
            media = '\(mediaFile)'
            imgs = [\(images.map { "'\($0)'" }.joined(separator: ", "))]
            errs = []
            def w(n):
                for k in range(10):
                    try:
                        with open(media, 'w') as f: f.write(imgs[(n + k) % len(imgs)] + '\\n')
                    except OSError as e: errs.append(e.errno); sys.stderr.write(str(e) + '\\n')
            ts = [threading.Thread(target=w, args=(n,)) for n in range(50)]
            [t.start() for t in ts]; [t.join() for t in ts]
            print(len(errs), sorted(set(errs)))
            """
        try script.write(toFile: fx.root + "/w.py", atomically: true, encoding: .utf8)
        let r = sh("python3 '\(fx.root)/w.py'", timeout: 120)
        XCTAssertEqual(r.out, "0 []\n", r.err)
        let s = fx.status("aix01", "cd0")
        let loaded = try XCTUnwrap(s["media"])
        XCTAssertTrue(images.contains(loaded))
        XCTAssertEqual(readText(mediaFile), loaded + "\n")
        XCTAssertEqual(sh("cmp '\(loaded)' '\(disc)'").status, 0)
    }
}
