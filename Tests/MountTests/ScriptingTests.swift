import Foundation
import Glibc
import XCTest

/// What scripts do with the control files (issue 17): short reads and followers of
/// `events`, and access(2) answers that match what open(2) does.
final class ScriptingTests: MountTestCase {
    /// Starts `command` (reading `events`) in the background; returns its output file.
    private func reader(_ name: String, _ command: String) -> (Process, String) {
        let out = fx.root + "/\(name).out"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        // exec: the reader itself is the process, so killing it leaves nothing holding the mount.
        p.arguments = ["-c", "exec " + command + " > '\(out)' 2>&1"]
        p.standardInput = FileHandle.nullDevice
        try? p.run()
        return (p, out)
    }

    private func lines(_ path: String) -> [String] { (readText(path) ?? "").split(separator: "\n").map(String.init) }

    func testEveryReadSizeSeesEveryLineInOrder() throws {
        let events = fx.path("events")
        let count = 1000
        let readers = [
            reader("bashread", "bash -c 'while read -r line; do echo \"$line\"; done' < '\(events)'"),
            reader("dd", "dd if='\(events)' bs=1 status=none"),
            reader("python", "python3 -c \"import os,sys\nfd=os.open('\(events)',os.O_RDONLY)\nwhile True:\n b=os.read(fd,16)\n sys.stdout.buffer.write(b); sys.stdout.flush()\""),
            reader("tailn", "stdbuf -oL tail -n +1 -f '\(events)'"),
            reader("tailc", "stdbuf -oL tail -c +1 -f '\(events)'"),
        ]
        let head = reader("head", "head -c 7 '\(events)'")
        defer { for (p, _) in readers + [head] where p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
        // Every reader has opened the stream once a warm-up line reaches all of them.
        var n = 0
        XCTAssertTrue(eventually(60) {
            n += 1
            mkdir(self.fx.path("guests/warmup\(n)"), 0o755)
            usleep(200_000)
            return readers.allSatisfy { !self.lines($0.1).isEmpty }
        }, "readers started")
        let script = "import os\nfor i in range(\(count)): os.mkdir('\(fx.path("guests"))/g%d' % i)"
        XCTAssertEqual(sh("python3 -c \"\(script)\"", timeout: 120).status, 0)
        for (_, out) in readers {
            func burst() -> [String] { lines(out).filter { $0.contains(" create g") } }
            XCTAssertTrue(eventually(60) { burst().count >= count }, "\(out): \(burst().count) lines")
            let got = burst()
            XCTAssertEqual(got.count, count, out)
            for (i, line) in got.enumerated() where !line.hasSuffix(" create g\(i) uid=0") {
                XCTFail("\(out): line \(i) is \(line)")
                break
            }
        }
        XCTAssertTrue(eventually(10) { !head.0.isRunning })
        XCTAssertEqual(readText(head.1)?.utf8.count, 7, "head -c 7 gets 7 bytes and ends")
        XCTAssertFalse(fx.logText.contains("writing device"), "no reply was refused by the kernel")
    }

    func testEventsSeeksAndNonBlockingReads() throws {
        let fd = open(fx.path("events"), O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        XCTAssertEqual(lseek(fd, 0, SEEK_CUR), 0, "seekable: tail seeks before it follows")
        XCTAssertEqual(fcntl(fd, F_SETFL, O_NONBLOCK), 0)
        var buf = [UInt8](repeating: 0, count: 64)
        XCTAssertEqual(read(fd, &buf, 64), -1)
        XCTAssertEqual(errno, EAGAIN, "O_NONBLOCK set by fcntl after the open is honoured")
        XCTAssertEqual(mkdir(fx.path("guests/g1"), 0o755), 0)
        var got = -1
        for _ in 0..<250 where got != 10 {
            got = read(fd, &buf, 10)
            if got != 10 { usleep(20_000) }
        }
        XCTAssertEqual(got, 10)
        let start = String(decoding: buf.prefix(10), as: UTF8.self)
        // Reading again from the start of the line (bash's read seeks back) gives it again.
        XCTAssertEqual(lseek(fd, 0, SEEK_SET), 0)
        XCTAssertEqual(read(fd, &buf, 10), 10)
        XCTAssertEqual(String(decoding: buf.prefix(10), as: UTF8.self), start)
    }

    func testOtherUsersSeeNoWriteBitsOnTheDisc() throws {
        makeDrive()
        // A file that is world-writable on the disc (Rock Ridge keeps the mode): the kernel
        // checks the mode itself here, so only the missing write bits can say no.
        let src = fx.root + "/ww-src", iso = fx.media + "/ww.iso"
        XCTAssertEqual(sh("mkdir -p '\(src)' && echo x > '\(src)/w.txt' && chmod 666 '\(src)/w.txt' && "
                          + "xorriso -as mkisofs -quiet -R -o '\(iso)' '\(src)' && chmod 644 '\(iso)'").status, 0)
        XCTAssertEqual(writeErrno(mediaFile, iso + "\n"), 0)
        let file = fx.path("guests/aix01/cd0/contents/w.txt")
        XCTAssertEqual(sh("test -r '\(file)'", as: "nobody").status, 0)
        XCTAssertNotEqual(sh("test -w '\(file)'", as: "nobody").status, 0, "a 0666 file on a disc is not writable")
    }

    /// `runuser -u nobody` must reach the mount for the last check.
    override var daemonArguments: [String] { ["-o", "allow_other"] }
}

/// access(2) on a mount without `allow_other`, where the kernel asks the daemon.
final class AccessTests: MountTestCase {
    func testAccessAgreesWithOpenOnTheDisc() throws {
        makeDrive()
        let iso = try fx.makeISO("a.iso", files: ["README.txt": "read me\n", "dir/x": "x\n"])
        XCTAssertEqual(writeErrno(mediaFile, iso + "\n"), 0)
        let file = fx.path("guests/aix01/cd0/contents/README.txt")
        XCTAssertEqual(access(file, R_OK), 0)
        XCTAssertEqual(access(file, W_OK), -1)
        XCTAssertEqual(errno, EROFS)
        XCTAssertEqual(openErrno(file, O_WRONLY), EROFS)
        XCTAssertEqual(access(disc, W_OK), -1)
        XCTAssertEqual(errno, EROFS)
        XCTAssertEqual(access(fx.path("guests/aix01/cd0/contents"), W_OK), -1)
        XCTAssertEqual(access(fx.path("guests/aix01/cd0/contents/dir"), X_OK), 0)
        XCTAssertNotEqual(sh("test -w '\(file)'").status, 0, "test -w must say no")
        XCTAssertEqual(access(mediaFile, W_OK), 0, "media is writable by its owner")
        var st = stat()
        for path in [file, fx.path("guests/aix01/cd0/contents/dir"), fx.path("guests/aix01/cd0/contents")] {
            XCTAssertEqual(stat(path, &st), 0)
            XCTAssertEqual(st.st_mode & 0o222, 0, "\(path) shows no write bits")
        }
    }

}

/// A restart with images that vanished, changed or became unreadable while the daemon was
/// down mounts at once, with those drives empty and the reason in `last_error` (issue 15, 3).
final class RestartWithBrokenMediaTests: MountTestCase {
    override var daemonArguments: [String] { ["-o", "allow_other"] }
    let drives = 100

    /// Loads `drives` drives of one guest, each with its own copy of an image, as `user`.
    private func loadAll(as user: String? = nil) throws -> [String] {
        XCTAssertEqual(mkdir(fx.path("guests/g"), 0o777), 0)
        chmod(fx.path("guests/g"), 0o777)
        let iso = try fx.makeISO("base.iso")
        var paths: [String] = []
        for i in 0..<drives {
            let copy = fx.media + "/c\(i).iso"
            XCTAssertEqual(sh("cp '\(iso)' '\(copy)' && chmod 644 '\(copy)'" + (user == nil ? "" : " && chown \(user!) '\(copy)'")).status, 0)
            XCTAssertEqual(mkdir(fx.path("guests/g/d\(i)"), 0o777), 0)
            chmod(fx.path("guests/g/d\(i)"), 0o777)
            paths.append(copy)
        }
        let loop = (0..<drives).map { "echo '\(paths[$0])' > '\(fx.path("guests/g/d\($0)/media"))'" }.joined(separator: " && ")
        let r = sh(loop, as: user, timeout: 120)
        XCTAssertEqual(r.status, 0, r.err)
        return paths
    }

    private func restartAndCheck(_ expect: String?, file: StaticString = #filePath, line: UInt = #line) throws {
        try fx.start()
        // Mounted means served: the whole tree is there at once.
        let listed = (try? FileManager.default.contentsOfDirectory(atPath: fx.path("guests/g"))) ?? []
        XCTAssertEqual(listed.filter { $0.hasPrefix("d") }.count, drives, file: file, line: line)
        for i in 0..<drives {
            let s = fx.status("g", "d\(i)")
            XCTAssertEqual(s["state"], "empty", "d\(i)", file: file, line: line)
            XCTAssertTrue(s["last_error"].map { expect == nil ? !$0.isEmpty : $0.contains(expect!) } == true,
                          "d\(i): \(s["last_error"] ?? "")", file: file, line: line)
        }
        // And it keeps serving: a good image loads.
        let fresh = try fx.makeISO("fresh.iso")
        XCTAssertEqual(writeErrno(fx.path("guests/g/d0/media"), fresh + "\n"), 0, file: file, line: line)
    }

    func testVanishedImages() throws {
        let paths = try loadAll()
        fx.stop()
        for p in paths { unlink(p) }
        try restartAndCheck("vanished")
    }

    func testReplacedImages() throws {
        let paths = try loadAll()
        fx.stop()
        let other = try fx.makeISO("other.iso", label: "OTHER", files: ["o": String(repeating: "o", count: 5000)])
        for p in paths { XCTAssertEqual(sh("cp '\(other)' '\(p).new' && mv '\(p).new' '\(p)'").status, 0) }
        // One of them is now a FIFO: it must not hold the start up.
        unlink(paths[7])
        mkfifo(paths[7], 0o644)
        try restartAndCheck(nil)
        // (d0 was loaded again by the check; its last_error is cleared.)
        for i in 1..<drives where i != 7 {
            XCTAssertTrue(fx.status("g", "d\(i)")["last_error"]?.contains("changed") == true)
        }
        XCTAssertTrue(fx.status("g", "d7")["last_error"]?.contains("not a regular file") == true)
    }

    func testImagesTheLoaderCanNoLongerRead() throws {
        let paths = try loadAll(as: "nobody")
        XCTAssertEqual(fx.status("g", "d0")["loaded_by"], "65534")
        fx.stop()
        for p in paths { chown(p, 0, 0); chmod(p, 0o600) }
        try restartAndCheck("Permission denied")
    }
}
