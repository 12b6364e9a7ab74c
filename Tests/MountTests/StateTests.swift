import Foundation
import Glibc
import XCTest

/// State survives restarts and crashes (contract section 4).
final class StateTests: MountTestCase {
    func testEverythingComesBackAfterARestart() throws {
        makeDrive("g1", "cd0")
        makeDrive("g1", "cd1")
        XCTAssertEqual(chmod(fx.path("guests/g1/cd1"), 0o711), 0)
        let iso = try fx.makeISO("keep.iso")
        XCTAssertEqual(writeErrno(fx.path("guests/g1/cd0/media"), iso), 0)
        XCTAssertEqual(writeErrno(fx.path("library/keep.iso/sharable"), "yes"), 0)
        fx.stop()
        try fx.start()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: fx.path("guests/g1")).sorted(), ["cd0", "cd1", "chap", "initiators"])
        XCTAssertEqual(fx.status("g1", "cd0")["media"], iso)
        XCTAssertEqual(fx.status("g1", "cd1")["lun"], "1")
        var st = stat()
        stat(fx.path("guests/g1/cd1"), &st)
        XCTAssertEqual(st.st_mode & 0o7777, 0o711)
        XCTAssertEqual(readText(fx.path("library/keep.iso/sharable")), "yes\n")
        XCTAssertEqual(sh("cmp '\(fx.path("guests/g1/cd0/disc"))' '\(iso)'").status, 0)
    }

    func testKillDashNineLosesNothingAcknowledged() throws {
        makeDrive("g1", "cd0")
        let iso = try fx.makeISO("crash.iso")
        XCTAssertEqual(writeErrno(fx.path("guests/g1/cd0/media"), iso), 0)
        fx.crash()
        try fx.start()
        XCTAssertEqual(fx.status("g1", "cd0")["media"], iso)
    }

    func testVanishedImageComesBackAsAnEmptyDriveWithAReason() throws {
        makeDrive("g1", "cd0")
        makeDrive("g1", "cd1")
        let gone = try fx.makeISO("gone.iso")
        let changed = try fx.makeISO("changed.iso")
        XCTAssertEqual(writeErrno(fx.path("guests/g1/cd0/media"), gone), 0)
        XCTAssertEqual(writeErrno(fx.path("guests/g1/cd1/media"), changed), 0)
        fx.stop()
        unlink(gone)
        XCTAssertEqual(sh("printf 'x' >> '\(changed)'").status, 0)
        try fx.start()
        let s0 = fx.status("g1", "cd0")
        XCTAssertEqual(s0["state"], "empty")
        XCTAssertTrue(s0["last_error"]!.contains("vanished"), s0["last_error"]!)
        let s1 = fx.status("g1", "cd1")
        XCTAssertEqual(s1["state"], "empty")
        XCTAssertTrue(s1["last_error"]!.contains("changed"), s1["last_error"]!)
    }

    func testASecondDaemonOnTheSameStateRefuses() throws {
        let other = try MountFixture()
        defer { other.destroy() }
        let p = sh("'\(daemonPath)' '\(other.mnt)' --state '\(fx.state)' -f", timeout: 20)
        XCTAssertNotEqual(p.status, 0)
        XCTAssertTrue(p.err.contains("in use by another vmediafs"), p.err)
        XCTAssertFalse(other.isMounted)
    }

    func testADamagedDatabaseIsRefusedAndKept() throws {
        fx.stop()
        let garbage = String(repeating: "not a database ", count: 400)
        let bad = fx.root + "/bad.db"
        try garbage.write(toFile: bad, atomically: false, encoding: .utf8)
        let p = sh("'\(daemonPath)' '\(fx.mnt)' --state '\(bad)' -f", timeout: 20)
        XCTAssertNotEqual(p.status, 0)
        XCTAssertTrue(p.err.contains(bad), p.err)
        XCTAssertEqual(readText(bad), garbage, "never overwritten")
        XCTAssertFalse(fx.isMounted)
    }
}

/// The `events` stream (contract section 2.6).
final class EventsTests: MountTestCase {
    func testEventsStreamShowsWhatHappens() throws {
        let out = fx.root + "/events.txt"
        let reader = Process()
        reader.executableURL = URL(fileURLWithPath: "/bin/sh")
        reader.arguments = ["-c", "exec cat '\(fx.path("events"))' > '\(out)'"]
        try reader.run()
        defer { if reader.isRunning { kill(reader.processIdentifier, SIGINT) }; reader.waitUntilExit() }
        usleep(300_000)
        makeDrive("g1", "cd0")
        let iso = try fx.makeISO("ev.iso")
        XCTAssertEqual(writeErrno(fx.path("guests/g1/cd0/media"), iso), 0)
        XCTAssertEqual(writeErrno(fx.path("guests/g1/cd0/media"), "/nope.iso"), ENOENT)
        XCTAssertEqual(unlink(fx.path("guests/g1/cd0/media")), 0)
        var text = ""
        eventually { text = readText(out) ?? ""; return text.contains(" eject ") }
        let lines = text.split(separator: "\n").map(String.init)
        let kinds = lines.map { $0.split(separator: " ")[1] }
        XCTAssertEqual(kinds, ["create", "create", "insert", "refuse", "eject"], text)
        XCTAssertTrue(lines[2].contains("g1/cd0"))
        XCTAssertTrue(lines[2].contains("media=\(iso)"))
        XCTAssertNotNil(lines[0].range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z "#, options: .regularExpression), lines[0])
        // Interrupting the blocked reader works (the read answers EINTR, cat exits).
        kill(reader.processIdentifier, SIGINT)
        XCTAssertTrue(eventually { !reader.isRunning }, "a blocked events reader can be interrupted")
    }

    func testPollReportsReadable() throws {
        let script = """
        import os, select, sys
        fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
        p = select.poll(); p.register(fd, select.POLLIN)
        before = p.poll(200)
        try:
            os.read(fd, 4096); print("read without data did not fail"); sys.exit(1)
        except BlockingIOError:
            pass
        os.mkdir(sys.argv[2])
        after = p.poll(5000)
        print(len(before), len(after), os.read(fd, 4096).decode().split()[1])
        """
        try script.write(toFile: fx.root + "/poll.py", atomically: false, encoding: .utf8)
        let r = sh("python3 '\(fx.root)/poll.py' '\(fx.path("events"))' '\(fx.path("guests/pg"))'")
        XCTAssertEqual(r.out.trimmingCharacters(in: .whitespacesAndNewlines), "0 1 create", r.err)
    }
}
