import Foundation
import XCTest
@testable import ISO9660

/// Joliet-only images and plain ISO 9660 levels 1-3, against the source tree and xorriso.
final class JolietAndPlainISOTests: ImageTestCase {
    private var jolietStyle: TreeGenerator.Style {
        var style = TreeGenerator.Style()
        style.maxNameLength = 60
        style.bmpOnly = true
        style.longNames = false
        style.symlinks = false
        style.randomModes = false
        return style
    }

    func testJolietOnlyImageMatchesSourceAndXorriso() throws {
        try requireTools("genisoimage", "xorriso")
        let dir = try TempDir("joliet")
        let source = try makeTree(dir, seed: 3, style: jolietStyle)
        let image = dir.sub("j.iso")
        try Tool.run("genisoimage", ["-quiet", "-J", "-V", "JOLIET_VOL", "-o", image, source])
        let volume = try open(image)
        XCTAssertEqual(volume.format, .joliet)
        XCTAssertEqual(Set(volume.availableFormats), [.joliet, .iso9660])
        let got = try Snapshot.volume(volume, permissions: false)
        Snapshot.assertEqual(got, try Snapshot.host(source, permissions: false), "volume vs source")
        Snapshot.assertEqual(got, try Snapshot.host(try xorrisoExtract(image, dir), permissions: false), "volume vs xorriso")
    }

    func testJolietTreeOfARockRidgeImage() throws {
        try requireTools("xorriso")
        let dir = try TempDir("jolietrr")
        var style = jolietStyle
        style.maxNameLength = 30
        let source = try makeTree(dir, seed: 4, style: style)
        let image = dir.sub("jr.iso")
        try Tool.run("xorriso", ["-as", "mkisofs", "-quiet", "-R", "-J", "-o", image, source])
        let volume = try open(image, OpenOptions(format: .joliet))
        XCTAssertEqual(volume.format, .joliet)
        Snapshot.assertEqual(try Snapshot.volume(volume, permissions: false), try Snapshot.host(source, permissions: false), "joliet vs source")
    }

    func testPlainISOLevelsMatchXorrisoAndSourceContents() throws {
        try requireTools("genisoimage", "xorriso")
        for level in 1...3 {
            let dir = try TempDir("level\(level)")
            var style = jolietStyle
            style.unicode = false
            let source = try makeTree(dir, seed: 20 + UInt64(level), style: style)
            let image = dir.sub("l.iso")
            try Tool.run("genisoimage", ["-quiet", "-iso-level", "\(level)", "-o", image, source])
            let volume = try open(image)
            XCTAssertEqual(volume.format, .iso9660, "level \(level)")
            let got = try Snapshot.volume(volume, permissions: false)
            XCTAssertFalse(got.keys.contains { $0.contains(";") }, "level \(level): version suffix left in a name")
            Snapshot.assertEqual(got, try Snapshot.host(try xorrisoExtract(image, dir), permissions: false), "level \(level) vs xorriso")
            // Names are mangled at level 1-3, so compare the contents as multisets.
            let expected = try Snapshot.host(source, permissions: false)
            func files(_ s: [String: EntrySnapshot]) -> [String] {
                s.values.filter { $0.kind == .regularFile }.map { "\($0.size)/\($0.digest!)" }.sorted()
            }
            XCTAssertEqual(files(got), files(expected), "level \(level): file contents")
            XCTAssertEqual(got.values.filter { $0.kind == .directory }.count, expected.values.filter { $0.kind == .directory }.count)
        }
    }

    func testISONamesOfARockRidgeImageAreReadableWithoutRockRidge() throws {
        try requireTools("xorriso")
        let dir = try TempDir("isonames")
        let source = dir.sub("src")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        for name in ["README", "notes.txt", "archive.tar.gz"] {
            try Data(name.utf8).write(to: URL(fileURLWithPath: source + "/" + name))
        }
        let image = dir.sub("n.iso")
        try Tool.run("xorriso", ["-as", "mkisofs", "-quiet", "-R", "-iso-level", "2", "-o", image, source])
        let plain = try open(image, OpenOptions(format: .iso9660))
        let names = Set(try plain.children(of: Volume.rootID).map(\.name))
        XCTAssertTrue(names.contains("README"), "\(names)")
        XCTAssertFalse(names.contains { $0.hasSuffix(".") || $0.contains(";") }, "\(names)")
        let rr = try open(image)
        XCTAssertEqual(Set(try rr.children(of: Volume.rootID).map(\.name)), ["README", "notes.txt", "archive.tar.gz"])
    }
}
