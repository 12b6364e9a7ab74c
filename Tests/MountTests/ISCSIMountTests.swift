import Foundation
import Glibc
import TestSupport
import XCTest

/// Guests reach their drives over iSCSI (contract section 5), with the files and the guest
/// side acting on the same emulators.
final class ISCSIMountTests: MountTestCase {
    override var daemonArguments: [String] { ["--iscsi", "127.0.0.1:0"] }
    let me = "iqn.2026-11.test:host1"
    let target = "iqn.2026-11.io.vmediafs:g1"

    var port: Int {
        let line = fx.logText.split(separator: "\n").first { $0.contains("iSCSI target listening on") } ?? ""
        return Int(line.split(separator: ":").last ?? "") ?? 0
    }

    func prepare(load: Bool = true) throws -> String {
        makeDrive("g1", "cd0")
        XCTAssertEqual(writeErrno(fx.path("guests/g1/initiators"), me + "\n"), 0)
        let iso = try fx.makeISO("guest.iso", label: "GUESTDISC", files: ["f.bin": String(repeating: "0123456789", count: 50_000)])
        if load { XCTAssertEqual(writeErrno(fx.path("guests/g1/cd0/media"), iso), 0) }
        return iso
    }

    func connect() throws -> MiniInitiator {
        let i = try XCTUnwrap(MiniInitiator(port: port))
        XCTAssertEqual(i.login(initiator: me, target: target), 0)
        _ = i.command([0x00])   // TEST UNIT READY: takes the power-on unit attention
        return i
    }

    func testAccessFilesAndDiscovery() throws {
        makeDrive("g1", "cd0")
        makeDrive("g2", "cd1")
        XCTAssertTrue(try FileManager.default.contentsOfDirectory(atPath: fx.path("guests/g1")).contains("initiators"))
        XCTAssertEqual(readText(fx.path("guests/g1/initiators")), "", "nobody may log in by default")
        XCTAssertNotEqual(try XCTUnwrap(MiniInitiator(port: port)).login(initiator: me, target: target), 0)
        XCTAssertEqual(sh("printf '%s\\n' '\(me)' '# a comment' iqn.2026-11.test:other > '\(fx.path("guests/g1/initiators"))'").status, 0)
        XCTAssertEqual(readText(fx.path("guests/g1/initiators")), "\(me)\niqn.2026-11.test:other\n")
        XCTAssertEqual(writeErrno(fx.path("guests/g1/initiators"), "not an iqn\n"), EINVAL)
        let ls = sh("iscsi-ls -i \(me) iscsi://127.0.0.1:\(port)")
        XCTAssertTrue(ls.out.contains(target), ls.out + ls.err)
        XCTAssertFalse(ls.out.contains("io.vmediafs:g2"), "discovery shows only what the initiator may reach")
        XCTAssertFalse(sh("iscsi-ls -i iqn.2026-11.test:stranger iscsi://127.0.0.1:\(port)").out.contains(target))
        // CHAP: write-only, required once set.
        XCTAssertEqual(writeErrno(fx.path("guests/g1/chap"), "user:short\n"), EINVAL)
        XCTAssertEqual(writeErrno(fx.path("guests/g1/chap"), "guestuser:averylongsecret\n"), 0)
        XCTAssertEqual(openErrno(fx.path("guests/g1/chap"), O_RDONLY), EACCES)
        XCTAssertNotEqual(try XCTUnwrap(MiniInitiator(port: port)).login(initiator: me, target: target), 0, "CHAP required")
        XCTAssertNotEqual(try XCTUnwrap(MiniInitiator(port: port)).login(initiator: me, target: target, chap: ("guestuser", "wrongsecret12")), 0)
        let ok = try XCTUnwrap(MiniInitiator(port: port))
        XCTAssertEqual(ok.login(initiator: me, target: target, chap: ("guestuser", "averylongsecret")), 0)
        waitFor("status shows the session") { fx.status("g1", "cd0")["sessions"] == me }
        _ = ok.logout()
        XCTAssertEqual(sh(": > '\(fx.path("guests/g1/chap"))'").status, 0, "an empty chap file turns CHAP off")
        XCTAssertEqual(try XCTUnwrap(MiniInitiator(port: port)).login(initiator: me, target: target), 0)
        // Access survives a restart.
        fx.stop()
        try fx.start()
        XCTAssertEqual(readText(fx.path("guests/g1/initiators")), "\(me)\niqn.2026-11.test:other\n")
    }

