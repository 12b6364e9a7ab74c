import Foundation
import XCTest
@testable import ISO9660

/// Differential tests on Rock Ridge images made by xorriso (libisofs) and genisoimage: the volume
/// must show exactly the source tree, and exactly what xorriso extracts.
final class RockRidgeImageTests: ImageTestCase {
    private var richStyle: TreeGenerator.Style {
        var style = TreeGenerator.Style()
        style.deepChain = 11
        return style
    }

    func testXorrisoRockRidgeMatchesSourceAndXorrisoExtraction() throws {
        try requireTools("xorriso")
        let dir = try TempDir("xrr")
        let source = try makeTree(dir, seed: 1, style: richStyle)
        let image = dir.sub("rr.iso")
        try Tool.run("xorriso", ["-as", "mkisofs", "-quiet", "-R", "-J", "-joliet-long", "-V", "XRR_TEST", "-o", image, source])
        let volume = try open(image)
        XCTAssertEqual(volume.format, .rockRidge)
        XCTAssertEqual(volume.label, "XRR_TEST")
        XCTAssertEqual(Set(volume.availableFormats), [.rockRidge, .joliet, .iso9660])
        let got = try Snapshot.volume(volume, permissions: true)
        Snapshot.assertEqual(got, try Snapshot.host(source, permissions: true), "volume vs source")
        let extracted = try xorrisoExtract(image, dir)
        Snapshot.assertEqual(got, try Snapshot.host(extracted, permissions: true), "volume vs xorriso")
        try assertRootAttributes(volume)
    }

    func testGenisoimageRockRidgeRelocatesDeepDirectories() throws {
        try requireTools("genisoimage", "xorriso")
        let dir = try TempDir("grr")
        var style = richStyle
        style.longSymlink = false
        let source = try makeTree(dir, seed: 2, style: style)
        let image = dir.sub("grr.iso")
        try Tool.run("genisoimage", ["-quiet", "-R", "-o", image, source])
        // The plain ISO 9660 tree really holds a relocation directory...
        let plain = try open(image, OpenOptions(format: .iso9660))
        XCTAssertTrue(try plain.children(of: Volume.rootID).contains { $0.name.lowercased() == "rr_moved" })
        // ...which the Rock Ridge view hides, showing the deep directories in their places.
        let volume = try open(image)
        XCTAssertEqual(volume.format, .rockRidge)
        XCTAssertFalse(try volume.children(of: Volume.rootID).contains { $0.name.lowercased().contains("rr_moved") })
        let got = try Snapshot.volume(volume, permissions: true)
        XCTAssertNotNil(got["deep/level1/level2/level3/level4/level5/level6/level7/level8/level9/level10/level11/file11"])
        Snapshot.assertEqual(got, try Snapshot.host(source, permissions: true), "volume vs source")
        // libisofs leaves the (now empty) relocation directory in place; we hide it, as the issue asks.
        var extracted = try Snapshot.host(try xorrisoExtract(image, dir), permissions: true)
        XCTAssertEqual(extracted.removeValue(forKey: "rr_moved")?.kind, .directory)
        Snapshot.assertEqual(got, extracted, "volume vs xorriso")
    }

    func testSeveralRandomTreesAgainstSource() throws {
        try requireTools("xorriso")
        for seed in UInt64(10)..<UInt64(14) {
            let dir = try TempDir("multi\(seed)")
            var style = TreeGenerator.Style()
            style.files = 25
            style.directories = 6
            style.deepChain = Int(seed % 3) * 5
            let source = try makeTree(dir, seed: seed, style: style)
            let image = dir.sub("t.iso")
            try Tool.run("xorriso", ["-as", "mkisofs", "-quiet", "-R", "-o", image, source])
            Snapshot.assertEqual(try Snapshot.volume(try open(image), permissions: true),
                                 try Snapshot.host(source, permissions: true), "seed \(seed)")
        }
    }

    func testRockRidgeOwnersTimesAndLinks() throws {
        try requireTools("xorriso")
        let dir = try TempDir("owners")
        let source = dir.sub("src")
        try FileManager.default.createDirectory(atPath: source + "/sub", withIntermediateDirectories: true)
        try Data("hello".utf8).write(to: URL(fileURLWithPath: source + "/f"))
        chown(source + "/f", 1234, 5678)
        var times = [timespec(tv_sec: 1_000_000_000, tv_nsec: 0), timespec(tv_sec: 1_234_567_890, tv_nsec: 0)]
        utimensat(AT_FDCWD, source + "/f", &times, 0)
        let image = dir.sub("o.iso")
        try Tool.run("xorriso", ["-as", "mkisofs", "-quiet", "-R", "-o", image, source])
        let volume = try open(image)
        let file = try XCTUnwrap(volume.lookup("f", in: Volume.rootID))
        let a = try volume.attributes(of: file.id)
        XCTAssertEqual(a.uid, 1234)
        XCTAssertEqual(a.gid, 5678)
        XCTAssertEqual(a.linkCount, 1)
        XCTAssertEqual(a.modificationTime.seconds, 1_234_567_890)
        XCTAssertEqual(a.accessTime.seconds, 1_000_000_000)
        XCTAssertEqual(a.size, 5)
        XCTAssertEqual(try volume.read(file.id, at: 1, count: 100), Array("ello".utf8))
        XCTAssertEqual(try volume.read(file.id, at: 5, count: 100), [])
        let sub = try XCTUnwrap(volume.lookup("sub", in: Volume.rootID))
        XCTAssertEqual(sub.kind, .directory)
        XCTAssertNil(try volume.lookup("nope", in: Volume.rootID))
        XCTAssertThrowsError(try volume.children(of: file.id)) { error in
            XCTAssertEqual((error as? DiscFormatError)?.code, .notDirectory)
        }
        XCTAssertThrowsError(try volume.attributes(of: 999_999)) { error in
            XCTAssertEqual((error as? DiscFormatError)?.code, .noSuchNode)
        }
    }

    private func assertRootAttributes(_ volume: Volume) throws {
        let root = try volume.attributes(of: Volume.rootID)
        XCTAssertEqual(root.kind, .directory)
        XCTAssertEqual(root.mode & 0o170000, 0o040000)
        XCTAssertGreaterThan(root.size, 0)
    }
}
