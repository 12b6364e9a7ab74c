import Foundation
import XCTest
@testable import ISO9660

/// UDF bridge images (genisoimage -udf), UDF-only images made from them, and empty mkudffs
/// images of every UDF revision, against the source tree and 7-Zip.
final class UDFImageTests: ImageTestCase {
    private var udfStyle: TreeGenerator.Style {
        var style = TreeGenerator.Style()
        style.symlinks = false          // genisoimage writes no UDF symlinks
        style.randomModes = false
        style.deepChain = 4             // genisoimage drops directories deeper than 8 without -R
        style.bmpOnly = true            // genisoimage -udf refuses characters outside UCS-2
        style.longNames = false         // genisoimage overflows the 8-bit identifier length of 255-byte UDF names
        return style
    }

    func testUDFBridgeImageMatchesSourceAnd7Zip() throws {
        try requireTools("genisoimage", "7z")
        let dir = try TempDir("udfbridge")
        let source = try makeTree(dir, seed: 5, style: udfStyle)
        let image = dir.sub("u.iso")
        try Tool.run("genisoimage", ["-quiet", "-udf", "-V", "UDF_BRIDGE", "-o", image, source])
        let volume = try open(image)
        XCTAssertEqual(volume.format, .udf)
        XCTAssertEqual(volume.label, "UDF_BRIDGE")
        XCTAssertEqual(Set(volume.availableFormats), [.udf, .iso9660])
        let got = try Snapshot.volume(volume, permissions: false)
        Snapshot.assertEqual(got, try Snapshot.host(source, permissions: false), "udf vs source")
        Snapshot.assertEqual(got, try Snapshot.host(try sevenZipExtract(image, dir), permissions: false), "udf vs 7z")
    }

    func testRockRidgeWinsOverUDFOnABridgeDisc() throws {
        try requireTools("genisoimage")
        let dir = try TempDir("udfrr")
        let source = try makeTree(dir, seed: 6, style: udfStyle)
        let image = dir.sub("ur.iso")
        try Tool.run("genisoimage", ["-quiet", "-udf", "-R", "-o", image, source])
        let volume = try open(image)
        XCTAssertEqual(volume.format, .rockRidge)
        let udf = try open(image, OpenOptions(format: .udf))
        XCTAssertEqual(udf.format, .udf)
        let expected = try Snapshot.host(source, permissions: false)
        Snapshot.assertEqual(try Snapshot.volume(volume, permissions: false), expected, "rock ridge vs source")
        Snapshot.assertEqual(try Snapshot.volume(udf, permissions: false), expected, "udf vs source")
    }

    func testUDFOnlyImageMatchesSourceAnd7Zip() throws {
        try requireTools("genisoimage", "7z")
        let dir = try TempDir("udfonly")
        let source = try makeTree(dir, seed: 7, style: udfStyle)
        let bridge = dir.sub("b.iso"), image = dir.sub("only.udf")
        try Tool.run("genisoimage", ["-quiet", "-udf", "-o", bridge, source])
        try UDFOnly.stripISO9660(from: bridge, to: image)
        let volume = try open(image)
        XCTAssertEqual(volume.format, .udf)
        XCTAssertEqual(volume.availableFormats, [.udf])
        let got = try Snapshot.volume(volume, permissions: false)
        Snapshot.assertEqual(got, try Snapshot.host(source, permissions: false), "udf-only vs source")
        Snapshot.assertEqual(got, try Snapshot.host(try sevenZipExtract(image, dir), permissions: false), "udf-only vs 7z")
    }

    /// mkudffs makes 1.02-2.01 for hard disks; 2.50 and 2.60 only for write-once media, with a
    /// virtual partition (VAT). Write-once images are cut after the last written sector, as a
    /// copy of a recorded DVD-R or BD-R is, so that the VAT is in the last sector.
    func testEmptyMkudffsImagesOfEveryRevision() throws {
        try requireTools("mkudffs")
        let cases = ["1.02", "1.50", "2.00", "2.01"].map { ($0, "hd") } + [("1.50", "dvdr"), ("2.01", "dvdr"), ("2.50", "dvdr"), ("2.60", "bdr")]
        for (revision, media) in cases {
            let dir = try TempDir("mkudffs")
            let image = dir.sub("e.udf")
            try Tool.run("truncate", ["-s", "20M", image])
            try Tool.run("mkudffs", ["--media-type=\(media)", "--blocksize=2048", "--udfrev=\(revision)", "--label=Rev\(revision)",
                                     "--uid=1000", "--gid=100", "--mode=0750", image])
            if media != "hd" { try UDFOnly.trimToLastWrittenSector(image) }
            let volume = try open(image)
            XCTAssertEqual(volume.format, .udf, "\(revision) \(media)")
            XCTAssertEqual(volume.label, "Rev\(revision)", revision)
            XCTAssertEqual(try volume.children(of: Volume.rootID).count, 0, revision)
            let root = try volume.attributes(of: Volume.rootID)
            XCTAssertEqual(root.mode, 0o040750, revision)
            XCTAssertEqual(root.uid, 1000, revision)
            XCTAssertEqual(root.gid, 100, revision)
            XCTAssertGreaterThan(root.modificationTime.seconds, 1_600_000_000, revision)
        }
    }
}

/// Makes UDF-only images from UDF bridge images by blanking the ISO 9660 volume descriptors,
/// leaving the UDF recognition sequence (BEA01, NSR02, TEA01) and everything else in place.
enum UDFOnly {
    /// Cuts an image after its last sector that is not all zeros.
    static func trimToLastWrittenSector(_ path: String) throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var end = bytes.count / 2048
        while end > 0 && !bytes[((end - 1) * 2048)..<(end * 2048)].contains(where: { $0 != 0 }) { end -= 1 }
        try Data(bytes[0..<(end * 2048)]).write(to: URL(fileURLWithPath: path))
    }

    static func stripISO9660(from source: String, to destination: String) throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: source)))
        for sector in 16..<64 {
            let start = sector * 2048
            guard start + 2048 <= bytes.count else { break }
            if Array(bytes[(start + 1)..<(start + 6)]) == Array("CD001".utf8) {
                bytes.replaceSubrange(start..<(start + 2048), with: [UInt8](repeating: 0, count: 2048))
            }
        }
        // Close the gap so the recognition sequence starts at sector 16 again.
        var sectors: [[UInt8]] = []
        for sector in 16..<64 where (sector + 1) * 2048 <= bytes.count {
            let data = Array(bytes[(sector * 2048)..<((sector + 1) * 2048)])
            if data.contains(where: { $0 != 0 }) { sectors.append(data) } else if !sectors.isEmpty { break }
        }
        for (index, data) in sectors.enumerated() { bytes.replaceSubrange(((16 + index) * 2048)..<((17 + index) * 2048), with: data) }
        for index in sectors.count..<(sectors.count + 4) { bytes.replaceSubrange(((16 + index) * 2048)..<((17 + index) * 2048), with: [UInt8](repeating: 0, count: 2048)) }
        try Data(bytes).write(to: URL(fileURLWithPath: destination))
    }
}