    func testGuestReadsTheDiscAndRealInitiatorsAgree() throws {
        let iso = try prepare()
        let i = try connect()
        let cap = try XCTUnwrap(i.command([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], expected: 8))
        let size = try FileManager.default.attributesOfItem(atPath: iso)[.size] as! UInt64
        let last = UInt32(cap.data[0]) << 24 | UInt32(cap.data[1]) << 16 | UInt32(cap.data[2]) << 8 | UInt32(cap.data[3])
        XCTAssertEqual(UInt64(last) + 1, (size + 2047) / 2048)
        let r = try XCTUnwrap(i.command([0x28, 0, 0, 0, 0, 16, 0, 0, 1, 0], expected: 2048))
        let fh = try FileHandle(forReadingFrom: URL(fileURLWithPath: iso))
        try fh.seek(toOffset: 16 * 2048)
        XCTAssertEqual(r.data, Array(fh.readData(ofLength: 2048)), "block 16 (the volume descriptor) as on the image")
        // A LUN field with another address method comes through as a number past Int: no
        // such drive, and the daemon keeps serving.
        let odd = try XCTUnwrap(i.command([0x00], lun: 0xC0FF_FFFF_FFFF_FFFF))
        XCTAssertEqual(senseTriple(odd.sense), [5, 0x25, 0], "LOGICAL UNIT NOT SUPPORTED")
        XCTAssertEqual(i.command([0x00])?.status, 0)
        let inq = sh("iscsi-inq -i \(me) iscsi://127.0.0.1:\(port)/\(target)/0")
        XCTAssertTrue(inq.out.contains("Removable:1"), inq.out + inq.err)
        let out = fx.root + "/via-qemu.img"
        let opts = "driver=iscsi,transport=tcp,portal=127.0.0.1:\(port),target=\(target),lun=0,initiator-name=\(me)"
        let q = sh("qemu-img convert --image-opts '\(opts)' -O raw '\(out)'", timeout: 120)
        XCTAssertEqual(q.status, 0, q.err)
        XCTAssertEqual(sh("cmp -n \(size) '\(out)' '\(iso)'").status, 0, "QEMU reads the disc byte-exact")
    }

    func testGuestLockDefersTheEjectAndGuestEjectRemovesMedia() throws {
        _ = try prepare()
        let i = try connect()
        XCTAssertEqual(i.command([0x1E, 0, 0, 0, 1, 0])?.status, 0, "PREVENT MEDIUM REMOVAL")
        waitFor("status shows the lock") { fx.status("g1", "cd0")["locked"] == "yes" }
        XCTAssertEqual(unlink(fx.path("guests/g1/cd0/media")), -1)
        XCTAssertEqual(errno, EBUSY, "a locked tray refuses the eject")
        XCTAssertEqual(fx.status("g1", "cd0")["eject_pending"], "yes")
        XCTAssertEqual(fx.status("g1", "cd0")["state"], "loaded")
        // The guest sees the eject request (GESN, media class).
        let gesn = try XCTUnwrap(i.command([0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8, 0], expected: 8))
        XCTAssertEqual(gesn.data.count, 8)
        XCTAssertEqual(gesn.data[4] & 0x0F, 1, "EjectRequest")
        // A waiting unloadopt finishes when the guest allows removal.
        let waiter = Process()
        waiter.executableURL = URL(fileURLWithPath: vmediaPath)
        waiter.arguments = ["unloadopt", "cd0", "--wait", "--timeout", "20", "--mount", fx.mnt]
        try waiter.run()
        usleep(300_000)
        XCTAssertTrue(waiter.isRunning, "unloadopt --wait waits for the guest")
        XCTAssertEqual(i.command([0x1E, 0, 0, 0, 0, 0])?.status, 0, "ALLOW MEDIUM REMOVAL")
        waitFor("the deferred eject completes") { fx.status("g1", "cd0")["state"] == "empty" }
        XCTAssertFalse(FileManager.default.fileExists(atPath: fx.path("guests/g1/cd0/media")))
        waiter.waitUntilExit()   // bounded by its own --timeout
        XCTAssertEqual(waiter.terminationStatus, 0)

        // An insert through the files reaches the guest as a unit attention.
        let iso2 = try fx.makeISO("second.iso")
        XCTAssertEqual(writeErrno(fx.path("guests/g1/cd0/media"), iso2), 0)
        let tur = try XCTUnwrap(i.command([0x00]))
        XCTAssertEqual(tur.status, 2)
        XCTAssertEqual(senseTriple(tur.sense), [0x06, 0x28, 0x00])
        XCTAssertEqual(i.command([0x00])?.status, 0, "reported once")

        // The guest's own eject removes `media`. Listed twice: the second listing is the
        // kernel's kept one (the first marks the directory's atime stale, and the next
        // opendir's fstat would fetch fresh attributes by chance).
        for _ in 0..<2 {
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: fx.path("guests/g1/cd0")).sorted(),
                           ["contents", "disc", "media", "status"], "listed (and kept by the kernel) while loaded")
        }
        XCTAssertEqual(i.command([0x1B, 0, 0, 0, 0x02, 0])?.status, 0, "START STOP UNIT LoEj=1 Start=0")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: fx.path("guests/g1/cd0")).sorted(),
                       ["contents", "disc", "status"], "a kept listing does not outlive a guest's eject")
        waitFor("media disappears") { !FileManager.default.fileExists(atPath: fx.path("guests/g1/cd0/media")) }
        XCTAssertEqual(fx.status("g1", "cd0")["state"], "empty")
        XCTAssertTrue(fx.logText.contains("ejected (guest)"), fx.logText)
    }

    func testDroppedConnectionReleasesItsLock() throws {
        _ = try prepare()
        let i = try connect()
        XCTAssertEqual(i.command([0x1E, 0, 0, 0, 1, 0])?.status, 0)
        waitFor("locked") { fx.status("g1", "cd0")["locked"] == "yes" }
        i.close()
        waitFor("a dropped connection releases its lock") { fx.status("g1", "cd0")["locked"] == "no" }
        XCTAssertEqual(unlink(fx.path("guests/g1/cd0/media")), 0)
    }
}
