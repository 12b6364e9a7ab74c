import Foundation
import XCTest
@testable import ISO9660

/// 254- and 255-byte Rock Ridge names (ASCII and two-byte UTF-8) of files, directories and
/// symlinks, and long symlink targets, on an image made exactly as users make it:
/// `xorriso -as mkisofs -R -J` (Joliet without -joliet-long, so its names are cut at 64
/// characters and only Rock Ridge holds the whole name).
final class LongNameTests: ImageTestCase {
    private static let names = [
        String(repeating: "a", count: 255), String(repeating: "b", count: 254),
        String(repeating: "é", count: 127) + "x", String(repeating: "é", count: 127),
    ]

    private func source(_ dir: TempDir) throws -> String {
        let source = dir.sub("src")
        try FileManager.default.createDirectory(atPath: source + "/dirs", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: source + "/links", withIntermediateDirectories: true)
        for (i, name) in Self.names.enumerated() {
            XCTAssertLessThanOrEqual(name.utf8.count, 255)
            try Data("file \(i)".utf8).write(to: URL(fileURLWithPath: source + "/" + name))
            try FileManager.default.createDirectory(atPath: source + "/dirs/" + name, withIntermediateDirectories: false)
            try Data("inner \(i)".utf8).write(to: URL(fileURLWithPath: source + "/dirs/" + name + "/f"))
            try FileManager.default.createSymbolicLink(atPath: source + "/links/" + name,
                                                       withDestinationPath: (0..<(8 + i)).map { String(format: "c%03d", $0) + String(repeating: "x", count: 80) }.joined(separator: "/"))
        }
        try FileManager.default.createSymbolicLink(atPath: source + "/links/t255", withDestinationPath: String(repeating: "t", count: 255))
        try FileManager.default.createSymbolicLink(atPath: source + "/links/u255", withDestinationPath: String(repeating: "é", count: 127) + "y")
        return source
    }

    func testLongRockRidgeNamesAndTargetsFromXorrisoRJ() throws {
        try requireTools("xorriso")
        let dir = try TempDir("longnames")
        let source = try source(dir)
        let image = dir.sub("long.iso")
        try Tool.run("xorriso", ["-as", "mkisofs", "-R", "-J", "-o", image, source])
        let volume = try open(image)
        XCTAssertEqual(volume.format, .rockRidge)
        for (i, name) in Self.names.enumerated() {
            let file = try XCTUnwrap(volume.lookup(name, in: Volume.rootID), "\(name.utf8.count)-byte name")
            XCTAssertEqual(try volume.attributes(of: file.id).size, UInt64("file \(i)".utf8.count))
            XCTAssertEqual(try volume.read(file.id, at: 0, count: 100), Array("file \(i)".utf8))
        }
        XCTAssertEqual(Set(try volume.children(of: Volume.rootID).map(\.name)), Set(Self.names + ["dirs", "links"]))
        Snapshot.assertEqual(try Snapshot.volume(volume, permissions: true), try Snapshot.host(source, permissions: true), "volume vs source")
    }
}
