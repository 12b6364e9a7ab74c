import XCTest
@testable import VMediaCLI

/// Pure functions: mountinfo, status, events, tables, sizes, JSON, names.
final class ParsingTests: XCTestCase {
    let mountinfo = """
        22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
        40 22 0:35 / /mnt/vmedia rw,nosuid,nodev,relatime shared:20 - fuse.vmediafs vmediafs rw,user_id=0,group_id=0
        41 22 0:36 / /mnt/other rw,nosuid,nodev shared:21 - fuse.sshfs host: rw,user_id=0,group_id=0
        """

    func testMountinfoFindsOnlyVMediaFSEntries() {
        XCTAssertEqual(MountLocator.mountPoints(in: mountinfo), ["/mnt/vmedia"])
    }

    func testMountinfoUnescapesOctal() {
        let line = "40 22 0:35 / /mnt/my\\040media rw shared:20 master:3 - fuse.vmediafs vmediafs rw"
        XCTAssertEqual(MountLocator.mountPoints(in: line), ["/mnt/my media"])
    }

    func testMountinfoWithoutOptionalFields() {
        let line = "40 22 0:35 / /srv/vm rw - fuse.vmediafs vmediafs rw"
        XCTAssertEqual(MountLocator.mountPoints(in: line), ["/srv/vm"])
    }

    func testLocateNoneNamesTheOption() {
        let none = "22 1 8:1 / / rw - ext4 /dev/sda1 rw"
        assertFails(.notFound, "--mount DIR") { try MountLocator.locate(option: nil, environment: [:], mountinfo: none) }
    }

    func testLocateSeveralIsAmbiguous() {
        let two = mountinfo + "\n50 22 0:40 / /mnt/second rw - fuse.vmediafs vmediafs rw"
        let error = assertFails(.notFound, "several fuse.vmediafs mounts") {
            try MountLocator.locate(option: nil, environment: [:], mountinfo: two)
        }
        XCTAssertTrue(error?.reason.contains("/mnt/vmedia, /mnt/second") ?? false)
        XCTAssertTrue(error?.reason.contains("VMEDIAFS_MOUNT") ?? false)
    }

    func testLocatePrecedenceOptionThenEnvironmentThenMountinfo() throws {
        let a = try FakeMount(), b = try FakeMount()
        defer { a.tearDown(); b.tearDown() }
        let env = ["VMEDIAFS_MOUNT": b.root]
        XCTAssertEqual(try MountLocator.locate(option: a.root, environment: env, mountinfo: ""), a.root)
        XCTAssertEqual(try MountLocator.locate(option: nil, environment: env, mountinfo: ""), b.root)
        XCTAssertEqual(try MountLocator.locate(option: "", environment: ["VMEDIAFS_MOUNT": ""],
                                               mountinfo: "1 1 0:1 / \(a.root) rw - fuse.vmediafs x rw"), a.root)
        XCTAssertEqual(try MountLocator.locate(option: a.root + "/", environment: [:], mountinfo: ""), a.root)
    }

    func testLocateRefusesADirectoryThatIsNotAMount() {
        assertFails(.notFound, "not a vmediafs mount") {
            try MountLocator.locate(option: NSTemporaryDirectory(), environment: [:], mountinfo: "")
        }
    }

    func testStatusParsingAndJSON() throws {
        let text = "guest=web01\ndrive=vtopt0\nstate=loaded\nkind=file\nmedia=/srv/iso/a=b.iso\nsize=4096\nblocks=2\nblock_size=2048\nsharable=no\nlocked=yes\neject_pending=no\ngeneration=7\nopeners=1\nloaded_by=alice\nloaded_at=2026-11-02T10:00:00Z\nlast_error=\ninitiators=iqn.x\n"
        let s = DriveStatus(parsing: text)
        XCTAssertTrue(s.isLoaded)
        XCTAssertEqual(s.media, "/srv/iso/a=b.iso")
        XCTAssertEqual(s.size, 4096)
        XCTAssertEqual(s.generation, 7)
        XCTAssertNil(s.lastError)
        XCTAssertEqual(s.stateSummary, "loaded,locked")
        let json = s.json.rendered()
        let object = try XCTUnwrap(parseJSON(json) as? [String: Any])
        XCTAssertEqual(object["size"] as? Int, 4096)
        XCTAssertEqual(object["locked"] as? Bool, true)
        XCTAssertEqual(object["sharable"] as? Bool, false)
        XCTAssertTrue(object["last_error"] is NSNull)
        XCTAssertEqual(object["initiators"] as? String, "iqn.x", "unknown keys pass through")
        XCTAssertTrue(json.hasPrefix("{\n  \"guest\": \"web01\",\n  \"drive\": \"vtopt0\""), "file order kept")
    }

