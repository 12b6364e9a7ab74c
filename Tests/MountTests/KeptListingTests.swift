import Foundation
import Glibc
import XCTest

/// The kernel keeps directory listings and attributes for long (directories are opened
/// without a round trip and their listings kept until their mtime moves). Every change,
/// through a file or behind the kernel's back, must still show at the very next look.
/// Each check lists the directory twice first, so that the kernel holds a listing to go
/// stale (a listing read from the daemon also marks the directory's atime stale, and the
/// next opendir's fstat would then fetch fresh attributes by chance).
final class KeptListingTests: MountTestCase {
    /// Names and d_ino of a directory's entries, by readdir(3), without "." and "..".
    func entries(_ rel: String) -> [String: UInt64] {
        guard let d = opendir(fx.path(rel)) else { return [:] }
        defer { closedir(d) }
        var out: [String: UInt64] = [:]
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { out[name] = UInt64(e.pointee.d_ino) }
        }
        return out
    }

    func names(_ rel: String) -> [String] { entries(rel).keys.sorted() }

    /// Lists twice and checks that both agree; returns the names.
    func kept(_ rel: String) -> [String] {
        let first = names(rel)
        XCTAssertEqual(names(rel), first, rel)
        return first
    }

    func inode(_ rel: String) -> UInt64? {
        var st = stat()
        return stat(fx.path(rel), &st) == 0 ? UInt64(st.st_ino) : nil
    }

    func mode(_ rel: String) -> UInt32? {
        var st = stat()
        return stat(fx.path(rel), &st) == 0 ? UInt32(st.st_mode) & 0o7777 : nil
    }

    func testLibraryListingFollowsTheMediaFolder() throws {
        try fx.makeISO("a.iso")
        XCTAssertEqual(kept("library"), ["a.iso"])
        try fx.makeISO("b.iso")
        XCTAssertEqual(names("library"), ["a.iso", "b.iso"], "a new image shows at once")
        let empty = fx.media + "/c.iso"
        XCTAssertTrue(FileManager.default.createFile(atPath: empty, contents: Data()))
        XCTAssertEqual(names("library"), ["a.iso", "b.iso"], "an empty file is no image")
        // The folder's mtime does not move when a file in it grows.
        XCTAssertEqual(sh("head -c 4096 /dev/zero >> '\(empty)'").status, 0)
        XCTAssertEqual(names("library"), ["a.iso", "b.iso", "c.iso"], "an image that grew from nothing shows at once")
        XCTAssertEqual(rename(fx.media + "/a.iso", fx.media + "/z.iso"), 0)
        XCTAssertEqual(names("library"), ["b.iso", "c.iso", "z.iso"])
        XCTAssertEqual(unlink(fx.media + "/b.iso"), 0)
        XCTAssertEqual(names("library"), ["c.iso", "z.iso"])
    }

    func testContentsListingFollowsEveryMediaChange() throws {
        let a = try fx.makeISO("a.iso", files: ["same.txt": "from a\n", "only-a.txt": "a\n"])
        let b = try fx.makeISO("b.iso", files: ["same.txt": "from b\n", "only-b/x.txt": "b\n"])
        makeDrive()
        XCTAssertEqual(names("guests/aix01/cd0/contents"), [])
        XCTAssertEqual(writeErrno(fx.path("guests/aix01/cd0/media"), a + "\n"), 0)
        XCTAssertEqual(kept("guests/aix01/cd0/contents"), ["only-a.txt", "same.txt"])
        XCTAssertEqual(readText(fx.path("guests/aix01/cd0/contents/same.txt")), "from a\n")

        XCTAssertEqual(writeErrno(fx.path("guests/aix01/cd0/media"), b + "\n"), 0, "a swap")
        XCTAssertEqual(names("guests/aix01/cd0/contents"), ["only-b", "same.txt"])
        XCTAssertEqual(readText(fx.path("guests/aix01/cd0/contents/same.txt")), "from b\n", "a name both discs have")
        XCTAssertEqual(names("guests/aix01/cd0/contents/only-b"), ["x.txt"])
        XCTAssertEqual(kept("guests/aix01/cd0/contents"), ["only-b", "same.txt"])

        XCTAssertEqual(unlink(fx.path("guests/aix01/cd0/media")), 0)
        XCTAssertEqual(kept("guests/aix01/cd0/contents"), [])
        XCTAssertNil(inode("guests/aix01/cd0/contents/same.txt"))

        // The same image again: the same names, but a new generation's inodes, and the
        // listing's d_ino must agree with stat.
        XCTAssertEqual(writeErrno(fx.path("guests/aix01/cd0/media"), b + "\n"), 0)
        let listed = entries("guests/aix01/cd0/contents")
        XCTAssertEqual(listed.keys.sorted(), ["only-b", "same.txt"])
        XCTAssertEqual(listed["same.txt"], inode("guests/aix01/cd0/contents/same.txt"))
    }

    func testEjectsThatNoDirectoryOperationMadeShowAtOnce() throws {
        let a = try fx.makeISO("a.iso")
        makeDrive()
        for how in [": >", "truncate -s 0"] {
            XCTAssertEqual(writeErrno(fx.path("guests/aix01/cd0/media"), a + "\n"), 0)
            XCTAssertEqual(kept("guests/aix01/cd0"), ["contents", "disc", "media", "status"])
            XCTAssertEqual(kept("guests/aix01/cd0/contents"), ["hello.txt"])
            let media = fx.path("guests/aix01/cd0/media")
            XCTAssertEqual(sh(how == ": >" ? ": > '\(media)'" : "truncate -s 0 '\(media)'").status, 0, how)
            XCTAssertEqual(fx.status("aix01", "cd0")["state"], "empty", how)
            XCTAssertEqual(names("guests/aix01/cd0"), ["contents", "disc", "status"], "after \(how) media")
            XCTAssertEqual(names("guests/aix01/cd0/contents"), [], "after \(how) media")
        }
    }

    func testChmodOfADriveShowsOnDiscAndContentsAtOnce() throws {
        let a = try fx.makeISO("a.iso")
        makeDrive()
        // An empty drive's contents/ takes its mode from the drive; a disc's, from the disc.
        XCTAssertEqual(mode("guests/aix01/cd0/contents"), 0o555)
        XCTAssertEqual(chmod(fx.path("guests/aix01/cd0"), 0o750), 0)
        XCTAssertEqual(mode("guests/aix01/cd0/contents"), 0o550, "contents/ of an empty drive")
        XCTAssertEqual(writeErrno(fx.path("guests/aix01/cd0/media"), a + "\n"), 0)
        XCTAssertEqual(mode("guests/aix01/cd0/disc"), 0o440)
        XCTAssertEqual(chmod(fx.path("guests/aix01/cd0"), 0o700), 0)
        XCTAssertEqual(mode("guests/aix01/cd0/disc"), 0o400, "disc takes its mode from the drive")
        XCTAssertEqual(chmod(fx.path("guests/aix01/cd0"), 0o755), 0)
        XCTAssertEqual(mode("guests/aix01/cd0/disc"), 0o444)
    }

    func testAListingPagedOverManyRequestsIsWhole() {
        // About 40 bytes an entry: 600 guests need several 4 KiB READDIR replies.
        let want = (0..<600).map { String(format: "guest-with-a-longer-name-%04d", $0) }
        for g in want { XCTAssertEqual(mkdir(fx.path("guests/\(g)"), 0o755), 0) }
        let first = entries("guests")
        XCTAssertEqual(first.keys.sorted(), want)
        XCTAssertEqual(kept("guests"), want)
        XCTAssertEqual(first["guest-with-a-longer-name-0599"], inode("guests/guest-with-a-longer-name-0599"))
        XCTAssertEqual(rmdir(fx.path("guests/guest-with-a-longer-name-0300")), 0)
        XCTAssertEqual(mkdir(fx.path("guests/late"), 0o755), 0)
        let second = names("guests")
        XCTAssertEqual(second.count, 600)
        XCTAssertTrue(second.contains("late"))
        XCTAssertFalse(second.contains("guest-with-a-longer-name-0300"))
    }
}
