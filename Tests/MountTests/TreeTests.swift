import Foundation
import Glibc
import XCTest

/// Guests and drives as directories (contract section 2).
final class TreeTests: MountTestCase {
    func testTopLevelTree() {
        let top = try? FileManager.default.contentsOfDirectory(atPath: fx.mnt).sorted()
        XCTAssertEqual(top, ["events", "guests", "library"])
        XCTAssertTrue(fx.logText.contains("mounted on"))
    }

    func testCreateAndRemoveGuestsAndDrives() throws {
        XCTAssertEqual(mkdir(fx.path("guests/aix01"), 0o750), 0)
        XCTAssertEqual(mkdir(fx.path("guests/aix01/cd0"), 0o755), 0)
        let drive = try FileManager.default.contentsOfDirectory(atPath: fx.path("guests/aix01/cd0")).sorted()
        XCTAssertEqual(drive, ["contents", "disc", "status"], "an empty drive has no media file")
        var st = stat()
        XCTAssertEqual(stat(fx.path("guests/aix01"), &st), 0)
        let mask = umask(0)
        umask(mask)
        XCTAssertEqual(st.st_mode & 0o7777, 0o750 & ~mask, "mode comes from mkdir and the umask")
        XCTAssertEqual(st.st_uid, getuid())
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFDIR)

        XCTAssertEqual(mkdir(fx.path("guests/aix01"), 0o755), -1)
        XCTAssertEqual(errno, EEXIST)
        XCTAssertEqual(rmdir(fx.path("guests/aix01")), -1)
        XCTAssertEqual(errno, ENOTEMPTY, "a guest with drives cannot be removed")
        XCTAssertEqual(rmdir(fx.path("guests/aix01/cd0")), 0)
        XCTAssertEqual(rmdir(fx.path("guests/aix01")), 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: fx.path("guests/aix01")))
    }

    func testNamesAreChecked() {
        XCTAssertEqual(mkdir(fx.path("guests/g1"), 0o755), 0)
        for bad in ["a b", ".hidden", "semi;colon", "media", "disc", "status", "contents", "initiators", "chap",
                    String(repeating: "x", count: 65), "ünï"] {
            XCTAssertEqual(mkdir(fx.path("guests/\(bad)"), 0o755), -1, bad)
            XCTAssertEqual(errno, EINVAL, "guest name \(bad)")
            XCTAssertEqual(mkdir(fx.path("guests/g1/\(bad)"), 0o755), -1, bad)
            // A guest directory holds the files `initiators` and `chap`: the kernel finds
            // those names taken before vmediafs is asked.
            XCTAssertEqual(errno, ["initiators", "chap"].contains(bad) ? EEXIST : EINVAL, "drive name \(bad)")
        }
        XCTAssertEqual(mkdir(fx.path("guests/" + String(repeating: "y", count: 300)), 0o755), -1)
        XCTAssertEqual(errno, ENAMETOOLONG, "the kernel refuses names over 255 bytes")
        XCTAssertEqual(mkdir(fx.path("guests/" + String(repeating: "z", count: 64)), 0o755), 0, "64 characters are allowed")
        XCTAssertEqual(mkdir(fx.path("guests/g1/a.b_c-9"), 0o755), 0)
    }

    func testDriveNamesAreUniqueOnTheHost() {
        XCTAssertEqual(mkdir(fx.path("guests/g1"), 0o755), 0)
        XCTAssertEqual(mkdir(fx.path("guests/g2"), 0o755), 0)
        XCTAssertEqual(mkdir(fx.path("guests/g1/vtopt0"), 0o755), 0)
        XCTAssertEqual(mkdir(fx.path("guests/g2/vtopt0"), 0o755), -1)
        XCTAssertEqual(errno, EEXIST)
        XCTAssertEqual(fx.status("g1", "vtopt0")["lun"], "0")
        XCTAssertEqual(mkdir(fx.path("guests/g1/vtopt1"), 0o755), 0)
        XCTAssertEqual(fx.status("g1", "vtopt1")["lun"], "1")
    }

    func testOtherFilesCannotBeCreated() {
        XCTAssertEqual(writeErrno(fx.path("x"), ""), EPERM)
        XCTAssertEqual(writeErrno(fx.path("guests/x"), ""), EPERM)
        XCTAssertEqual(mkdir(fx.path("library/x"), 0o755), -1)
        XCTAssertEqual(errno, EPERM)
        XCTAssertEqual(mkdir(fx.path("x"), 0o755), -1)
        XCTAssertEqual(errno, EPERM)
        makeDrive()
        XCTAssertEqual(writeErrno(fx.path("guests/aix01/cd0/status"), "x"), EACCES)
        XCTAssertEqual(writeErrno(fx.path("guests/aix01/status"), "x"), EPERM)
        XCTAssertEqual(writeErrno(fx.path("guests/aix01/cd0/disc"), "x"), EROFS)
        XCTAssertEqual(mkdir(fx.path("guests/aix01/cd0/sub"), 0o755), -1)
        XCTAssertEqual(errno, EPERM)
    }

    func testChmodAndChownWorkOnGuestsAndDrives() {
        makeDrive()
        XCTAssertEqual(chmod(fx.path("guests/aix01/cd0"), 0o700), 0)
        XCTAssertEqual(chown(fx.path("guests/aix01/cd0"), 65534, 65534), 0)
        var st = stat()
        stat(fx.path("guests/aix01/cd0"), &st)
        XCTAssertEqual(st.st_mode & 0o7777, 0o700)
        XCTAssertEqual(st.st_uid, 65534)
        XCTAssertEqual(fx.status("aix01", "cd0")["state"], "empty")
    }

    func testEmptyDriveStatus() {
        makeDrive()
        let s = fx.status("aix01", "cd0")
        for key in ["guest", "drive", "state", "kind", "media", "size", "blocks", "block_size", "sharable", "locked",
                    "eject_pending", "generation", "openers", "loaded_by", "loaded_at", "last_error"] {
            XCTAssertNotNil(s[key], "status has \(key)")
        }
        XCTAssertEqual(s["guest"], "aix01")
        XCTAssertEqual(s["drive"], "cd0")
        XCTAssertEqual(s["state"], "empty")
        XCTAssertEqual(s["kind"], "none")
        XCTAssertEqual(s["size"], "0")
        XCTAssertEqual(s["block_size"], "2048")
        XCTAssertEqual(s["locked"], "no")
    }
}
