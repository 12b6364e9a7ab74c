import Foundation
import TestImages
import XCTest
@testable import ISO9660

/// UDF features no tool here writes (see `UDFImageBuilder`): metadata partition, extended file
/// entries, long_ad, sparse extents, allocation extent descriptors, embedded data, 16-bit CS0
/// names, symlinks; checked against the source tree and against 7-Zip.
final class UDFBuiltImageTests: ImageTestCase {
    private func udfTree(_ dir: TempDir, seed: UInt64, symlinks: Bool = true) throws -> String {
        var style = TreeGenerator.Style()
        style.symlinks = symlinks
        style.longNames = false
        style.deepChain = 10
        style.maxFileSize = 40_000
        let source = try makeTree(dir, seed: seed, style: style)
        // Long names: 254 characters (255 bytes of 8-bit CS0, the UDF maximum), and 85 CJK
        // characters (255 bytes of UTF-8 on the host, 16-bit CS0 on the disc).
        try Data("long".utf8).write(to: URL(fileURLWithPath: source + "/" + String(repeating: "L", count: 253) + "z"))
        try Data("wide".utf8).write(to: URL(fileURLWithPath: source + "/" + String(repeating: "日", count: 85)))
        // A sparse file (holes become unrecorded extents) with many extents (an allocation extent descriptor).
        var sparse = [UInt8](repeating: 0, count: 2048 * 40 + 77)
        for i in stride(from: 0, to: sparse.count, by: 6000) { sparse[i] = UInt8(truncatingIfNeeded: i / 6000 + 1) }
        try Data(sparse).write(to: URL(fileURLWithPath: source + "/sparse.bin"))
        return source
    }

    func testMetadataPartitionImageMatchesSource() throws {
        let dir = try TempDir("udf250")
        let source = try udfTree(dir, seed: 40)
        let image = dir.sub("m.udf")
        var builder = UDFImageBuilder()
        builder.label = "Meta250"
        try builder.build(from: source, to: image)
        let volume = try open(image)
        XCTAssertEqual(volume.format, .udf)
        XCTAssertEqual(volume.label, "Meta250")
        let got = try Snapshot.volume(volume, permissions: true)
        Snapshot.assertEqual(got, try Snapshot.host(source, permissions: true), "udf 2.50 vs source")
        let sparse = try XCTUnwrap(volume.lookup("sparse.bin", in: Volume.rootID))
        XCTAssertTrue(try volume.extents(of: sparse.id).contains { if case .zeros = $0 { return true } else { return false } })
        XCTAssertGreaterThan(try volume.extents(of: sparse.id).count, 10, "continued in an allocation extent descriptor")
    }

    func testMetadataPartitionImageWithoutSymlinksMatches7Zip() throws {
        try requireTools("7z")
        let dir = try TempDir("udf250z")
        let source = try udfTree(dir, seed: 44, symlinks: false)
        let image = dir.sub("m.udf")
        var builder = UDFImageBuilder()
        builder.simpleAllocation = true
        builder.splitMetadata = false
        try builder.build(from: source, to: image)
        let got = try Snapshot.volume(try open(image), permissions: true)
        Snapshot.assertEqual(got, try Snapshot.host(source, permissions: true), "udf 2.50 vs source")
        try assertSevenZipAgrees(image, got, dir)
    }

    func testPlainFileEntryImageWithSparseFilesAndSymlinksMatchesSource() throws {
        let dir = try TempDir("udffe")
        let source = try udfTree(dir, seed: 43)
        let image = dir.sub("f.udf")
        var builder = UDFImageBuilder()
        builder.metadataPartition = false
        builder.extendedEntries = false
        try builder.build(from: source, to: image)
        Snapshot.assertEqual(try Snapshot.volume(try open(image), permissions: true),
                             try Snapshot.host(source, permissions: true), "udf file entries vs source")
    }

    func testSimpleUDFImageMatchesSourceAnd7Zip() throws {
        try requireTools("7z")
        let dir = try TempDir("udfsimple")
        let source = try udfTree(dir, seed: 41, symlinks: false)
        let image = dir.sub("f.udf")
        var builder = UDFImageBuilder()
        builder.metadataPartition = false
        builder.extendedEntries = false
        builder.simpleAllocation = true
        try builder.build(from: source, to: image)
        let got = try Snapshot.volume(try open(image), permissions: true)
        Snapshot.assertEqual(got, try Snapshot.host(source, permissions: true), "udf file entries vs source")
        try assertSevenZipAgrees(image, got, dir)
    }

    func testAnchorFallbackToTheLastSector() throws {
        let dir = try TempDir("udfanchor")
        let source = try udfTree(dir, seed: 42)
        let image = dir.sub("a.udf")
        var builder = UDFImageBuilder()
        try builder.build(from: source, to: image)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: image)))
        bytes.replaceSubrange((256 * 2048)..<(257 * 2048), with: [UInt8](repeating: 0, count: 2048))
        let volume = try Volume.open(MemorySectorReader(bytes: bytes))
        Snapshot.assertEqual(try Snapshot.volume(volume, permissions: true), try Snapshot.host(source, permissions: true), "anchor at N-1")
    }

    /// 7-Zip extracts the same tree (modes are not compared: 7-Zip does not restore UDF permissions).
    private func assertSevenZipAgrees(_ image: String, _ got: [String: EntrySnapshot], _ dir: TempDir) throws {
        let extracted = try Snapshot.host(try sevenZipExtract(image, dir), permissions: false)
        let ours = got.mapValues { entry -> EntrySnapshot in
            var copy = entry
            copy.permissions = nil
            return copy
        }
        Snapshot.assertEqual(ours, extracted, "udf vs 7z")
    }
}
