import Foundation
import Glibc
import XCTest

/// The drive's `disc`: the loaded media as a read-only block image (contract section 2.2).
final class DiscTests: MountTestCase {

    func testEmptyDriveDisc() {
        makeDrive()
        var st = stat()
        XCTAssertEqual(stat(disc, &st), 0)
        XCTAssertEqual(st.st_size, 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o444)
        XCTAssertEqual(openErrno(disc, O_RDONLY), ENOMEDIUM)
        XCTAssertEqual(openErrno(disc, O_WRONLY), EROFS)
    }

    func testDiscEqualsTheImage() throws {
        makeDrive()
        var files: [String: String] = [:]
        for i in 0..<40 { files["dir\(i % 4)/file\(i).txt"] = String(repeating: "line \(i)\n", count: 500 * (i + 1)) }
        let iso = try fx.makeISO("tree.iso", label: "TREE_LABEL", files: files)
        XCTAssertEqual(writeErrno(mediaFile, iso), 0)
        XCTAssertEqual(openErrno(disc, O_WRONLY), EROFS)
        XCTAssertEqual(openErrno(disc, O_RDWR), EROFS)
        let r = sh("cmp '\(disc)' '\(iso)'")
        XCTAssertEqual(r.status, 0, r.out + r.err)
        // Independent readers accept it: xorriso (libisofs) extracts the same tree.
        let out = fx.root + "/extracted"
        let x = sh("xorriso -osirrox on -indev '\(disc)' -extract / '\(out)' 2>&1")
        XCTAssertEqual(x.status, 0, x.out)
        let d = sh("diff -r '\(fx.sourceTree("tree.iso"))' '\(out)'")
        XCTAssertEqual(d.status, 0, d.out)
        let info = sh("iso-info --no-header -d -i '\(disc)'")
        XCTAssertTrue(info.out.contains("TREE_LABEL"), info.out + info.err)
        let z = sh("cd '\(fx.root)' && mkdir -p z && cd z && 7z x -y '\(disc)' >/dev/null && diff -r '\(fx.sourceTree("tree.iso"))' .")
        XCTAssertEqual(z.status, 0, z.out + z.err)
        XCTAssertEqual(fx.status("aix01", "cd0")["openers"], "0", "every handle was released")
    }

    func testLoopDeviceOfDiscProbesAsISO9660() throws {
        makeDrive()
        let iso = try fx.makeISO("loop.iso", label: "LOOPLABEL")
        XCTAssertEqual(writeErrno(mediaFile, iso), 0)
        let l = sh("losetup -r -f --show '\(disc)'")
        XCTAssertEqual(l.status, 0, l.err)
        let dev = l.out.trimmingCharacters(in: .whitespacesAndNewlines)
        defer { sh("losetup -d '\(dev)'") }
        let b = sh("blkid -p -o export '\(dev)'")
        XCTAssertTrue(b.out.contains("TYPE=iso9660"), b.out + b.err)
        XCTAssertTrue(b.out.contains("LABEL=LOOPLABEL"), b.out)
        XCTAssertEqual(sh("cmp '\(dev)' '\(iso)'").status, 0)
    }

    func testSizeNotMultipleOf2048ReadsAsZeroPaddedBlocks() throws {
        makeDrive()
        let iso = try fx.makeISO("odd.iso")
        XCTAssertEqual(sh("printf 'TAILBYTES' >> '\(iso)'").status, 0)
        let size = try FileManager.default.attributesOfItem(atPath: iso)[.size] as! UInt64
        XCTAssertNotEqual(size % 2048, 0)
        XCTAssertEqual(writeErrno(mediaFile, iso), 0)
        var st = stat()
        XCTAssertEqual(stat(disc, &st), 0)
        XCTAssertEqual(UInt64(st.st_size), (size + 2047) / 2048 * 2048, "whole blocks")
        XCTAssertEqual(sh("cmp -n \(size) '\(disc)' '\(iso)'").status, 0)
        let tail = sh("tail -c \(UInt64(st.st_size) - size) '\(disc)' | od -An -v -tx1 | tr -d ' \\n' | tr -d 0 | wc -c")
        XCTAssertEqual(tail.out.trimmingCharacters(in: .whitespacesAndNewlines), "0", "the short last block reads as zeros")
        XCTAssertEqual(sh("tail -c 2048 '\(disc)' | grep -c TAILBYTES").out.trimmingCharacters(in: .whitespacesAndNewlines), "1")
    }

    func testImageOver4GiB() throws {
        makeDrive()
        let iso = try fx.makeISO("big.iso")
        // Sparse to 4.5 GiB, with a marker past 4 GiB.
        XCTAssertEqual(sh("truncate -s 4831838208 '\(iso)' && printf 'MARKER-PAST-4G' | dd of='\(iso)' bs=1 seek=4500000000 conv=notrunc 2>/dev/null").status, 0)
        XCTAssertEqual(writeErrno(mediaFile, iso), 0)
        var st = stat()
        XCTAssertEqual(stat(disc, &st), 0)
        XCTAssertEqual(st.st_size, 4_831_838_208)
        XCTAssertEqual(fx.status("aix01", "cd0")["blocks"], "2359296")
        let r = sh("dd if='\(disc)' bs=1 skip=4500000000 count=14 2>/dev/null")
        XCTAssertEqual(r.out, "MARKER-PAST-4G")
        XCTAssertEqual(sh("cmp -n 1048576 '\(disc)' '\(iso)'").status, 0)
        let last = sh("dd if='\(disc)' bs=2048 skip=2359295 count=1 2>/dev/null | wc -c")
        XCTAssertEqual(last.out.trimmingCharacters(in: .whitespacesAndNewlines), "2048")
        let past = sh("dd if='\(disc)' bs=2048 skip=2359296 count=1 2>/dev/null | wc -c")
        XCTAssertEqual(past.out.trimmingCharacters(in: .whitespacesAndNewlines), "0", "reading at the end gives end of file")
    }

