import Foundation
import Glibc
import XCTest

/// library/ and sharing between drives (contract section 2.5), and host drives.
final class SharingTests: MountTestCase {
    func testLibraryShowsImagesAndWhoUsesThem() throws {
        let iso = try fx.makeISO("shared.iso")
        _ = try fx.makeISO("other.iso")
        _ = FileManager.default.createFile(atPath: fx.media + "/.hidden.iso", contents: Data([1]))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: fx.path("library")).sorted(), ["other.iso", "shared.iso"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: fx.path("library/shared.iso")).sorted(),
                       ["kind", "path", "sharable", "size", "users"])
        XCTAssertEqual(readText(fx.path("library/shared.iso/path")), iso + "\n")
        XCTAssertEqual(readText(fx.path("library/shared.iso/kind")), "file\n")
        let size = try FileManager.default.attributesOfItem(atPath: iso)[.size] as! UInt64
        XCTAssertEqual(readText(fx.path("library/shared.iso/size")), "\(size)\n")
        XCTAssertEqual(readText(fx.path("library/shared.iso/sharable")), "no\n")
        XCTAssertEqual(readText(fx.path("library/shared.iso/users")), "")

        makeDrive("g1", "cd0")
        makeDrive("g2", "cd1")
        XCTAssertEqual(writeErrno(fx.path("guests/g1/cd0/media"), "shared.iso\n"), 0)
        XCTAssertEqual(readText(fx.path("library/shared.iso/users")), "g1/cd0\n")
        XCTAssertEqual(writeErrno(fx.path("guests/g2/cd1/media"), iso + "\n"), EBUSY, "exclusive by default")
        XCTAssertTrue(fx.status("g2", "cd1")["last_error"]!.contains("g1/cd0"))
        XCTAssertEqual(sh("echo yes > '\(fx.path("library/shared.iso/sharable"))'").status, 0)
        XCTAssertEqual(readText(fx.path("library/shared.iso/sharable")), "yes\n")
        XCTAssertEqual(writeErrno(fx.path("guests/g2/cd1/media"), iso + "\n"), 0, "sharable: both may load it")
        XCTAssertEqual(readText(fx.path("library/shared.iso/users")), "g1/cd0\ng2/cd1\n")
        XCTAssertEqual(fx.status("g2", "cd1")["sharable"], "yes")
        XCTAssertEqual(writeErrno(fx.path("library/shared.iso/sharable"), "maybe\n"), EINVAL)
        XCTAssertEqual(writeErrno(fx.path("library/shared.iso/size"), "1\n"), EACCES)
    }

    func testOnlyTheImageOwnerMayChangeSharing() throws {
        _ = try fx.makeISO("mine.iso")
        let r = sh("echo yes > '\(fx.path("library/mine.iso/sharable"))'", as: "nobody")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(readText(fx.path("library/mine.iso/sharable")), "no\n")
    }

    override var daemonArguments: [String] { ["-o", "allow_other"] }
}

/// Host block devices as media (`--host-drive`).
final class HostDriveTests: XCTestCase {
    func testLoopDeviceLoadsAsDeviceAndIsExclusive() throws {
        let fx = try MountFixture()
        defer { fx.destroy() }
        let iso = try fx.makeISO("dev.iso", label: "DEVLABEL", in: fx.root)
        let l = sh("losetup -r -f --show '\(iso)'")
        XCTAssertEqual(l.status, 0, l.err)
        let dev = l.out.trimmingCharacters(in: .whitespacesAndNewlines)
        defer { sh("losetup -d '\(dev)'") }
        fx.extraArgs += ["--host-drive", dev]
        try fx.start()
        for (g, d) in [("g1", "cd0"), ("g2", "cd1")] {
            XCTAssertEqual(mkdir(fx.path("guests/\(g)"), 0o755), 0)
            XCTAssertEqual(mkdir(fx.path("guests/\(g)/\(d)"), 0o755), 0)
        }
        XCTAssertEqual(writeErrno(fx.path("guests/g1/cd0/media"), dev), 0, fx.status("g1", "cd0")["last_error"] ?? "")
        let s = fx.status("g1", "cd0")
        XCTAssertEqual(s["kind"], "device")
        XCTAssertEqual(s["sharable"], "no")
        XCTAssertEqual(sh("cmp '\(fx.path("guests/g1/cd0/disc"))' '\(iso)'").status, 0)
        XCTAssertEqual(writeErrno(fx.path("guests/g2/cd1/media"), dev), EBUSY, "a host drive is exclusive")
        XCTAssertEqual(unlink(fx.path("guests/g1/cd0/media")), 0)
        XCTAssertEqual(writeErrno(fx.path("guests/g2/cd1/media"), dev), 0, "free again after the eject")
        XCTAssertEqual(unlink(fx.path("guests/g2/cd1/media")), 0)
    }
}
