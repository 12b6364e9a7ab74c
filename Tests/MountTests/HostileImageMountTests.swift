import Foundation
import Glibc
import TestImages
import XCTest

/// Hostile discs loaded into a real mount (issue 15): directory loops, Rock Ridge continuation
/// loops, names with "/" or NUL, symlinks that climb, extents past the end, 1,000 levels,
/// 200,000 entries in one directory, UDF indirect-entry and file-identifier loops. Each is read
/// through `contents/` with `find`, `ls`, `cat` and `readlink`, as a file manager would; each must
/// give an errno or a bounded, correct listing, while a healthy drive next to it keeps serving
/// byte-exact reads and the daemon's memory stays bounded.
final class HostileImageMountTests: MountTestCase {
    private var good: String { fx.path("guests/good/cd0") }
    private var goodImage = ""

    override func setUpWithError() throws {
        try super.setUpWithError()
        goodImage = try fx.makeISO("good.iso", files: ["hello.txt": "hello\n", "dir/inner.txt": "inner\n"])
        makeDrive("good", "cd0")
        XCTAssertEqual(writeErrno(good + "/media", goodImage), 0)
    }

    /// The healthy drive answers: its disc reads back as its image and its files are there.
    private func assertGoodDriveServes(_ after: String, file: StaticString = #filePath, line: UInt = #line) {
        let cmp = sh("cmp '\(good)/disc' '\(goodImage)'", timeout: 30)
        XCTAssertEqual(cmp.status, 0, "after \(after): disc differs or hung: \(cmp.err)", file: file, line: line)
        XCTAssertEqual(readText(good + "/contents/dir/inner.txt"), "inner\n", "after \(after)", file: file, line: line)
    }

