import Foundation
import Glibc
import XCTest

/// Inserting, swapping and ejecting through `media` (contract section 2.1).
final class MediaTests: MountTestCase {

    func testInsertReadBackAndEject() throws {
        makeDrive()
        let iso = try fx.makeISO("one.iso")
        let r = sh("echo '\(iso)' > '\(mediaFile)'")
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(readText(mediaFile), iso + "\n")
        var s = fx.status("aix01", "cd0")
        XCTAssertEqual(s["state"], "loaded")
        XCTAssertEqual(s["kind"], "file")
        XCTAssertEqual(s["media"], iso)
        let size = try FileManager.default.attributesOfItem(atPath: iso)[.size] as! UInt64
        XCTAssertEqual(s["size"], String(size))
        XCTAssertEqual(s["blocks"], String((size + 2047) / 2048))
        XCTAssertEqual(s["loaded_by"], String(getuid()))
        XCTAssertEqual(s["last_error"], "")
        XCTAssertTrue(fx.logText.contains("inserted \(iso)"))

        XCTAssertEqual(unlink(mediaFile), 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: mediaFile))
        s = fx.status("aix01", "cd0")
        XCTAssertEqual(s["state"], "empty")
        XCTAssertEqual(s["media"], "")
    }

    func testWithoutNewlineTheCloseCompletesThePath() throws {
        makeDrive()
        let iso = try fx.makeISO("one.iso")
        XCTAssertEqual(sh("printf %s '\(iso)' > '\(mediaFile)'").status, 0)
        XCTAssertEqual(fx.status("aix01", "cd0")["media"], iso)
    }

    func testLibraryNameInserts() throws {
        makeDrive()
        let iso = try fx.makeISO("named.iso")
        XCTAssertEqual(sh("echo named.iso > '\(mediaFile)'").status, 0)
        XCTAssertEqual(fx.status("aix01", "cd0")["media"], iso)
    }

    func testTruncateEjectsButEchoSwaps() throws {
        makeDrive()
        let a = try fx.makeISO("a.iso", label: "A")
        let b = try fx.makeISO("b.iso", label: "B")
        XCTAssertEqual(writeErrno(mediaFile, a + "\n"), 0)
        XCTAssertEqual(sh("echo '\(b)' > '\(mediaFile)'").status, 0, "O_TRUNC then a write is a swap")
        XCTAssertEqual(fx.status("aix01", "cd0")["media"], b)
        XCTAssertEqual(Int(fx.status("aix01", "cd0")["generation"] ?? "0")! >= 2, true)
        XCTAssertEqual(sh(": > '\(mediaFile)'").status, 0)
        XCTAssertEqual(fx.status("aix01", "cd0")["state"], "empty", ": > media ejects")
        XCTAssertEqual(writeErrno(mediaFile, a), 0)
        XCTAssertEqual(sh("truncate -s 0 '\(mediaFile)'").status, 0)
        XCTAssertEqual(fx.status("aix01", "cd0")["state"], "empty", "truncate -s 0 ejects")
    }

    func testRefusedSwapKeepsTheOldMedia() throws {
        makeDrive()
        let a = try fx.makeISO("a.iso")
        XCTAssertEqual(writeErrno(mediaFile, a + "\n"), 0)
        XCTAssertEqual(writeErrno(mediaFile, fx.media + "/missing.iso\n"), ENOENT)
        let s = fx.status("aix01", "cd0")
        XCTAssertEqual(s["media"], a, "the old media stays loaded")
        XCTAssertTrue(s["last_error"]!.contains("missing.iso"), s["last_error"]!)
        // The shell's way: O_TRUNC, then dup2 (a flush with nothing written), then the write.
        // The truncation alone must not eject; the refused write must leave the old media.
        let r = sh("echo '\(fx.media)/missing2.iso' > '\(mediaFile)'")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(fx.status("aix01", "cd0")["media"], a, "a refused echo swap keeps the old media")
        XCTAssertFalse(fx.logText.contains("ejected \(a)"), "no eject happened on the way")
    }

    func testRefusalsReturnTheContractErrno() throws {
        makeDrive()
        let good = try fx.makeISO("good.iso")
        // ENOENT: no such file, no such library NAME
        XCTAssertEqual(writeErrno(mediaFile, "/nonexistent/x.iso\n"), ENOENT)
        XCTAssertEqual(writeErrno(mediaFile, "nosuchname\n"), ENOENT)
        // EINVAL: empty path, a directory, an empty file
        XCTAssertEqual(writeErrno(mediaFile, "\n"), EINVAL)
        XCTAssertEqual(writeErrno(mediaFile, fx.media + "\n"), EINVAL)
        _ = FileManager.default.createFile(atPath: fx.media + "/empty.iso", contents: Data())
        XCTAssertEqual(writeErrno(mediaFile, fx.media + "/empty.iso\n"), EINVAL)
        // EPERM: world-writable
        let ww = try fx.makeISO("ww.iso")
        chmod(ww, 0o666)
        XCTAssertEqual(writeErrno(mediaFile, ww + "\n"), EPERM)
        XCTAssertTrue(fx.status("aix01", "cd0")["last_error"]!.contains("world-writable"))
        // EPERM: outside the media directory, directly or through a symlink
        let outside = try fx.makeISO("outside.iso", in: fx.root)
        XCTAssertEqual(writeErrno(mediaFile, outside + "\n"), EPERM)
        XCTAssertEqual(symlink(outside, fx.media + "/link.iso"), 0)
        XCTAssertEqual(writeErrno(mediaFile, fx.media + "/link.iso\n"), EPERM)
        XCTAssertTrue(fx.status("aix01", "cd0")["last_error"]!.contains("outside"))
        // EPERM: a block device not named by --host-drive
        XCTAssertEqual(writeErrno(mediaFile, "/dev/loop0\n"), EPERM)
        // ENAMETOOLONG
        XCTAssertEqual(writeErrno(mediaFile, "/" + String(repeating: "a/", count: 2100) + "\n"), ENAMETOOLONG)
        // Nothing was loaded by any of these; a good one still works, and the shell's echo fails on refusals.
        XCTAssertEqual(fx.status("aix01", "cd0")["state"], "empty")
        let r = sh("echo /nonexistent.iso > '\(mediaFile)'")
        XCTAssertNotEqual(r.status, 0, "the shell's echo must fail")
        XCTAssertTrue(r.err.contains("No such file"), r.err)
        XCTAssertEqual(writeErrno(mediaFile, good + "\n"), 0)
        XCTAssertEqual(fx.status("aix01", "cd0")["last_error"], "", "a success clears last_error")
        XCTAssertTrue(fx.logText.contains("refused"), "refusals are logged")
        XCTAssertTrue(fx.logText.contains("ww.iso"), "the log names the refused path")
    }

    func testAnotherUserCannotInsertWhatTheyCannotRead() throws {
        makeDrive()
        chown(fx.path("guests/aix01/cd0"), 65534, 65534)
        let secret = try fx.makeISO("secret.iso")
        chmod(secret, 0o600)
        let readable = try fx.makeISO("open.iso")
        XCTAssertTrue(fx.logText.contains("mounted"))
        let r = sh("echo '\(secret)' > '\(mediaFile)'", as: "nobody")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("Permission denied"), r.err)
        XCTAssertEqual(fx.status("aix01", "cd0")["state"], "empty")
        let ok = sh("echo '\(readable)' > '\(mediaFile)'", as: "nobody")
        XCTAssertEqual(ok.status, 0, ok.err)
        XCTAssertEqual(fx.status("aix01", "cd0")["loaded_by"], "65534")
    }

    override var daemonArguments: [String] { ["-o", "allow_other"] }

    func testEditorSaveByRenameInserts() throws {
        makeDrive()
        let iso = try fx.makeISO("ed.iso")
        let tmp = fx.path("guests/aix01/cd0/.goutputstream-ABC123")
        XCTAssertEqual(writeErrno(tmp, iso + "\n"), 0)
        XCTAssertEqual(readText(tmp), iso + "\n")
        XCTAssertEqual(rename(tmp, mediaFile), 0)
        XCTAssertEqual(fx.status("aix01", "cd0")["media"], iso)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp))
        // A temporary file that is removed instead leaves nothing behind.
        XCTAssertEqual(writeErrno(tmp, "junk"), 0)
        XCTAssertEqual(unlink(tmp), 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: fx.path("guests/aix01/cd0")).sorted(),
                       ["contents", "disc", "media", "status"])
    }

    func testDriveWithMediaCannotBeRemoved() throws {
        makeDrive()
        let iso = try fx.makeISO("x.iso")
        XCTAssertEqual(writeErrno(mediaFile, iso), 0)
        XCTAssertEqual(rmdir(fx.path("guests/aix01/cd0")), -1)
        XCTAssertEqual(errno, EBUSY)
        XCTAssertEqual(unlink(mediaFile), 0)
        XCTAssertEqual(rmdir(fx.path("guests/aix01/cd0")), 0)
    }
}
