import Foundation
import Glibc
import XCTest

/// vmediafs as a citizen of mount(8), /etc/fstab (through mount.fuse3) and an installer.
final class MountHelperTests: XCTestCase {
    var fx: MountFixture!
    /// mount(8) runs mount.fuse3 with a fixed safe PATH, and mount.fuse3 runs the program
    /// named by the type (fuse.vmediafs) from it: the built daemon is linked into
    /// /usr/local/sbin for the test (unless something is installed there already).
    let installed = "/usr/local/sbin/vmediafs"
    var linked = false

    override func setUpWithError() throws {
        fx = try MountFixture()
        if access(installed, F_OK) != 0 {
            sh("mkdir -p /usr/local/sbin")
            XCTAssertEqual(symlink(daemonPath, installed), 0)
            linked = true
        }
    }

    override func tearDown() {
        if fx.isMounted { sh("umount '\(fx.mnt)' || fusermount3 -uz '\(fx.mnt)'") }
        waitForDaemonToExit()
        if daemonRunning() {   // never leave a daemon behind: kill it and clear its mount
            sh("pkill -9 -f -- '\(fx.state)'")
            sh("fusermount3 -uz '\(fx.mnt)'")
        }
        fx.destroy()
        if linked { unlink(installed) }
    }

    /// The background daemon (not our child) is found by its state path.
    func daemonRunning() -> Bool { sh("pgrep -f -- '\(fx.state)'").status == 0 }

    func waitForDaemonToExit() {
        let deadline = Date().addingTimeInterval(10)
        while daemonRunning() && Date() < deadline { usleep(20_000) }
    }

    func useTheMount() throws {
        XCTAssertTrue(fx.isMounted)
        XCTAssertEqual(mkdir(fx.path("guests/g"), 0o755), 0)
        XCTAssertEqual(mkdir(fx.path("guests/g/cd"), 0o755), 0)
        let iso = try fx.makeISO("m.iso")
        XCTAssertEqual(writeErrno(fx.path("guests/g/cd/media"), "m.iso\n"), 0)
        XCTAssertEqual(sh("cmp '\(fx.path("guests/g/cd/disc"))' '\(iso)'").status, 0)
        let line = (readText("/proc/self/mountinfo") ?? "").split(separator: "\n").first { $0.contains(" \(fx.mnt) ") }
        XCTAssertTrue(line?.contains("fuse.vmediafs vmediafs") == true, String(line ?? ""))
    }

    func testMountDashT() throws {
        let r = sh("mount -t fuse.vmediafs vmediafs '\(fx.mnt)' -o state='\(fx.state)',media_dir='\(fx.media)',allow_other")
        XCTAssertEqual(r.status, 0, r.err)
        try useTheMount()
        XCTAssertEqual(sh("umount '\(fx.mnt)'").status, 0)
        waitForDaemonToExit()
        XCTAssertFalse(daemonRunning(), "umount ends the daemon")
        XCTAssertFalse(fx.isMounted)
    }

    func testFstabLine() throws {
        let fstab = fx.root + "/fstab"
        try "vmediafs \(fx.mnt) fuse.vmediafs state=\(fx.state),media_dir=\(fx.media),allow_other,noauto 0 0\n"
            .write(toFile: fstab, atomically: false, encoding: .utf8)
        let r = sh("mount -T '\(fstab)' '\(fx.mnt)'")
        XCTAssertEqual(r.status, 0, r.err)
        try useTheMount()
        XCTAssertEqual(sh("umount '\(fx.mnt)'").status, 0)
        waitForDaemonToExit()
        XCTAssertFalse(daemonRunning())
    }

    func testMountReportsAFailedStart() throws {
        // A state file that is not a database: the mount command itself must fail and say why.
        try "junk".write(toFile: fx.root + "/bad.db", atomically: false, encoding: .utf8)
        let r = sh("mount -t fuse.vmediafs vmediafs '\(fx.mnt)' -o state='\(fx.root)/bad.db'")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("bad.db"), r.err)
        XCTAssertFalse(fx.isMounted)
    }

    func testInstallIntoDestdir() throws {
        let dest = fx.root + "/dest"
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let r = sh("cd '\(repo)' && BIN='\((daemonPath as NSString).deletingLastPathComponent)' DESTDIR='\(dest)' PREFIX=/usr mountscripts/install.sh")
        XCTAssertEqual(r.status, 0, r.out + r.err)
        for f in ["/usr/bin/vmediafs", "/usr/bin/vmedia", "/usr/share/man/man8/vmediafs.8.md", "/usr/share/man/man8/vmedia.8.md",
                  "/usr/share/bash-completion/completions/vmedia", "/etc/systemd/system/vmediafs.service", "/etc/default/vmediafs"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dest + f), f)
        }
        let unit = readText(dest + "/etc/systemd/system/vmediafs.service") ?? ""
        XCTAssertTrue(unit.contains("ExecStart=/usr/bin/vmediafs ${VMEDIAFS_MOUNT} -f"), unit)
        XCTAssertEqual(sh("'\(dest)/usr/bin/vmediafs' --help").status, 0)
    }
}
