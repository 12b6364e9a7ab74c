import Foundation
import TestImages
import XCTest
@testable import ISO9660

/// Hostile Rock Ridge directories grafted onto a real xorriso image: continuation (CE) loops,
/// names with "/" or NUL, symlinks that climb, and one directory of 200,000 entries. Each must
/// list quickly, completely where the disc is sound and bounded where it is not.
final class HostileRockRidgeTests: ImageTestCase {
    private struct Base {
        var bytes: [UInt8]
        /// The root's block, the record of the (empty) directory "big" in it, and the "hello" file's extent.
        var rootBlock: UInt32
        var bigRecord: Int
        var hello: (block: Int, length: Int)
    }

    /// An xorriso -R image of an empty directory `big` and a file `hello`.
    private func base(_ dir: TempDir) throws -> Base {
        let source = dir.sub("src")
        try FileManager.default.createDirectory(atPath: source + "/big", withIntermediateDirectories: true)
        try Data("hello".utf8).write(to: URL(fileURLWithPath: source + "/hello"))
        let image = dir.sub("base.iso")
        try Tool.run("xorriso", ["-as", "mkisofs", "-quiet", "-R", "-o", image, source])
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: image)))
        let root = ISOPatch.root(bytes)
        let big = try XCTUnwrap(ISOPatch.record(bytes, in: root, named: "BIG"))
        let hello = try XCTUnwrap(ISOPatch.record(bytes, in: root, named: "HELLO"))
        return Base(bytes: bytes, rootBlock: UInt32(root.block), bigRecord: big, hello: ISOPatch.extent(bytes, record: hello))
    }

    /// A file record named `name` by Rock Ridge, with the data of "hello", plus `extra` SUSP bytes.
    private func file(_ base: Base, _ iso: String, _ name: [UInt8], extra: [UInt8] = []) -> [UInt8] {
        ISOSynth.record(Array(iso.utf8), extent: UInt32(base.hello.block), length: UInt32(base.hello.length),
                        systemUse: ISOSynth.nm(name, continues: !extra.isEmpty) + extra)
    }

    private func timed<T>(_ limit: Double, _ what: String, _ body: () throws -> T) rethrows -> T {
        let start = Date()
        defer {
            let elapsed = Date().timeIntervalSince(start)
            print("\(what): \(String(format: "%.2f", elapsed)) s")
            XCTAssertLessThan(elapsed, limit, "\(what) took too long")
        }
        return try body()
    }

    /// A 255-byte name for entry `i`: its number, then padding.
    private func longName(_ i: Int) -> String {
        String(format: "%06d-", i) + String(repeating: "n", count: 248)
    }

    func testTwoHundredThousandEntriesWithLongNamesInOneDirectoryAllList() throws {
        try requireTools("xorriso")
        let dir = try TempDir("wide")
        var image = try base(dir)
        let count = 200_000, perBlock = 18, tail = 110
        // Each 255-byte name as xorriso writes it: 150 bytes in the record, the rest in a
        // continuation area; 18 areas share a block.
        let firstArea = UInt32((image.bytes.count + 2047) / 2048)
        var areas: [UInt8] = []
        areas.reserveCapacity(count / perBlock * 2048 + 2048)
        var records: [[UInt8]] = []
        records.reserveCapacity(count)
        for i in 0..<count {
            let name = Array(longName(i).utf8)
            if i % perBlock == 0 { areas += [UInt8](repeating: 0, count: (2048 - areas.count % 2048) % 2048) }
            let offset = UInt32(areas.count % 2048), block = firstArea + UInt32(areas.count / 2048)
            areas += ISOSynth.nm(Array(name[150...]))
            records.append(file(image, String(format: "F%06d.;1", i), Array(name[..<150]), extra: ISOSynth.ce(block: block, offset: offset, length: UInt32(tail))))
        }
        XCTAssertEqual(ISOSynth.append(&image.bytes, areas), firstArea)
        ISOSynth.graftDirectory(&image.bytes, recordAt: image.bigRecord, parentBlock: image.rootBlock, records)
        let baseline = MemoryProbe.reset()
        let volume = try Volume.open(MemorySectorReader(bytes: image.bytes))
        let big = try XCTUnwrap(volume.lookup("big", in: Volume.rootID))
        let children = try timed(20, "listing 200,000 entries") { try volume.children(of: big.id) }
        let grown = MemoryProbe.report("200,000 entries with 255-byte names", since: baseline)
        XCTAssertLessThan(grown, 1 << 20, "bounded: under 1 GiB for 200,000 nodes")
        XCTAssertEqual(children.count, count)
        XCTAssertEqual(children.first?.name, longName(0))
        XCTAssertEqual(children.last?.name, longName(count - 1))
        XCTAssertTrue(children.allSatisfy { $0.name.utf8.count == 255 })
        for i in [0, 99_999, 199_999] {
            let entry = try XCTUnwrap(volume.lookup(longName(i), in: big.id))
            XCTAssertEqual(try volume.attributes(of: entry.id).size, 5)
            XCTAssertEqual(try volume.read(entry.id, at: 0, count: 10), Array("hello".utf8))
        }
        XCTAssertEqual(volume.nodeCount, count + 3)
    }

    /// Continuation areas at `block`: each is (offset, SUSP bytes); returns the sector.
    private func areas(_ pieces: [(Int, [UInt8])], sectors: Int = 1) -> [UInt8] {
        var data = [UInt8](repeating: 0, count: 2048 * sectors)
        for (offset, bytes) in pieces { data.replaceSubrange(offset..<(offset + bytes.count), with: bytes) }
        return data
    }

    func testContinuationLoopsAndContinuationsPastTheEndAreCut() throws {
        try requireTools("xorriso")
        let dir = try TempDir("celoop")
        var image = try base(dir)
        let loop = UInt32(image.bytes.count / 2048), pair = loop + 1, huge = loop + 2
        // One sector whose area names itself; one holding two areas that name each other; 32
        // sectors whose one 64 KiB area names itself.
        ISOSynth.append(&image.bytes, areas([(0, ISOSynth.nm(Array("-self".utf8), continues: true) + ISOSynth.ce(block: loop, offset: 0, length: 40))]))
        ISOSynth.append(&image.bytes, areas([(0, ISOSynth.nm(Array("-p".utf8), continues: true) + ISOSynth.ce(block: pair, offset: 100, length: 40)),
                                             (100, ISOSynth.nm(Array("-q".utf8), continues: true) + ISOSynth.ce(block: pair, offset: 0, length: 40))]))
        ISOSynth.append(&image.bytes, areas([(0, ISOSynth.ce(block: huge, offset: 0, length: 65536) + ISOSynth.nm(Array("-h".utf8), continues: true))], sectors: 32))
        let records = [
            file(image, "A.;1", Array("self".utf8), extra: ISOSynth.ce(block: loop, offset: 0, length: 40)),
            file(image, "B.;1", Array("pair".utf8), extra: ISOSynth.ce(block: pair, offset: 0, length: 40)),
            file(image, "C.;1", Array("past-end".utf8), extra: ISOSynth.ce(block: 0xFFFF_FF00, offset: 0, length: 100)),
            file(image, "D.;1", Array("huge".utf8), extra: ISOSynth.ce(block: huge, offset: 0, length: 65536)),
            file(image, "E.;1", Array("plain".utf8)),
        ]
        ISOSynth.graftDirectory(&image.bytes, recordAt: image.bigRecord, parentBlock: image.rootBlock, records)
        let volume = try Volume.open(MemorySectorReader(bytes: image.bytes))
        let big = try XCTUnwrap(volume.lookup("big", in: Volume.rootID))
        let names = try volume.children(of: big.id).map(\.name)
        XCTAssertEqual(names.count, 5)
        XCTAssertEqual(names.last, "plain")
        for (name, prefix) in zip(names, ["self", "pair", "past-end", "huge"]) {
            XCTAssertTrue(name.hasPrefix(prefix), name)
            XCTAssertLessThanOrEqual(name.utf8.count, 255, "a looping name stays a usable name: \(name)")
        }
        XCTAssertEqual(names[2], "past-end", "a continuation past the end adds nothing")
        for name in names { XCTAssertEqual(try volume.read(try XCTUnwrap(volume.lookup(name, in: big.id)).id, at: 0, count: 9), Array("hello".utf8)) }
    }

    func testManyRecordsSharingAHugeContinuationLoopListQuickly() throws {
        try requireTools("xorriso")
        let dir = try TempDir("cewide")
        var image = try base(dir)
        let huge = UInt32(image.bytes.count / 2048)
        ISOSynth.append(&image.bytes, areas([(0, ISOSynth.ce(block: huge, offset: 0, length: 65536))], sectors: 32))
        // A chain of 40 whole blocks, each packed with tiny unknown entries after its CE.
        let chain = UInt32(image.bytes.count / 2048)
        for i in UInt32(0)..<40 {
            let junk = [UInt8](repeating: 0, count: 2048 - 28).enumerated().map { $0.offset % 4 == 2 ? UInt8(4) : UInt8(0x5A) }
            ISOSynth.append(&image.bytes, ISOSynth.ce(block: chain + i + 1, offset: 0, length: 2048) + junk)
        }
        let count = 20_000
        let records = (0..<count).map { i in
            let ce = i % 2 == 0 ? ISOSynth.ce(block: huge, offset: 0, length: 65536) : ISOSynth.ce(block: chain, offset: 0, length: 2048)
            return file(image, String(format: "F%06d.;1", i), Array(String(format: "f%06d", i).utf8), extra: ce)
        }
        ISOSynth.graftDirectory(&image.bytes, recordAt: image.bigRecord, parentBlock: image.rootBlock, records)
        let baseline = MemoryProbe.reset()
        let volume = try Volume.open(MemorySectorReader(bytes: image.bytes))
        let big = try XCTUnwrap(volume.lookup("big", in: Volume.rootID))
        let children = try timed(5, "listing records that all loop") { try volume.children(of: big.id) }
        MemoryProbe.report("20,000 records in continuation loops", since: baseline)
        XCTAssertEqual(children.count, count)
        XCTAssertEqual(children.last?.name, "f019999")
    }

    func testNamesWithSlashOrNULAreReplacedAndDotNamesDropped() throws {
        try requireTools("xorriso")
        let dir = try TempDir("nmslash")
        var image = try base(dir)
        let names: [[UInt8]] = [Array("a/b".utf8), [0x63, 0, 0x64], Array("/".utf8), Array(".".utf8), Array("..".utf8),
                                Array("../../etc".utf8), Array("a_b".utf8), Array("ok".utf8)]
        let records = names.enumerated().map { i, name in file(image, "N\(i).;1", name) }
        ISOSynth.graftDirectory(&image.bytes, recordAt: image.bigRecord, parentBlock: image.rootBlock, records)
        let volume = try Volume.open(MemorySectorReader(bytes: image.bytes))
        let big = try XCTUnwrap(volume.lookup("big", in: Volume.rootID))
        let listed = try volume.children(of: big.id).map(\.name)
        XCTAssertEqual(listed, ["a_b", "c_d", "_", ".._.._etc", "ok"], "replaced, dot names dropped, the later a_b a duplicate")
        for name in listed { XCTAssertFalse(name.utf8.contains { $0 == 0x2F || $0 == 0 }) }
        XCTAssertNil(try volume.lookup("a/b", in: big.id))
    }

    func testClimbingSymlinksAreReportedAsWrittenAndNeverFollowed() throws {
        try requireTools("xorriso")
        let dir = try TempDir("slclimb")
        let source = dir.sub("src")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        let targets = ["up": String(repeating: "../", count: 40) + "etc/passwd", "abs": "/etc/shadow",
                       "mixed": "a/../../b/./../../../c", "parent": "..", "self": "."]
        for (name, target) in targets { try FileManager.default.createSymbolicLink(atPath: source + "/" + name, withDestinationPath: target) }
        let image = dir.sub("sl.iso")
        try Tool.run("xorriso", ["-as", "mkisofs", "-quiet", "-R", "-o", image, source])
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: image)))
        // A component whose bytes hold a "/" and a NUL: still one string, never split or resolved.
        let slash = ISOPatch.find(bytes, Array("passwd".utf8))
        XCTAssertEqual(slash.count, 1)
        bytes.replaceSubrange(slash[0]..<(slash[0] + 6), with: [0x70, 0x2F, 0x2E, 0x2E, 0, 0x64])
        let volume = try Volume.open(MemorySectorReader(bytes: bytes))
        for (name, target) in targets {
            let link = try XCTUnwrap(volume.lookup(name, in: Volume.rootID))
            XCTAssertEqual(link.kind, .symlink)
            let expected = name == "up" ? String(repeating: "../", count: 40) + "etc/p/..\u{0}d" : target
            let attributes = try volume.attributes(of: link.id)
            XCTAssertEqual(attributes.symlinkTarget, expected)
            XCTAssertEqual(attributes.size, UInt64(expected.utf8.count))
            XCTAssertEqual(try volume.extents(of: link.id), [])
            XCTAssertThrowsError(try volume.children(of: link.id)) { error in
                XCTAssertEqual((error as? DiscFormatError)?.code, .notDirectory)
            }
            XCTAssertThrowsError(try volume.lookup("etc", in: link.id))
        }
        XCTAssertEqual(volume.nodeCount, 1 + targets.count, "nothing outside the listed entries was reached")
    }

    func testDirectoriesSharingExtentsStopAtTheNodeLimitWithoutFurtherParsing() throws {
        try requireTools("xorriso")
        let dir = try TempDir("dag")
        var image = try base(dir)
        // 40 levels; at each, "a" and "b" both name the next level's extent: 2^40 paths.
        let levels = 40
        let first = UInt32((image.bytes.count + 2047) / 2048)
        for level in 0..<levels {
            let block = first + UInt32(level), next = block + 1
            var records = [ISOSynth.record([0], extent: block, length: 2048, directory: true),
                           ISOSynth.record([1], extent: level == 0 ? image.rootBlock : block - 1, length: 2048, directory: true)]
            if level + 1 < levels {
                records += ["A", "B"].map { ISOSynth.record(Array($0.utf8), extent: next, length: 2048, directory: true, systemUse: ISOSynth.nm(Array($0.lowercased().utf8))) }
            }
            ISOSynth.append(&image.bytes, ISOSynth.extent(records))
        }
        ISOPatch.setBoth32(&image.bytes, at: image.bigRecord + 2, first)
        let reader = CountingSectorReader(MemorySectorReader(bytes: image.bytes))
        let baseline = MemoryProbe.reset()
        let volume = try Volume.open(reader, options: OpenOptions(maxNodes: 5000))
        let start = Date()
        var walk = BoundedWalk()
        walk.walk(volume)
        MemoryProbe.report("walk of 2^40 shared paths, maxNodes 5000", since: baseline)
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        XCTAssertLessThanOrEqual(walk.nodes, 5000)
        // Each level's sector is listed once per path that reaches it; the volume's directory
        // budget (the disc's size) ends the walk long before the node table fills.
        XCTAssertLessThan(volume.nodeCount, 5000)
        XCTAssertLessThanOrEqual(reader.sectorsRead, 2 * Int(reader.sectorCount), "reads bounded by the disc, not by the 2^40 paths")
        XCTAssertGreaterThan(walk.errors, 0, "directories past the budget fail to list")
        // Once the table is full (root, big, hello, a, b), a directory not listed yet lists as
        // empty without a sector read.
        let small = try Volume.open(reader, options: OpenOptions(maxNodes: 5))
        let big = try XCTUnwrap(small.lookup("big", in: Volume.rootID))
        let a = try XCTUnwrap(small.lookup("a", in: big.id))
        XCTAssertEqual(small.nodeCount, 5)
        let before = reader.sectorsRead
        XCTAssertEqual(try small.children(of: a.id), [])
        XCTAssertEqual(reader.sectorsRead, before, "no parsing once the node table is full")
    }
}
