import Foundation
import XCTest
@testable import VMediaCLI

/// How `vmedia` reacts to the filesystem's answers (errnos, `last_error=`, `eject_pending=`),
/// with the answers injected into a fake tree. Always fake: the point is the logic.
final class FilesystemAnswerTests: XCTestCase {
    var fake: FakeMount!
    var io: FaultyIO!
    var tree: VMediaTree!
    let ref = DriveRef(guest: "web01", drive: "vtopt0")

    override func setUpWithError() throws {
        fake = try FakeMount()
        io = FaultyIO()
        tree = fake.tree(io: io)
        try tree.makeGuest("web01")
        try tree.makeDrive(guest: "web01", name: "vtopt0")
        try fake.settle()
    }

    override func tearDown() { fake?.tearDown() }

    func setStatus(media: String?, locked: Bool = false, ejectPending: Bool = false, lastError: String = "") {
        try? FakeMount.writeText(tree.statusPath(ref), FakeMount.status(ref, media: media, generation: 3, locked: locked,
                                                                        ejectPending: ejectPending, lastError: lastError))
    }

    // MARK: mkvopt

    func testMkvoptRetriesWhenAnotherAdministratorTookTheName() throws {
        try tree.makeGuest("db01")
        // Someone else's vtopt1 appears (in a guest we cannot see) just as we try it.
        io.fail(.mkdir, "/db01/vtopt1", EEXIST)
        XCTAssertEqual(try tree.makeDrive(guest: "db01"), "vtopt2")
        XCTAssertEqual(io.log.filter { $0.hasPrefix("mkdir") && $0.contains("/db01/") }.count, 2)
    }

    func testMkvoptNamedEEXISTHostWideHint() {
        io.fail(.mkdir, "/web01/vtopt7", EEXIST)
        assertFails(.refused, "unique on the whole host") { try tree.makeDrive(guest: "web01", name: "vtopt7") }
    }

    func testInvalidNameIsTheFilesystemsEINVAL() {
        io.fail(.mkdir, "/guests/bad name", EINVAL)
        let error = assertFails(.refused, "names are 1 to 64") { try tree.makeGuest("bad name") }
        XCTAssertEqual(error?.errno, .invalid)
    }

    // MARK: loadopt

    func testRefusedLoadReportsLastError() throws {
        let image = try fake.makeImage("open.iso", bytes: 2048)
        io.fail(.write, "/vtopt0/media", EPERM) { self.setStatus(media: nil, lastError: "image is world-writable: \(image)") }
        let error = assertFails(.refused, "vmedia: web01/vtopt0: load \(image): image is world-writable") {
            try tree.load(drive: "vtopt0", media: image)
        }
        XCTAssertEqual(error?.errno, .notPermitted)
    }

    func testRefusedLoadWithoutLastErrorFallsBackToStrerror() {
        io.fail(.write, "/vtopt0/media", EOPNOTSUPP)
        assertFails(.refused, Errno(EOPNOTSUPP).description) { try tree.load(drive: "vtopt0", media: "/nfs/x.iso") }
    }

    func testMissingImageIsNotFound() {
        io.fail(.write, "/vtopt0/media", ENOENT) { self.setStatus(media: nil, lastError: "no such file: /srv/none.iso") }
        assertFails(.notFound, "no such file: /srv/none.iso") { try tree.load(drive: "vtopt0", media: "/srv/none.iso") }
    }

    func testOpenFailureIgnoresAStaleLastError() {
        setStatus(media: nil, lastError: "an old reason")
        io.fail(.open, "/vtopt0/media", EACCES)
        let error = assertFails(.refused, "Permission denied") { try tree.load(drive: "vtopt0", media: "/srv/x.iso") }
        XCTAssertFalse(error?.reason.contains("an old reason") ?? true)
    }

    func testLoadWritesThePathAndANewlineInOneWrite() throws {
        try tree.load(drive: "web01/vtopt0", media: "/srv/iso/x.iso")
        XCTAssertEqual(try String(contentsOfFile: tree.mediaPath(ref), encoding: .utf8), "/srv/iso/x.iso\n")
        XCTAssertEqual(io.log.filter { $0.hasSuffix("/media") }, ["open \(tree.mediaPath(ref))", "write \(tree.mediaPath(ref))"])
    }

    func testBareWordIsALocalFileWhenNoLibraryEntryHasThatName() throws {
        let dir = fake.mediaDir
        try FakeMount.writeText(dir + "/local.iso", "x")
        let tree = fake.tree(io: io, workingDirectory: dir)
        XCTAssertEqual(tree.mediaArgument("local.iso"), dir + "/local.iso")
        XCTAssertEqual(tree.mediaArgument("absent.iso"), "absent.iso", "left to the filesystem to refuse")
        try fake.makeImage("lib.iso", bytes: 2048)
        XCTAssertEqual(tree.mediaArgument("lib.iso"), "lib.iso", "a library NAME wins")
    }

    // MARK: unloadopt

    func testEjectDeferredByTheGuestWithoutWait() throws {
        setStatus(media: "/srv/a.iso", locked: true, ejectPending: true)
        io.fail(.unlink, "/vtopt0/media", EBUSY)
        let error = assertFails(.pending, "the guest has locked the drive; eject requested") { try tree.unload(drive: "vtopt0") }
        XCTAssertEqual(error?.errno, .busy)
    }

