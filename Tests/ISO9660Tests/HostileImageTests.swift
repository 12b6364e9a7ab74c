import Foundation
import TestImages
import XCTest
@testable import ISO9660

/// Damaged and malicious images: cycles, extents past the end, absurd lengths, truncation,
/// interleaving, limits. Each must give an error or a truncated view, quickly, never a crash.
final class HostileImageTests: ImageTestCase {
    /// An xorriso image of A/B/C/file plus a few files, as bytes.
    private func nestedImage(_ dir: TempDir) throws -> [UInt8] {
        let source = dir.sub("src")
        try FileManager.default.createDirectory(atPath: source + "/A/B/C", withIntermediateDirectories: true)
        try Data("deep file".utf8).write(to: URL(fileURLWithPath: source + "/A/B/C/file"))
        try Data(repeating: 7, count: 5000).write(to: URL(fileURLWithPath: source + "/A/data"))
        try Data("top".utf8).write(to: URL(fileURLWithPath: source + "/top"))
        let image = dir.sub("n.iso")
        try Tool.run("xorriso", ["-as", "mkisofs", "-quiet", "-R", "-o", image, source])
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: image)))
    }

    private func openBytes(_ bytes: [UInt8], _ options: OpenOptions = .init()) throws -> Volume {
        try Volume.open(MemorySectorReader(bytes: bytes), options: options)
    }

    private func timedWalk(_ volume: Volume, file: StaticString = #filePath, line: UInt = #line) -> BoundedWalk {
        let start = Date()
        var walk = BoundedWalk()
        walk.walk(volume)
        XCTAssertLessThan(Date().timeIntervalSince(start), 2, "walk took too long", file: file, line: line)
        return walk
    }

    func testDirectoryPointingToItsParentOrTheRootIsCutOff() throws {
        try requireTools("xorriso")
        let dir = try TempDir("cycle")
        let original = try nestedImage(dir)
        let root = ISOPatch.root(original)
        let a = try XCTUnwrap(ISOPatch.record(original, in: root, named: "A"))
        let aExtent = ISOPatch.extent(original, record: a)
        let b = try XCTUnwrap(ISOPatch.record(original, in: aExtent, named: "B"))
        for target in [aExtent.block, root.block] {
            var bytes = original
            ISOPatch.setBoth32(&bytes, at: b + 2, UInt32(target))     // B now "contains" A (or the root)
            let volume = try openBytes(bytes)
            let walk = timedWalk(volume)
            XCTAssertLessThan(walk.nodes, 20)
            let aID = try XCTUnwrap(volume.lookup("A", in: Volume.rootID)).id
            XCTAssertNil(try volume.lookup("B", in: aID), "a directory that is its own ancestor is left out")
            XCTAssertNotNil(try volume.lookup("data", in: aID))
        }
    }

    func testRockRidgeChildLinkLoopIsCutOff() throws {
        try requireTools("genisoimage")
        let dir = try TempDir("clloop")
        let source = dir.sub("src")
        var path = source
        for level in 1...10 { path += "/d\(level)" }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: path + "/leaf"))
        let image = dir.sub("cl.iso")
        try Tool.run("genisoimage", ["-quiet", "-R", "-o", image, source])
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: image)))
        let childLinks = ISOPatch.find(original, [0x43, 0x4C, 12, 1])          // "CL", length 12, version 1
        XCTAssertFalse(childLinks.isEmpty)
        XCTAssertNotNil(try Snapshot.volume(try openBytes(original), permissions: true)["d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/leaf"])
        let root = ISOPatch.root(original)
        for target in [root.block, 0, 0xFFFF_FF00] {
            var bytes = original
            for offset in childLinks { ISOPatch.setBoth32(&bytes, at: offset + 4, UInt32(target)) }
            let walk = timedWalk(try openBytes(bytes))
            XCTAssertLessThan(walk.nodes, 20, "CL to \(target)")
        }
    }

    func testExtentsPastTheEndAndAbsurdLengths() throws {
        try requireTools("xorriso")
        let dir = try TempDir("pastend")
        let original = try nestedImage(dir)
        let root = ISOPatch.root(original)
        let top = try XCTUnwrap(ISOPatch.record(original, in: root, named: "TOP"))
        let a = try XCTUnwrap(ISOPatch.record(original, in: root, named: "A"))

        var bytes = original
        ISOPatch.setBoth32(&bytes, at: top + 2, 0x00FF_FFFF)            // file data far past the end
        ISOPatch.setBoth32(&bytes, at: a + 2, 0x7FFF_FFF0)              // directory past the end
        var volume = try openBytes(bytes)
        let file = try XCTUnwrap(volume.lookup("top", in: Volume.rootID))
        XCTAssertEqual(try volume.attributes(of: file.id).size, 3)
        XCTAssertThrowsError(try volume.read(file.id, at: 0, count: 3)) { error in
            XCTAssertEqual((error as? DiscFormatError)?.code, .outOfRange)
        }
        let aID = try XCTUnwrap(volume.lookup("A", in: Volume.rootID)).id
        XCTAssertEqual(try volume.children(of: aID), [], "a directory past the end lists as empty")

        bytes = original
        ISOPatch.setBoth32(&bytes, at: top + 10, 0xFFFF_FFFF)            // a 4 GiB file on a small disc
        ISOPatch.setBoth32(&bytes, at: a + 10, 0xFFFF_FFFF)              // a 4 GiB directory
        volume = try openBytes(bytes)
        let big = try XCTUnwrap(volume.lookup("top", in: Volume.rootID))
        XCTAssertEqual(try volume.attributes(of: big.id).size, 0xFFFF_FFFF)
        XCTAssertThrowsError(try volume.read(big.id, at: 0xFFFF_0000, count: 16))
        XCTAssertEqual(try volume.read(big.id, at: 0, count: 3), Array("top".utf8))
        _ = timedWalk(volume)
        XCTAssertNotNil(try volume.lookup("B", in: try XCTUnwrap(volume.lookup("A", in: Volume.rootID)).id))
    }

    /// Found by the fuzzer: hundreds of directories whose records all point into one large
    /// extent made a walk read that extent once per directory (here 200 x 4 MiB). The volume's
    /// directory budget keeps the walk to the disc's size; the directories past it fail to list
    /// with `limitExceeded` (never an empty listing), and the rest of the disc stays readable.
    func testDirectoriesSharingOneLargeExtentReadNoMoreThanTheDisc() throws {
        try requireTools("xorriso")
        let dir = try TempDir("overlap")
        let source = dir.sub("src")
        let names = (0..<200).map { String(format: "d%03d", $0) }
        for name in names {
            try FileManager.default.createDirectory(atPath: source + "/" + name, withIntermediateDirectories: true)
        }
        try Data(count: 4 << 20).write(to: URL(fileURLWithPath: source + "/big"))
        let image = dir.sub("o.iso")
        try Tool.run("xorriso", ["-as", "mkisofs", "-quiet", "-R", "-o", image, source])
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: image)))
        let root = ISOPatch.root(original)
        let big = ISOPatch.extent(original, record: try XCTUnwrap(ISOPatch.record(original, in: root, named: "BIG")))
        var bytes = original
        for name in names {
            let record = try XCTUnwrap(ISOPatch.record(original, in: root, named: name.uppercased()))
            ISOPatch.setBoth32(&bytes, at: record + 2, UInt32(big.block))
            ISOPatch.setBoth32(&bytes, at: record + 10, UInt32(big.length))
        }
        let reader = CountingSectorReader(MemorySectorReader(bytes: bytes))
        let volume = try Volume.open(reader)
        var listed = 0, refused = 0
        for name in names {
            let entry = try XCTUnwrap(volume.lookup(name, in: Volume.rootID))
            do {
                let children = try volume.children(of: entry.id)
                XCTAssertEqual(children, [], "4 MiB of zeros hold no entries")
                listed += 1
            } catch {
                XCTAssertEqual((error as? DiscFormatError)?.code, .limitExceeded, "\(error)")
                refused += 1
            }
        }
        XCTAssertGreaterThanOrEqual(listed, 1)
        XCTAssertGreaterThanOrEqual(refused, 190)
        XCTAssertLessThanOrEqual(reader.sectorsRead, Int(reader.sectorCount), "directory reads stay within the disc's size")
        let file = try XCTUnwrap(volume.lookup("big", in: Volume.rootID))
        XCTAssertEqual(try volume.read(file.id, at: (4 << 20) - 10, count: 10), [UInt8](repeating: 0, count: 10))

        // The unpatched disc lists every directory: its directories lie in extents of their own.
        let plain = try Volume.open(MemorySectorReader(bytes: original))
        for name in names {
            XCTAssertEqual(try plain.children(of: try XCTUnwrap(plain.lookup(name, in: Volume.rootID)).id), [])
        }
    }

    func testInterleavedFileIsRefusedWithAClearError() throws {
        try requireTools("xorriso")
        let dir = try TempDir("interleaved")
        var bytes = try nestedImage(dir)
        let top = try XCTUnwrap(ISOPatch.record(bytes, in: ISOPatch.root(bytes), named: "TOP"))
        bytes[top + 26] = 1      // file unit size
        bytes[top + 27] = 1      // interleave gap
        let volume = try openBytes(bytes)
        let file = try XCTUnwrap(volume.lookup("top", in: Volume.rootID))
        XCTAssertEqual(try volume.attributes(of: file.id).size, 3)
        for call in [{ _ = try volume.extents(of: file.id) }, { _ = try volume.read(file.id, at: 0, count: 3) }] {
            XCTAssertThrowsError(try call()) { error in
                XCTAssertEqual((error as? DiscFormatError)?.code, .unsupported)
                XCTAssertTrue("\(error)".contains("interleaved"), "\(error)")
            }
        }
    }

    func testTruncatedImagesOpenOrFailCleanly() throws {
        try requireTools("xorriso", "genisoimage", "mkudffs")
        var outcomes = [0, 0]
        for image in try Corpus.images() {
            for step in 1..<24 {
                let cut = image.bytes.count * step / 24
                do {
                    let volume = try openBytes(Array(image.bytes[0..<cut]))
                    _ = timedWalk(volume)
                    outcomes[0] += 1
                } catch {
                    outcomes[1] += 1
                }
            }
        }
        XCTAssertGreaterThan(outcomes[0], 0)
        XCTAssertGreaterThan(outcomes[1], 0)
    }

    func testUDFDirectoryThatContainsItsParentIsCutOff() throws {
        try requireTools("genisoimage")
        let dir = try TempDir("udfcycle")
        let source = dir.sub("src")
        try FileManager.default.createDirectory(atPath: source + "/sub/inner", withIntermediateDirectories: true)
        try Data("f".utf8).write(to: URL(fileURLWithPath: source + "/sub/f"))
        let image = dir.sub("u.iso")
        try Tool.run("genisoimage", ["-quiet", "-udf", "-o", image, source])
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: image)))
        // The FID naming "inner" (8-bit CS0): point its ICB at the root directory's ICB.
        let name = [UInt8(8)] + Array("inner".utf8)
        let nameOffset = try XCTUnwrap(ISOPatch.find(bytes, name).first)
        let fid = nameOffset - 38
        XCTAssertEqual(bytes.le16(fid), 257)
        let volume = try openBytes(bytes, OpenOptions(format: .udf))
        let rootStructure = try UDFVolumeStructure.read(Disc(MemorySectorReader(bytes: bytes)))
        for i in 0..<4 { bytes[fid + 24 + i] = UInt8(truncatingIfNeeded: rootStructure.rootICB.block >> (8 * UInt32(i))) }
        UDFTagFixer.reseal(&bytes, at: fid)
        XCTAssertNotNil(try volume.lookup("inner", in: try XCTUnwrap(volume.lookup("sub", in: Volume.rootID)).id))
        let patched = try openBytes(bytes, OpenOptions(format: .udf))
        _ = timedWalk(patched)
        let sub = try XCTUnwrap(patched.lookup("sub", in: Volume.rootID))
        XCTAssertNil(try patched.lookup("inner", in: sub.id))
        XCTAssertNotNil(try patched.lookup("f", in: sub.id))
    }

    func testLimitsGiveATruncatedView() throws {
        try requireTools("xorriso")
        let dir = try TempDir("limits")
        var style = TreeGenerator.Style()
        style.files = 60
        style.directories = 3
        style.deepChain = 12
        let source = try makeTree(dir, seed: 8, style: style)
        let image = dir.sub("l.iso")
        try Tool.run("xorriso", ["-as", "mkisofs", "-quiet", "-R", "-o", image, source])
        var volume = try open(image, OpenOptions(maxDepth: 3))
        var id = try XCTUnwrap(volume.lookup("deep", in: Volume.rootID)).id
        id = try XCTUnwrap(volume.lookup("level1", in: id)).id
        id = try XCTUnwrap(volume.lookup("level2", in: id)).id
        XCTAssertThrowsError(try volume.children(of: id), "directories at maxDepth fail, never list as empty") { error in
            XCTAssertEqual((error as? DiscFormatError)?.code, .limitExceeded)
        }
        volume = try open(image, OpenOptions(maxEntriesPerDirectory: 5))
        XCTAssertLessThanOrEqual(try volume.children(of: Volume.rootID).count, 5)
        volume = try open(image, OpenOptions(maxNodes: 30))
        XCTAssertLessThanOrEqual(timedWalk(volume).nodes, 30)
    }

    func testSUSPContinuationLoopsAndLongChainsAreBounded() {
        // Sector 20 holds an NM entry and a CE entry pointing back at sector 20 itself: read once.
        var bytes = [UInt8](repeating: 0, count: 80 * 2048)
        let nmA: [UInt8] = [0x4E, 0x4D, 6, 1, 1, 0x41]      // NM "A", continued
        func ce(_ block: Int, offset: UInt32 = 0, length: UInt32 = 34) -> [UInt8] {
            ISOSynth.ce(block: UInt32(block), offset: offset, length: length)
        }
        let area = nmA + ce(20)
        bytes.replaceSubrange((20 * 2048)..<(20 * 2048 + area.count), with: area)
        var cache = SectorCache(Disc(MemorySectorReader(bytes: bytes)))
        var entries = SUSP.entries(area, blockSize: 2048, cache: &cache)
        XCTAssertEqual(RockRidgeInfo(entries).name, "AA", "the area itself, then its one continuation, then the loop is seen")
        // A chain of 40 distinct areas (sectors 30...69) is followed for maxContinuations hops.
        for sector in 30..<70 {
            let link = nmA + ce(sector + 1)
            bytes.replaceSubrange((sector * 2048)..<(sector * 2048 + link.count), with: link)
        }
        cache = SectorCache(Disc(MemorySectorReader(bytes: bytes)))
        entries = SUSP.entries(nmA + ce(30), blockSize: 2048, cache: &cache)
        XCTAssertEqual(RockRidgeInfo(entries).name, String(repeating: "A", count: SUSP.maxContinuations + 1))
        // An area that crosses a block boundary is not followed (Linux refuses it too).
        entries = SUSP.entries(nmA + ce(30, offset: 2040, length: 34), blockSize: 2048, cache: &cache)
        XCTAssertEqual(RockRidgeInfo(entries).name, "A")
    }

    func testTinyAndEmptyDiscs() {
        for size in [0, 2048, 16 * 2048, 17 * 2048, 300 * 2048] {
            XCTAssertThrowsError(try openBytes([UInt8](repeating: 0, count: size))) { error in
                XCTAssertEqual((error as? DiscFormatError)?.code, .notRecognized, "size \(size)")
            }
        }
    }
}
