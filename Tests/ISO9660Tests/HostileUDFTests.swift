import Foundation
import TestImages
import TestSupport
import XCTest
@testable import ISO9660

/// Hostile UDF structures patched into images made by `UDFImageBuilder` (plain file entries in a
/// physical partition, so partition block p is disc sector 257 + p): indirect entry (ICB) loops,
/// allocation extent descriptor loops, and file identifiers (FIDs) naming their own directory.
final class HostileUDFTests: ImageTestCase {
    private let partitionStart = UDFPatch.partitionStart

    private func build(_ dir: TempDir) throws -> [UInt8] {
        let source = dir.sub("src")
        try FileManager.default.createDirectory(atPath: source + "/sub/inner", withIntermediateDirectories: true)
        for name in ["a.txt", "b.txt", "c.txt", "sub/f"] { try Data(name.utf8).write(to: URL(fileURLWithPath: source + "/" + name)) }
        // 100 KB without zero blocks: cut into 1-3 block extents, more than ten, so the
        // builder moves the rest into an allocation extent descriptor.
        var random = SeededRandom(seed: 5)
        try Data((0..<100_000).map { _ in UInt8.random(in: 1...255, using: &random) }).write(to: URL(fileURLWithPath: source + "/many.bin"))
        var builder = UDFImageBuilder()
        builder.metadataPartition = false
        builder.extendedEntries = false
        let image = dir.sub("u.udf")
        try builder.build(from: source, to: image)
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: image)))
    }

    /// The FID naming `name` and the partition block of its ICB.
    private func fid(_ bytes: [UInt8], _ name: String) throws -> (offset: Int, icb: Int) {
        try XCTUnwrap(UDFPatch.fileIdentifier(bytes, named: name), "no FID for \(name)")
    }

    private func openUDF(_ bytes: [UInt8]) throws -> Volume {
        try Volume.open(MemorySectorReader(bytes: bytes), options: OpenOptions(format: .udf))
    }

    func testIndirectEntryLoopsLeaveTheFileOutAndNothingElse() throws {
        let dir = try TempDir("udficb")
        var bytes = try build(dir)
        let a = try fid(bytes, "a.txt"), b = try fid(bytes, "b.txt"), c = try fid(bytes, "c.txt")
        UDFPatch.makeIndirect(&bytes, at: a.icb, to: a.icb)                        // names itself
        UDFPatch.makeIndirect(&bytes, at: b.icb, to: c.icb)                        // b -> c -> b
        UDFPatch.makeIndirect(&bytes, at: c.icb, to: b.icb)
        let start = Date()
        let volume = try openUDF(bytes)
        let names = Set(try volume.children(of: Volume.rootID).map(\.name))
        XCTAssertEqual(names, ["many.bin", "sub"], "the looping entries are left out")
        var walk = BoundedWalk()
        walk.walk(volume)
        XCTAssertLessThan(Date().timeIntervalSince(start), 2)
    }

    func testAllocationExtentLoopGivesATruncatedFileQuickly() throws {
        let dir = try TempDir("udfaed")
        var bytes = try build(dir)
        let many = try fid(bytes, "many.bin")
        let entry = (partitionStart + many.icb) * 2048
        let allocation = entry + 176                                      // plain file entry, no extended attributes
        let descriptors = Int(bytes.le32(entry + 172)) / 16
        XCTAssertGreaterThan(descriptors, 9)
        let last = allocation + 16 * (descriptors - 1)
        XCTAssertEqual(bytes.le32(last) >> 30, 3, "the last descriptor continues in an allocation extent descriptor")
        let aed = Int(bytes.le32(last + 4))
        let kept = (0..<(descriptors - 1)).reduce(0) { $0 + Int(bytes.le32(allocation + 16 * $1) & 0x3FFF_FFFF) }
        // The descriptor's first entry continues in the descriptor itself.
        let aedSector = (partitionStart + aed) * 2048
        bytes.replaceSubrange((aedSector + 24)..<(aedSector + 40), with: UDFImageBuilder.longAD(length: 2048, block: aed, partition: 0, type: 3))
        UDFTagFixer.reseal(&bytes, at: aedSector)
        let start = Date()
        let reader = CountingSectorReader(MemorySectorReader(bytes: bytes))
        let volume = try Volume.open(reader, options: OpenOptions(format: .udf))
        let file = try XCTUnwrap(volume.lookup("many.bin", in: Volume.rootID))
        XCTAssertLessThan(reader.sectorsRead, 200, "the loop is seen at once, not followed thousands of times")
        XCTAssertEqual(try volume.attributes(of: file.id).size, UInt64(kept), "cut where the descriptors loop")
        XCTAssertEqual(try volume.read(file.id, at: 0, count: kept + 10).count, kept)
        XCTAssertLessThan(Date().timeIntervalSince(start), 2)
    }

    func testFileIdentifierNamingItsOwnDirectoryIsCutOff() throws {
        let dir = try TempDir("udffid")
        var bytes = try build(dir)
        let sub = try fid(bytes, "sub"), inner = try fid(bytes, "inner")
        UDFImageBuilder.put32(&bytes, inner.offset + 24, UInt32(sub.icb))   // sub/inner is sub again
        UDFTagFixer.reseal(&bytes, at: inner.offset)
        UDFTagFixer.reseal(&bytes, at: inner.offset / 2048 * 2048)          // sub's entry embeds its FIDs
        let volume = try openUDF(bytes)
        var walk = BoundedWalk()
        walk.walk(volume)
        XCTAssertLessThan(walk.nodes, 12)
        let subID = try XCTUnwrap(volume.lookup("sub", in: Volume.rootID)).id
        XCTAssertEqual(try volume.children(of: subID).map(\.name), ["f"], "the directory that is its own child is left out")
    }
}

/// A `SectorReader` that counts the sectors read through it.
final class CountingSectorReader: SectorReader, @unchecked Sendable {
    private let inner: any SectorReader
    private let lock = NSLock()
    private var count = 0
    init(_ inner: any SectorReader) { self.inner = inner }
    var sectorCount: UInt64 { inner.sectorCount }
    var sectorsRead: Int { lock.withLock { count } }

    func readSectors(_ sector: UInt64, count: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        lock.withLock { self.count += count }
        try inner.readSectors(sector, count: count, into: buffer)
    }
}