    func testEventParsing() {
        let e = Event(parsing: "2026-11-02T10:00:00Z refuse web01/vtopt0 path=\"/srv/my iso.iso\" errno=EPERM reason=image is world-writable")
        XCTAssertEqual(e.time, "2026-11-02T10:00:00Z")
        XCTAssertEqual(e.kind, "refuse")
        XCTAssertEqual(e.target, "web01/vtopt0")
        XCTAssertEqual(e.fields.map(\.key), ["path", "errno", "reason"])
        XCTAssertEqual(e.fields[0].value, "/srv/my iso.iso")
        XCTAssertEqual(e.fields[2].value, "image is world-writable")
        XCTAssertEqual(Report.event(e.line, json: true),
                       "{\"time\":\"2026-11-02T10:00:00Z\",\"kind\":\"refuse\",\"target\":\"web01/vtopt0\",\"fields\":{\"path\":\"/srv/my iso.iso\",\"errno\":\"EPERM\",\"reason\":\"image is world-writable\"},\"line\":\"2026-11-02T10:00:00Z refuse web01/vtopt0 path=\\\"/srv/my iso.iso\\\" errno=EPERM reason=image is world-writable\"}\n")
    }

    func testTableAlignsColumnsAndLeavesLastUnpadded() {
        var t = Table("GUEST", "DRIVE", "STATE")
        t.add(["web01", "vtopt0", "empty"])
        t.add(["db", "db_cd", "loaded"])
        XCTAssertEqual(t.rendered(), "GUEST  DRIVE   STATE\nweb01  vtopt0  empty\ndb     db_cd   loaded\n")
    }

    func testHumanSizes() {
        XCTAssertEqual(SizeFormat.human(0), "0B")
        XCTAssertEqual(SizeFormat.human(2048), "2.0K")
        XCTAssertEqual(SizeFormat.human(734_003_200), "700M")
        XCTAssertEqual(SizeFormat.human(4_700_000_000), "4.4G")
        XCTAssertEqual(SizeFormat.human(1023), "1023B")
    }

    func testJSONEscapingAndEmptyContainers() {
        XCTAssertEqual(JSONValue.string("a\"b\\c\n\u{1}/").rendered(), "\"a\\\"b\\\\c\\n\\u0001/\"")
        XCTAssertEqual(JSONValue.array([]).rendered(), "[]")
        XCTAssertEqual(JSONValue.object([("a", .array([.int(1), .null]))]).rendered(),
                       "{\n  \"a\": [\n    1,\n    null\n  ]\n}")
    }

    func testNamesAndNaturalOrder() {
        XCTAssertEqual(["vtopt10", "vtopt2", "vtopt1"].sorted(by: Names.naturalOrder), ["vtopt1", "vtopt2", "vtopt10"])
        XCTAssertEqual(Names.lowestFreeDriveName(taken: ["vtopt0", "vtopt1", "vtopt3"]), "vtopt2")
        for bad in ["", ".", "..", "a/b", "../x"] {
            assertFails(.notFound, "not a valid guest name") { try Names.check(bad, as: "guest") }
        }
        XCTAssertNoThrow(try Names.check("web-01.prod_x", as: "guest"))
    }

    func testErrnoExitMapping() {
        XCTAssertEqual(VMediaError.from(.noSuchFile, subject: "x").exit, .notFound)
        XCTAssertEqual(VMediaError.from(.busy, subject: "x").exit, .refused)
        XCTAssertEqual(VMediaError.from(.notEmpty, subject: "web01", operation: .removeGuest).description,
                       "vmedia: web01: Directory not empty (the guest still has drives: remove them with rmvopt first)")
        XCTAssertEqual(VMediaError.from(.perm, subject: "d", reason: "image is world-writable", operation: .load).description,
                       "vmedia: d: image is world-writable")
    }
}

private extension Errno { static let perm = Errno.notPermitted 
    func testGlobalOptionsBeforeTheSubcommandMoveAfterIt() {
        XCTAssertEqual(GlobalOptions.reorder(["--mount", "/m", "lsvopt", "aix01"]), ["lsvopt", "--mount", "/m", "aix01"])
        XCTAssertEqual(GlobalOptions.reorder(["--json", "--mount=/m", "lsguest"]), ["lsguest", "--json", "--mount=/m"])
        XCTAssertEqual(GlobalOptions.reorder(["lsvopt", "--mount", "/m"]), ["lsvopt", "--mount", "/m"])
        // Left for the parser: no subcommand, an option it must refuse, a missing value.
        XCTAssertEqual(GlobalOptions.reorder(["--mount", "/m"]), ["--mount", "/m"])
        XCTAssertEqual(GlobalOptions.reorder(["--mount", "/m", "--bogus", "lsvopt"]), ["--mount", "/m", "--bogus", "lsvopt"])
        XCTAssertEqual(GlobalOptions.reorder(["--mount"]), ["--mount"])
        XCTAssertEqual(GlobalOptions.reorder(["--help"]), ["--help"])
    }
}
