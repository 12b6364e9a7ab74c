import Glibc
import XCTest
@testable import VMediaCLI

/// Every subcommand's logic against a fake tree laid out as the contract says (TreeFixture.swift).
/// Tests/MountTests/CLITests.swift runs the `vmedia` binary against the real daemon.
final class SubcommandTests: XCTestCase {
    var fixture: FakeMount!
    var tree: VMediaTree!

    override func setUpWithError() throws {
        fixture = try FakeMount()
        tree = fixture.tree()
    }

    override func tearDown() {
        fixture?.tearDown()
    }

    /// A guest with one drive; returns their names.
    func guestWithDrive(_ guest: String = "web", _ drive: String = "cd") throws -> (String, String) {
        try tree.makeGuest(guest)
        try tree.makeDrive(guest: guest, name: drive)
        try fixture.settle()
        return (guest, drive)
    }

    // MARK: guests

    func testMkguestLsguestTableAndJSON() throws {
        let g = "web01"
        try tree.makeGuest(g)
        try tree.makeDrive(guest: g, name: "w1cd")
        try fixture.settle()
        let rows = try tree.listGuests().filter { $0.name == g }
        XCTAssertEqual(rows.count, 1)
        XCTAssertEqual(rows.first?.drives, 1)
        XCTAssertEqual(rows.first?.uid, getuid())
        let table = Report.guests(rows, json: false)
        // Columns are as wide as their longest value (the owner's login name varies by
        // machine): the header's words, and the owner column starting where OWNER does.
        let lines = table.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first?.split(separator: " ").map(String.init), ["GUEST", "OWNER", "DRIVES"])
        let owner = UserNames.name(of: getuid())
        XCTAssertTrue(table.contains("\(g)  \(owner)"))
        let row = try XCTUnwrap(lines.first { $0.hasPrefix(g + " ") })
        XCTAssertEqual(lines[0].range(of: "OWNER")?.lowerBound.utf16Offset(in: lines[0]),
                       row.range(of: owner)?.lowerBound.utf16Offset(in: row))
        let json = try XCTUnwrap(parseJSON(Report.guests(rows, json: true)) as? [[String: Any]])
        XCTAssertEqual(json.first?["guest"] as? String, g)
        XCTAssertEqual(json.first?["drives"] as? Int, 1)
        XCTAssertEqual(Set(json.first?.keys.map { $0 } ?? []), ["guest", "owner", "uid", "gid", "mode", "drives"])
    }

    func testMkguestTwiceIsEEXIST() throws {
        let g = "dup"
        try tree.makeGuest(g)
        let error = assertFails(.refused, "a guest of that name exists") { try tree.makeGuest(g) }
        XCTAssertEqual(error?.errno, .exists)
    }

    func testRmguest() throws {
        let g = "gone"
        try tree.makeGuest(g)
        try tree.removeGuest(g)
        XCTAssertFalse(try tree.guestNames().contains(g))
        assertFails(.notFound, "no such guest") { try tree.removeGuest(g) }
    }

    func testRmguestWithDrivesIsENOTEMPTY() throws {
        let (g, _) = try guestWithDrive()
        let error = assertFails(.refused, "remove them with rmvopt") { try tree.removeGuest(g) }
        XCTAssertEqual(error?.errno, .notEmpty)
    }

    // MARK: drives

    func testMkvoptDefaultNamesAreLowestFreeAcrossTheHost() throws {
        let a = "ga", b = "gb"
        try tree.makeGuest(a)
        try tree.makeGuest(b)
        let taken = tree.allDriveNames()
        let first = try tree.makeDrive(guest: a)
        XCTAssertEqual(first, Names.lowestFreeDriveName(taken: taken))
        let second = try tree.makeDrive(guest: b)
        XCTAssertEqual(second, Names.lowestFreeDriveName(taken: taken.union([first])),
                       "the second guest does not reuse the first guest's name")
        try tree.removeDrive(first)
        XCTAssertEqual(try tree.makeDrive(guest: b), first, "a freed number is reused")
    }

    func testMkvoptForMissingGuest() {
        assertFails(.notFound, "no such guest") { try tree.makeDrive(guest: "nobody", name: "x") }
    }

    func testRmvoptByNameAndByGuestSlashDrive() throws {
        let (g, d) = try guestWithDrive()
        let other = "cd2"
        try tree.makeDrive(guest: g, name: other)
        try tree.removeDrive(d)
        try tree.removeDrive("\(g)/\(other)")
        XCTAssertEqual(try tree.driveNames(of: g), [])
    }

    func testUnknownDrive() {
        assertFails(.notFound, "no such drive") { try tree.removeDrive("nodrive") }
        assertFails(.notFound, "no such drive") { try tree.status(drive: "nobody/\("nodrive")") }
        assertFails(.notFound, "no such drive") { try tree.load(drive: "nodrive", media: "/x.iso") }
        assertFails(.notFound, "not a valid drive name") { try tree.unload(drive: "..") }
    }

    func testLsvoptEmptyAndLoaded() throws {
        let (g, d) = try guestWithDrive()
        let empty = "cd9"
        try tree.makeDrive(guest: g, name: empty)
        let image = try fixture.makeImage("install.iso", bytes: 3 * 2048)
        try tree.load(drive: d, media: image)
        try fixture.settle()

        let drives = try tree.listDrives(guest: g)
        XCTAssertEqual(drives.map(\.ref.drive), [d, empty].sorted(by: Names.naturalOrder))
        let table = Report.drives(drives, json: false)
        let lines = table.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        XCTAssertEqual(lines[0], ["GUEST", "DRIVE", "MEDIA", "SIZE", "STATE"])
        XCTAssertTrue(lines.contains([g, d, image, "6.0K", "loaded"]), table)
        XCTAssertTrue(lines.contains([g, empty, "No", "Media", "n/a", "empty"]), table)

        let json = try XCTUnwrap(parseJSON(Report.drives(drives, json: true)) as? [[String: Any]])
        let loaded = try XCTUnwrap(json.first { $0["drive"] as? String == d })
        XCTAssertEqual(loaded["guest"] as? String, g)
        XCTAssertEqual(loaded["state"] as? String, "loaded")
        XCTAssertEqual(loaded["media"] as? String, image)
        XCTAssertEqual(loaded["size"] as? Int, 3 * 2048)
        let none = try XCTUnwrap(json.first { $0["drive"] as? String == empty })
        XCTAssertTrue(none["media"] is NSNull)
        XCTAssertEqual(none["state"] as? String, "empty")
    }

    func testLsvoptAllGuestsAndUnknownGuest() throws {
        let (g1, d1) = try guestWithDrive("a", "acd")
        let (g2, d2) = try guestWithDrive("b", "bcd")
        let refs = try tree.listDrives().map(\.ref.description)
        XCTAssertTrue(refs.contains("\(g1)/\(d1)") && refs.contains("\(g2)/\(d2)"))
        assertFails(.notFound, "no such guest") { try tree.listDrives(guest: "nobody") }
    }

    // MARK: media

    func testLoadoptByLibraryNameWritesTheName() throws {
        let (_, d) = try guestWithDrive()
        let image = try fixture.makeImage("tools.iso", bytes: 2048)
        let name = (image as NSString).lastPathComponent
        XCTAssertEqual(try tree.load(drive: d, media: name), name)
        try fixture.settle()
        XCTAssertEqual(try tree.readStatus(tree.findDrive(d)).media, image)
        XCTAssertEqual(try tree.io.read(tree.mediaPath(tree.findDrive(d))), image + "\n", "media reads back the resolved path")
    }

    func testLoadoptRelativePathIsMadeAbsoluteFromTheCallersDirectory() throws {
        let (_, d) = try guestWithDrive()
        let image = try fixture.makeImage("rel.iso", bytes: 2048)
        let dir = (image as NSString).deletingLastPathComponent
        let tree = fixture.tree(workingDirectory: dir)
        let file = (image as NSString).lastPathComponent
        XCTAssertEqual(tree.mediaArgument("./" + file), image)
        XCTAssertEqual(try tree.load(drive: d, media: "./" + file), image)
    }

    func testLoadoptRefusesALoadedDriveWithoutForceAndSwapsWithForce() throws {
        let (_, d) = try guestWithDrive()
        let first = try fixture.makeImage("one.iso", bytes: 2048)
        let second = try fixture.makeImage("two.iso", bytes: 4096)
        try tree.load(drive: d, media: first)
        try fixture.settle()
        let error = assertFails(.refused, "use --force") { try tree.load(drive: d, media: second) }
        XCTAssertTrue(error?.reason.contains(first) ?? false)
        try tree.load(drive: d, media: second, force: true)
        try fixture.settle()
        let status = try tree.readStatus(tree.findDrive(d))
        XCTAssertEqual(status.media, second)
        XCTAssertEqual(status.size, 4096)
    }

    func testUnloadopt() throws {
        let (_, d) = try guestWithDrive()
        try tree.load(drive: d, media: try fixture.makeImage("ej.iso", bytes: 2048))
        try fixture.settle()
        try tree.unload(drive: d)
        try fixture.settle()
        XCTAssertFalse(try tree.readStatus(tree.findDrive(d)).isLoaded)
        assertFails(.notFound, "no media loaded") { try tree.unload(drive: d) }
    }

    // MARK: library

    func testLsrepTableJSONAndFilter() throws {
        let (g, d) = try guestWithDrive()
        let used = try fixture.makeImage("used.iso", bytes: 2048 * 1024)
        let free = try fixture.makeImage("free.iso", bytes: 2048)
        let usedName = (used as NSString).lastPathComponent, freeName = (free as NSString).lastPathComponent
        try tree.load(drive: d, media: usedName)
        try fixture.settle()

        let all = try tree.listLibrary()
        let u = try XCTUnwrap(all.first { $0.name == usedName })
        XCTAssertEqual(u.users, ["\(g)/\(d)"])
        XCTAssertEqual(u.size, 2048 * 1024)
        XCTAssertEqual(u.path, used)
        XCTAssertEqual(all.first { $0.name == freeName }?.users, [])

        let table = Report.library(all.filter { [usedName, freeName].contains($0.name) }, json: false)
        let lines = table.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        XCTAssertEqual(lines[0], ["NAME", "SIZE", "SHARABLE", "USERS"])
        XCTAssertTrue(lines.contains([usedName, "2.0M", "no", "\(g)/\(d)"]), table)
        XCTAssertTrue(lines.contains([freeName, "2.0K", "no", "-"]), table)

        XCTAssertEqual(try tree.listLibrary(matching: used).map(\.name), [usedName], "by path")
        XCTAssertEqual(try tree.listLibrary(matching: freeName).map(\.name), [freeName], "by name")
        let json = try XCTUnwrap(parseJSON(Report.library(try tree.listLibrary(matching: usedName), json: true)) as? [[String: Any]])
        XCTAssertEqual(Set(json[0].keys), ["name", "path", "kind", "size", "sharable", "users"])
        XCTAssertEqual(json[0]["users"] as? [String], ["\(g)/\(d)"])
        assertFails(.notFound, "no such media in the library") { try tree.listLibrary(matching: "nothing-here.iso") }
    }

    func testShare() throws {
        let image = try fixture.makeImage("shared.iso", bytes: 2048)
        let name = (image as NSString).lastPathComponent
        try tree.share(name, true)
        XCTAssertEqual(try tree.listLibrary(matching: name).first?.sharable, true)
        try tree.share(image, false)
        XCTAssertEqual(try tree.listLibrary(matching: name).first?.sharable, false)
        assertFails(.notFound, "no such media in the library") { try tree.share("nothing-here.iso", true) }
    }

    // MARK: status

    func testStatusTextAndJSON() throws {
        let (g, d) = try guestWithDrive()
        let (ref, text) = try tree.status(drive: "\(g)/\(d)")
        XCTAssertEqual(ref, DriveRef(guest: g, drive: d))
        for key in ["guest", "drive", "state", "kind", "media", "size", "blocks", "block_size", "sharable", "locked",
                    "eject_pending", "generation", "openers", "loaded_by", "loaded_at", "last_error"] {
            XCTAssertTrue(text.contains("\n\(key)=") || text.hasPrefix("\(key)="), "status lacks \(key)")
        }
        XCTAssertEqual(Report.status(text, json: false), text)
        let json = try XCTUnwrap(parseJSON(Report.status(text, json: true)) as? [String: Any])
        XCTAssertEqual(json["guest"] as? String, g)
        XCTAssertEqual(json["state"] as? String, "empty")
        XCTAssertEqual(json["eject_pending"] as? Bool, false)
    }
}