    func testEjectDeferredByTheGuestWithWaitCompletes() throws {
        setStatus(media: "/srv/a.iso", locked: true, ejectPending: true)
        io.fail(.unlink, "/vtopt0/media", EBUSY)
        let statusPath = tree.statusPath(ref), ref = ref
        let guest = Thread {
            Thread.sleep(forTimeInterval: 0.3)  // the guest allows removal; the eject completes
            try? FakeMount.writeText(statusPath, FakeMount.status(ref, media: nil, generation: 4))
        }
        guest.start()
        let start = Date()
        try tree.unload(drive: "vtopt0", wait: .until(timeout: 10, pollInterval: 0.05))
        XCTAssertGreaterThan(Date().timeIntervalSince(start), 0.25)
    }

    func testEjectWaitTimesOut() {
        setStatus(media: "/srv/a.iso", locked: true, ejectPending: true)
        io.fail(.unlink, "/vtopt0/media", EBUSY)
        assertFails(.pending, "timed out after 0.2 s") {
            try tree.unload(drive: "vtopt0", wait: .until(timeout: 0.2, pollInterval: 0.05))
        }
    }

    func testEjectWaitEndsWhenNoLongerPending() throws {
        setStatus(media: "/srv/a.iso", locked: true, ejectPending: true)
        io.fail(.unlink, "/vtopt0/media", EBUSY) {}
        let statusPath = tree.statusPath(ref), ref = ref
        Thread {
            Thread.sleep(forTimeInterval: 0.2)
            try? FakeMount.writeText(statusPath, FakeMount.status(ref, media: "/srv/a.iso", generation: 3, locked: true))
        }.start()
        assertFails(.refused, "no longer pending") { try tree.unload(drive: "vtopt0", wait: .until(timeout: 5, pollInterval: 0.05)) }
    }

    func testBusyWithoutPendingEjectIsARefusal() {
        setStatus(media: "/dev/sr0", lastError: "host drive is busy")
        io.fail(.unlink, "/vtopt0/media", EBUSY)
        assertFails(.refused, "host drive is busy") { try tree.unload(drive: "vtopt0", wait: .until(timeout: 1)) }
    }

    // MARK: rmvopt, share

    func testRmvoptWhileLoadedHint() {
        io.fail(.rmdir, "/web01/vtopt0", EBUSY)
        assertFails(.refused, "media is loaded: unload it first") { try tree.removeDrive("vtopt0") }
    }

    func testShareByNonOwner() throws {
        try fake.makeImage("theirs.iso", bytes: 2048)
        io.fail(.open, "/theirs.iso/sharable", EACCES)
        assertFails(.refused, "only the owner of the image file") { try tree.share("theirs.iso", true) }
    }

    func testDriveNameInSeveralGuestsIsAmbiguous() throws {
        // Cannot happen on a real mount (names are unique on the host); the fake allows it.
        try tree.makeGuest("db01")
        try FileManager.default.createDirectory(atPath: tree.guestPath("db01") + "/vtopt0", withIntermediateDirectories: false)
        assertFails(.notFound, "name it as GUEST/DRIVE") { try tree.findDrive("vtopt0") }
        XCTAssertEqual(try tree.findDrive("db01/vtopt0"), DriveRef(guest: "db01", drive: "vtopt0"))
    }

    func testGuestFilesAreNotDrives() throws {
        try FakeMount.writeText(tree.guestPath("web01") + "/initiators", "")
        try FakeMount.writeText(tree.guestPath("web01") + "/chap", "")
        XCTAssertEqual(try tree.driveNames(of: "web01"), ["vtopt0"])
        XCTAssertEqual(try tree.listGuests().first?.drives, 1)
    }

    // MARK: events

    func testEventsFollowCountAndJSON() throws {
        let lines = [
            "2026-11-02T10:00:00Z create web01/vtopt0 uid=0",
            "2026-11-02T10:00:01Z insert web01/vtopt0 media=/srv/a.iso",
            "2026-11-02T10:00:02Z eject web01/vtopt0 by=guest",
        ]
        try FakeMount.writeText(tree.eventsPath, lines.joined(separator: "\n") + "\n")
        var seen: [String] = []
        try tree.followEvents(count: 2) { seen.append($0); return true }
        XCTAssertEqual(seen, Array(lines.prefix(2)))
        seen = []
        try tree.followEvents { seen.append(Report.event($0, json: true)); return true }
        XCTAssertEqual(seen.count, 3)
        let last = try XCTUnwrap(parseJSON(seen[2]) as? [String: Any])
        XCTAssertEqual(last["kind"] as? String, "eject")
        XCTAssertEqual((last["fields"] as? [String: String])?["by"], "guest")
    }

    func testEventsPartialLastLineIsNotEmitted() throws {
        try FakeMount.writeText(tree.eventsPath, "T create g/d\nT insert g/d med")
        var seen: [String] = []
        try tree.followEvents { seen.append($0); return true }
        XCTAssertEqual(seen, ["T create g/d"])
    }
}