    /// Loads `image` (written into the media dir as `name`) into guest `guest`'s drive, which is
    /// named after the guest (drive names are unique on the host).
    private func load(_ guest: String, _ name: String, _ bytes: [UInt8]) throws -> String {
        let path = fx.media + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o644)
        makeDrive(guest, guest)
        XCTAssertEqual(writeErrno(fx.path("guests/\(guest)/\(guest)/media"), path), 0, "insert \(name): \(fx.status(guest, guest)["last_error"] ?? "")")
        return fx.path("guests/\(guest)/\(guest)/contents")
    }

    /// `find` over a whole `contents/` tree: it must end (a loop would not) and list a bounded tree.
    private func find(_ contents: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        let r = sh("find '\(contents)' -mindepth 1 -printf '%P\\n'", timeout: 60)
        XCTAssertNotEqual(r.status, -2, "find did not end", file: file, line: line)
        return r.out.split(separator: "\n").map(String.init).sorted()
    }

    private func xorriso(_ source: String, _ out: String) throws -> [UInt8] {
        let r = sh("xorriso -as mkisofs -quiet -R -o '\(out)' '\(source)'", timeout: 120)
        guard r.status == 0 else { throw NSError(domain: "xorriso: \(r.err)", code: Int(r.status)) }
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))
    }

    /// An xorriso -R image of A/B/C/file, A/data (5,000 bytes of 7) and top.
    private func nested() throws -> [UInt8] {
        let src = fx.root + "/src-nested"
        try FileManager.default.createDirectory(atPath: src + "/A/B/C", withIntermediateDirectories: true)
        try Data("deep file".utf8).write(to: URL(fileURLWithPath: src + "/A/B/C/file"))
        try Data(repeating: 7, count: 5000).write(to: URL(fileURLWithPath: src + "/A/data"))
        try Data("top".utf8).write(to: URL(fileURLWithPath: src + "/top"))
        return try xorriso(src, fx.root + "/nested.iso")
    }

    /// An xorriso -R image of an empty directory `big` and a file `hello`, with where to graft.
    private func base() throws -> (bytes: [UInt8], root: UInt32, big: Int, hello: (block: Int, length: Int)) {
        let src = fx.root + "/src-base"
        try FileManager.default.createDirectory(atPath: src + "/big", withIntermediateDirectories: true)
        try Data("hello".utf8).write(to: URL(fileURLWithPath: src + "/hello"))
        let bytes = try xorriso(src, fx.root + "/base.iso")
        let root = ISOPatch.root(bytes)
        let big = try XCTUnwrap(ISOPatch.record(bytes, in: root, named: "BIG"))
        let hello = try XCTUnwrap(ISOPatch.record(bytes, in: root, named: "HELLO"))
        return (bytes, UInt32(root.block), big, ISOPatch.extent(bytes, record: hello))
    }

    /// A Rock Ridge file record named `name` holding the data of `hello`, with `extra` SUSP bytes.
    private func file(_ hello: (block: Int, length: Int), _ iso: String, _ name: [UInt8], extra: [UInt8] = []) -> [UInt8] {
        ISOSynth.record(Array(iso.utf8), extent: UInt32(hello.block), length: UInt32(hello.length),
                        systemUse: ISOSynth.nm(name, continues: !extra.isEmpty) + extra)
    }

    func testEachHostileDiscGivesAnErrnoOrABoundedListingAndTheOtherDrivesKeepServing() throws {
        let rssBefore = daemonMemory()

        // A directory whose record points at its parent's extent, and one at the root's.
        let original = try nested()
        let root = ISOPatch.root(original)
        let a = try XCTUnwrap(ISOPatch.record(original, in: root, named: "A"))
        let aExtent = ISOPatch.extent(original, record: a)
        let b = try XCTUnwrap(ISOPatch.record(original, in: aExtent, named: "B"))
        for (guest, target) in [("parentloop", aExtent.block), ("rootloop", root.block)] {
            var bytes = original
            ISOPatch.setBoth32(&bytes, at: b + 2, UInt32(target))
            let contents = try load(guest, guest + ".iso", bytes)
            XCTAssertEqual(find(contents), ["A", "A/data", "top"], "\(guest): the looping directory is left out, its siblings stay")
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: contents + "/A/data")), Data(repeating: 7, count: 5000))
            assertGoodDriveServes(guest)
        }

        // Extents past the end of the image: the file reads EIO, the directory lists empty.
        var pastEnd = original
        let top = try XCTUnwrap(ISOPatch.record(original, in: root, named: "TOP"))
        ISOPatch.setBoth32(&pastEnd, at: top + 2, 0x00FF_FFFF)
        ISOPatch.setBoth32(&pastEnd, at: a + 2, 0x7FFF_FFF0)
        let pastEndContents = try load("pastend", "pastend.iso", pastEnd)
        let cat = sh("cat '\(pastEndContents)/top'", timeout: 30)
        XCTAssertNotEqual(cat.status, 0)
        XCTAssertTrue(cat.err.contains("Input/output error"), "reading past the end: \(cat.err)")
        XCTAssertEqual(find(pastEndContents), ["A", "top"])
        assertGoodDriveServes("extents past the end")

        // Rock Ridge: continuation areas that loop, one past the end, names with "/" and NUL,
        // dot names, and a symlink whose target climbs and holds a NUL.
        var rr = try base()
        let loop = UInt32((rr.bytes.count + 2047) / 2048)
        ISOSynth.append(&rr.bytes, ISOSynth.nm(Array("-self".utf8), continues: true) + ISOSynth.ce(block: loop, offset: 0, length: 40))
        let pair = loop + 1
        var pairArea = ISOSynth.nm(Array("-p".utf8), continues: true) + ISOSynth.ce(block: pair, offset: 100, length: 40)
        pairArea += [UInt8](repeating: 0, count: 100 - pairArea.count)
        pairArea += ISOSynth.nm(Array("-q".utf8), continues: true) + ISOSynth.ce(block: pair, offset: 0, length: 40)
        ISOSynth.append(&rr.bytes, pairArea)
        let records = [
            file(rr.hello, "A.;1", Array("self".utf8), extra: ISOSynth.ce(block: loop, offset: 0, length: 40)),
            file(rr.hello, "B.;1", Array("pair".utf8), extra: ISOSynth.ce(block: pair, offset: 0, length: 40)),
            file(rr.hello, "C.;1", Array("past".utf8), extra: ISOSynth.ce(block: 0xFFFF_FF00, offset: 0, length: 100)),
            file(rr.hello, "D.;1", Array("a/b".utf8)),
            file(rr.hello, "E.;1", [0x63, 0, 0x64]),
            file(rr.hello, "F.;1", Array("..".utf8)),
            file(rr.hello, "G.;1", Array(".".utf8)),
            file(rr.hello, "H.;1", Array("ok".utf8)),
        ]
        ISOSynth.graftDirectory(&rr.bytes, recordAt: rr.big, parentBlock: rr.root, records)
        let rrContents = try load("rockridge", "rockridge.iso", rr.bytes)
        let listed = find(rrContents)
        XCTAssertEqual(listed.filter { !$0.hasPrefix("big/self") && !$0.hasPrefix("big/pair") && !$0.hasPrefix("big/past") },
                       ["big", "big/a_b", "big/c_d", "big/ok", "hello"], "names replaced, dot names dropped: \(listed)")
        XCTAssertLessThanOrEqual(listed.count, 8, "looping continuations give one entry each: \(listed)")
        for name in ["a_b", "c_d", "ok"] { XCTAssertEqual(readText(rrContents + "/big/" + name), "hello", name) }
        assertGoodDriveServes("Rock Ridge continuation loops")

        let linkSource = fx.root + "/src-links"
        try FileManager.default.createDirectory(atPath: linkSource, withIntermediateDirectories: true)
        let up = String(repeating: "../", count: 40) + "etc/passwd"
        for (name, target) in ["up": up, "abs": "/etc/shadow", "nul": "x/secret"] {
            try FileManager.default.createSymbolicLink(atPath: linkSource + "/" + name, withDestinationPath: target)
        }
        var links = try xorriso(linkSource, fx.root + "/links.iso")
        let secret = try XCTUnwrap(ISOPatch.find(links, Array("secret".utf8)).first)
        links[secret + 1] = 0                                                    // "s\0cret"
        let linkContents = try load("links", "links.iso", links)
        XCTAssertEqual(sh("readlink '\(linkContents)/up'").out, up + "\n", "the target as the disc spells it")
        XCTAssertEqual(sh("readlink '\(linkContents)/abs'").out, "/etc/shadow\n")
        let nul = sh("readlink '\(linkContents)/nul'")
        XCTAssertNotEqual(nul.status, 0, "a target holding NUL is not cut short into another path: \(nul.out)")
        XCTAssertEqual(find(linkContents), ["abs", "nul", "up"], "find does not follow the links")
        assertGoodDriveServes("climbing symlinks")

        // UDF: an indirect entry naming itself, two naming each other, a file identifier naming
        // its own directory.
        var udf = try udfImage()
        let fa = try fid(udf, "a.txt"), fb = try fid(udf, "b.txt"), fc = try fid(udf, "c.txt")
        UDFPatch.makeIndirect(&udf, at: fa.icb, to: fa.icb)
        UDFPatch.makeIndirect(&udf, at: fb.icb, to: fc.icb)
        UDFPatch.makeIndirect(&udf, at: fc.icb, to: fb.icb)
        let sub = try fid(udf, "sub"), inner = try fid(udf, "inner")
        UDFImageBuilder.put32(&udf, inner.offset + 24, UInt32(sub.icb))
        UDFTagFixer.reseal(&udf, at: inner.offset)
        UDFTagFixer.reseal(&udf, at: inner.offset / 2048 * 2048)
        let udfContents = try load("udfloops", "loops.udf", udf)
        XCTAssertEqual(find(udfContents), ["d.txt", "sub", "sub/f"], "the looping entries are left out and nothing else")
        XCTAssertEqual(readText(udfContents + "/sub/f"), "sub/f")
        assertGoodDriveServes("UDF loops")

        // Every hostile drive keeps its media and says nothing is wrong with the drive itself.
        for guest in ["parentloop", "rootloop", "pastend", "rockridge", "links", "udfloops"] {
            XCTAssertEqual(fx.status(guest, guest)["state"], "loaded", guest)
        }
        let rssAfter = daemonMemory()
        print("hostile discs: daemon VmRSS \(rssBefore.rss) -> \(rssAfter.rss) KiB, VmHWM \(rssAfter.hwm) KiB")
        XCTAssertLessThan(rssAfter.hwm, 512 * 1024, "the daemon's peak memory stays bounded")
    }

    func testOneThousandLevelsAndTwoHundredThousandEntriesListWhileTheOtherDrivesServe() throws {
        let before = daemonMemory()

        // 1,000 nested directories written by xorriso -R: walked to the bottom.
        var path = fx.root + "/src-deep"
        for _ in 0..<1000 { path += "/d" }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try Data("bottom".utf8).write(to: URL(fileURLWithPath: path + "/leaf"))
        let deepContents = try load("deep", "deep.iso", try xorriso(fx.root + "/src-deep", fx.root + "/deep.iso"))
        let deep = find(deepContents)
        XCTAssertEqual(deep.count, 1001, "1,000 levels and the leaf")
        XCTAssertEqual(readText(deepContents + "/" + String(repeating: "d/", count: 1000) + "leaf"), "bottom")
        assertGoodDriveServes("1,000 levels")

        // 200,000 entries with 255-byte names in one directory, as xorriso lays such names out:
        // 150 bytes in the record, the rest in continuation areas, 18 to a block.
        var wide = try base()
        let count = 200_000, perBlock = 18
        let firstArea = UInt32((wide.bytes.count + 2047) / 2048)
        var areas: [UInt8] = [], records: [[UInt8]] = []
        records.reserveCapacity(count)
        func longName(_ i: Int) -> [UInt8] { Array((String(format: "%06d-", i) + String(repeating: "n", count: 248)).utf8) }
        for i in 0..<count {
            let name = longName(i)
            if i % perBlock == 0 { areas += [UInt8](repeating: 0, count: (2048 - areas.count % 2048) % 2048) }
            let ce = ISOSynth.ce(block: firstArea + UInt32(areas.count / 2048), offset: UInt32(areas.count % 2048), length: 110)
            areas += ISOSynth.nm(Array(name[150...]))
            records.append(file(wide.hello, String(format: "F%06d.;1", i), Array(name[..<150]), extra: ce))
        }
        ISOSynth.append(&wide.bytes, areas)
        ISOSynth.graftDirectory(&wide.bytes, recordAt: wide.big, parentBlock: wide.root, records)
        let wideContents = try load("wide", "wide.iso", wide.bytes)

        // While `ls` lists it, the healthy drive is read again and again: every read must
        // succeed and match, so a long listing holds no lock the other drives need.
        let stop = Shared(false), reads = Shared(0), failures = Shared(0)
        let reader = Thread { [good, goodImage] in
            let expected = try? Data(contentsOf: URL(fileURLWithPath: goodImage))
            while !stop.value {
                if (try? Data(contentsOf: URL(fileURLWithPath: good + "/disc"))) == expected { reads.add(1) } else { failures.add(1) }
            }
        }
        reader.start()
        let ls = sh("ls -f '\(wideContents)/big' | wc -l", timeout: 300)
        stop.value = true
        while !reader.isFinished { usleep(10_000) }
        XCTAssertEqual(ls.out.trimmingCharacters(in: .whitespacesAndNewlines), "\(count + 2)", "every entry and . and ..")
        XCTAssertGreaterThan(reads.value, 0, "the healthy drive was read during the listing")
        XCTAssertEqual(failures.value, 0, "no read of the healthy drive failed or differed")
        let last = String(decoding: longName(count - 1), as: UTF8.self)
        XCTAssertEqual(readText(wideContents + "/big/" + last), "hello", "the last entry, by its 255-byte name")
        assertGoodDriveServes("200,000 entries")

        let during = daemonMemory()
        XCTAssertEqual(unlink(fx.path("guests/wide/wide/media")), 0, "eject")
        XCTAssertEqual(unlink(fx.path("guests/deep/deep/media")), 0, "eject")
        let after = daemonMemory()
        print("1,000 levels + 200,000 entries (\(reads.value) healthy reads meanwhile): daemon VmRSS \(before.rss) -> \(during.rss) KiB listed -> \(after.rss) KiB ejected, VmHWM \(after.hwm) KiB")
        XCTAssertLessThan(after.hwm, 1536 * 1024, "the daemon's peak memory stays bounded")
    }

    // MARK: UDF

    /// A UDF image (plain file entries, physical partition) of a.txt b.txt c.txt d.txt sub/inner sub/f.
    private func udfImage() throws -> [UInt8] {
        let src = fx.root + "/src-udf"
        try FileManager.default.createDirectory(atPath: src + "/sub/inner", withIntermediateDirectories: true)
        for name in ["a.txt", "b.txt", "c.txt", "d.txt", "sub/f"] { try Data(name.utf8).write(to: URL(fileURLWithPath: src + "/" + name)) }
        var builder = UDFImageBuilder()
        builder.metadataPartition = false
        builder.extendedEntries = false
        let out = fx.root + "/loops.udf"
        try builder.build(from: src, to: out)
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))
    }

    /// The file identifier naming `name` and the partition block of its ICB.
    private func fid(_ bytes: [UInt8], _ name: String) throws -> (offset: Int, icb: Int) {
        try XCTUnwrap(UDFPatch.fileIdentifier(bytes, named: name), "no file identifier for \(name)")
    }

    // MARK: Memory

    /// The daemon's resident and peak resident memory in KiB, from /proc/PID/status. Both
    /// must be found: a bound on memory that was never read would hold for nothing.
    private func daemonMemory(file: StaticString = #filePath, line: UInt = #line) -> (rss: Int, hwm: Int) {
        let status = fx.daemon.flatMap { readText("/proc/\($0.processIdentifier)/status") } ?? ""
        func field(_ name: String) -> Int {
            let line = status.split(separator: "\n").first { $0.hasPrefix(name + ":") } ?? ""
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
        let memory = (rss: field("VmRSS"), hwm: field("VmHWM"))
        XCTAssertGreaterThan(memory.rss, 0, "the daemon's VmRSS", file: file, line: line)
        XCTAssertGreaterThan(memory.hwm, 0, "the daemon's VmHWM", file: file, line: line)
        return memory
    }
}

/// A value shared between a test and its reader thread.
private final class Shared<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

private extension Shared where Value == Int {
    func add(_ n: Int) { lock.withLock { stored += n } }
}