    func testDiscCanBeMappedShared() throws {
        makeDrive()
        let a = try fx.makeISO("a.iso")
        XCTAssertEqual(writeErrno(mediaFile, a), 0)
        let fd = open(disc, O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        let p = mmap(nil, 65536, PROT_READ, MAP_SHARED, fd, 0)
        XCTAssertNotEqual(p, MAP_FAILED, "the kept-cache disc maps shared like any read-only file")
        guard let p, p != MAP_FAILED else { return }
        defer { munmap(p, 65536) }
        let image = try Data(contentsOf: URL(fileURLWithPath: a))
        XCTAssertEqual(Array(UnsafeRawBufferPointer(start: p, count: 65536)), Array(image.prefix(65536)))
    }

    func testHandleOpenedBeforeAMediaChangeGetsESTALE() throws {
        makeDrive()
        let a = try fx.makeISO("a.iso", label: "AAAA", files: ["a.txt": String(repeating: "A", count: 100_000)])
        let b = try fx.makeISO("b.iso", label: "BBBB", files: ["b.txt": String(repeating: "B", count: 100_000)])
        XCTAssertEqual(writeErrno(mediaFile, a), 0)
        let fd = open(disc, O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 2048)
        XCTAssertEqual(pread(fd, &buf, 2048, 16 * 2048), 2048)
        XCTAssertEqual(fx.status("aix01", "cd0")["openers"], "1")
        XCTAssertEqual(writeErrno(mediaFile, b), 0, "swap while a reader has the disc open")
        // The old descriptor's inode is gone (ESTALE) or keeps its own generation's size:
        // never 0 (a silent end of file) and never the new media's size.
        var held = stat()
        if fstat(fd, &held) == 0 {
            XCTAssertEqual(UInt64(held.st_size), (try FileManager.default.attributesOfItem(atPath: a)[.size] as! UInt64 + 2047) / 2048 * 2048)
        } else {
            XCTAssertEqual(errno, ESTALE)
        }
        // Uncached blocks of the old handle: ESTALE, never B's bytes.
        XCTAssertEqual(pread(fd, &buf, 2048, 40 * 2048), -1)
        XCTAssertEqual(errno, ESTALE)
        XCTAssertEqual(pread(fd, &buf, 2048, 20 * 2048), -1)
        XCTAssertEqual(errno, ESTALE)
        // A fresh open sees the new media at once.
        XCTAssertEqual(sh("cmp '\(disc)' '\(b)'").status, 0)
        var st = stat()
        stat(disc, &st)
        XCTAssertEqual(UInt64(st.st_size), try FileManager.default.attributesOfItem(atPath: b)[.size] as! UInt64)
        // After an eject, the old handle stays stale and a new open finds no medium.
        XCTAssertEqual(unlink(mediaFile), 0)
        XCTAssertEqual(pread(fd, &buf, 2048, 0), -1)
        XCTAssertEqual(errno, ESTALE)
        XCTAssertEqual(openErrno(disc, O_RDONLY), ENOMEDIUM)
    }

    func testChangedBackingImageFailsWithEIO() throws {
        makeDrive()
        let iso = try fx.makeISO("chg.iso", files: ["f": String(repeating: "x", count: 300_000)])
        XCTAssertEqual(writeErrno(mediaFile, iso), 0)
        XCTAssertEqual(sh("cmp '\(disc)' '\(iso)'").status, 0)
        // Rewritten in place (same size, new mtime).
        XCTAssertEqual(sh("sleep 0.01; printf 'Z' | dd of='\(iso)' bs=1 seek=100 conv=notrunc 2>/dev/null").status, 0)
        XCTAssertEqual(openErrno(disc, O_RDONLY), EIO)
        let r = sh("dd if='\(disc)' of=/dev/null bs=2048 skip=50 count=1")
        XCTAssertNotEqual(r.status, 0)
        eventually { fx.status("aix01", "cd0")["last_error"] != "" }
        XCTAssertTrue(fx.status("aix01", "cd0")["last_error"]!.contains("modified"), fx.status("aix01", "cd0")["last_error"]!)
        XCTAssertTrue(fx.logText.contains("was modified while loaded"))
    }

    func testReplacedBackingImageFailsWithEIO() throws {
        makeDrive()
        let iso = try fx.makeISO("rep.iso")
        XCTAssertEqual(writeErrno(mediaFile, iso), 0)
        let other = try fx.makeISO("other.iso", in: fx.root)
        XCTAssertEqual(sh("cp -p '\(other)' '\(iso).new' && mv '\(iso).new' '\(iso)'").status, 0)
        XCTAssertEqual(openErrno(disc, O_RDONLY), EIO)
        eventually { fx.status("aix01", "cd0")["last_error"] != "" }
        // The descriptor still holds the old inode, unchanged: only the path tells.
        XCTAssertTrue(fx.status("aix01", "cd0")["last_error"]!.contains("was replaced while loaded"), fx.status("aix01", "cd0")["last_error"]!)
    }
}
