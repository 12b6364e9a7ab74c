import Foundation
import Glibc
import XCTest

/// The built `vmedia` next to the daemon.
var vmediaPath: String { (daemonPath as NSString).deletingLastPathComponent + "/vmedia" }

/// Every `vmedia` subcommand against a real mount, as an administrator would run them,
/// including the failure paths (exit status and the contract's reason on stderr).
final class CLITests: MountTestCase {
    /// Runs vmedia with the mount given by $VMEDIAFS_MOUNT.
    @discardableResult
    func vmedia(_ args: String, as user: String? = nil) -> Run {
        sh("VMEDIAFS_MOUNT='\(fx.mnt)' '\(vmediaPath)' \(args)", as: user)
    }

    func json(_ r: Run) -> Any? { try? JSONSerialization.jsonObject(with: Data(r.out.utf8)) }

    func testGuestsAndDrivesLifecycle() {
        XCTAssertEqual(vmedia("mkguest aix01").status, 0)
        XCTAssertEqual(vmedia("mkguest lpar02").status, 0)
        let d0 = vmedia("mkvopt aix01")
        XCTAssertEqual(d0.status, 0, d0.err)
        XCTAssertEqual(d0.out.trimmingCharacters(in: .whitespacesAndNewlines), "vtopt0")
        XCTAssertEqual(vmedia("mkvopt lpar02").out.trimmingCharacters(in: .whitespacesAndNewlines), "vtopt1",
                       "default names are unique on the host, as VIOS's")
        XCTAssertEqual(vmedia("mkvopt aix01 aix01_cd").status, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: fx.path("guests/aix01/aix01_cd")), "a plain mkdir underneath")

        let ls = vmedia("lsguest")
        XCTAssertEqual(ls.status, 0)
        XCTAssertTrue(ls.out.contains("aix01"))
        let guests = json(vmedia("lsguest --json")) as? [[String: Any]]
        XCTAssertEqual(guests?.first(where: { $0["guest"] as? String == "aix01" })?["drives"] as? Int, 2)

        let bad = vmedia("mkvopt aix01 'bad name'")
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.err.hasPrefix("vmedia: "), bad.err)
        let dup = vmedia("mkguest aix01")
        XCTAssertEqual(dup.status, 2)
        XCTAssertTrue(dup.err.lowercased().contains("exist"), dup.err)
        let busy = vmedia("rmguest aix01")
        XCTAssertEqual(busy.status, 2, "a guest with drives cannot be removed")
        XCTAssertTrue(busy.err.contains("rmvopt"), "the hint names what to do first: \(busy.err)")
        XCTAssertEqual(vmedia("rmvopt vtopt0").status, 0)
        XCTAssertEqual(vmedia("rmvopt aix01/aix01_cd").status, 0)
        XCTAssertEqual(vmedia("rmguest aix01").status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: fx.path("guests/aix01")))
        XCTAssertEqual(vmedia("rmvopt nosuchdrive").status, 1)
    }

    func testLoadListShareUnload() throws {
        let iso = try fx.makeISO("install.iso")
        vmedia("mkguest g1"); vmedia("mkguest g2")
        vmedia("mkvopt g1 cd1"); vmedia("mkvopt g2 cd2")
        var lsv = vmedia("lsvopt")
        XCTAssertTrue(lsv.out.contains("No Media"), lsv.out)
        XCTAssertTrue(lsv.out.split(separator: "\n").first!.contains("GUEST"), lsv.out)

        let load = vmedia("loadopt cd1 install.iso")
        XCTAssertEqual(load.status, 0, load.err)
        XCTAssertEqual(fx.status("g1", "cd1")["media"], iso)
        lsv = vmedia("lsvopt g1")
        XCTAssertTrue(lsv.out.contains(iso), lsv.out)
        let drives = json(vmedia("lsvopt --json")) as? [[String: Any]]
        XCTAssertEqual(drives?.count, 2)

        let exclusive = vmedia("loadopt cd2 install.iso")
        XCTAssertEqual(exclusive.status, 2, "exclusive by default")
        XCTAssertTrue(exclusive.err.contains("not sharable"), exclusive.err)
        XCTAssertEqual(vmedia("share install.iso yes").status, 0)
        XCTAssertEqual(vmedia("loadopt cd2 install.iso").status, 0)
        let rep = vmedia("lsrep")
        XCTAssertTrue(rep.out.contains("g1/cd1") && rep.out.contains("g2/cd2"), rep.out)
        let repJSON = json(vmedia("lsrep --json")) as? [[String: Any]]
        let entry = repJSON?.first { $0["name"] as? String == "install.iso" }
        XCTAssertEqual((entry?["users"] as? [String])?.sorted(), ["g1/cd1", "g2/cd2"], vmedia("lsrep --json").out)

        let other = try fx.makeISO("other.iso")
        let noForce = vmedia("loadopt cd1 other.iso")
        XCTAssertEqual(noForce.status, 2, "a loaded drive needs --force")
        XCTAssertEqual(fx.status("g1", "cd1")["media"], iso)
        XCTAssertEqual(vmedia("loadopt cd1 other.iso --force").status, 0)
        XCTAssertEqual(fx.status("g1", "cd1")["media"], other)

        let missing = vmedia("loadopt cd1 /nonexistent.iso --force")
        XCTAssertEqual(missing.status, 1, "ENOENT is not found")
        XCTAssertTrue(missing.err.contains("nonexistent"), "the contract's reason: \(missing.err)")
        XCTAssertEqual(fx.status("g1", "cd1")["media"], other, "a refused swap keeps the old media")

        let st = json(vmedia("status cd1 --json")) as? [String: Any]
        XCTAssertEqual(st?["state"] as? String, "loaded")
        XCTAssertEqual(vmedia("status cd1").out, readText(fx.path("guests/g1/cd1/status")))

        XCTAssertEqual(vmedia("unloadopt cd1").status, 0)
        XCTAssertEqual(fx.status("g1", "cd1")["state"], "empty")
        XCTAssertEqual(vmedia("unloadopt cd1").status, 1, "nothing to unload")
    }

    func testEventsCount() throws {
        let out = fx.root + "/ev.txt"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: vmediaPath)
        p.arguments = ["events", "--count", "2", "--mount", fx.mnt]
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        try p.run()
        // Events from before the reader opened `events` are not its to see: make guests
        // until it has seen two, instead of guessing when it is ready.
        var made = 0
        XCTAssertTrue(eventually(10) {
            if p.isRunning { vmedia("mkguest evg\(made)"); made += 1 }
            return !p.isRunning
        }, "events --count 2 stops after two lines")
        if p.isRunning { p.terminate() }
        let lines = (readText(out) ?? "").split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        XCTAssertTrue(lines.allSatisfy { $0.contains(" create evg") }, "\(lines)")
    }

    func testNoMountIsAClearError() {
        let r = sh("VMEDIAFS_MOUNT='\(fx.root)/nowhere' '\(vmediaPath)' lsguest")
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.hasPrefix("vmedia: "), r.err)
    }
}
