import Foundation
import Glibc
import XCTest

/// `contents/`: the loaded disc's own files, compared with the tree the image was made
/// from (contract section 2.4).
final class ContentsTests: MountTestCase {
    var contents: String { fx.path("guests/aix01/cd0/contents") }
    var media: String { fx.path("guests/aix01/cd0/media") }

    /// Lists a tree as "type path size mode target" lines (sorted), for comparison.
    /// Names, sizes, link targets and modes; the modes without write bits, which a disc's
    /// files never show (docs/contract.md, access checks).
    func manifest(_ root: String, modes: Bool = true) -> String {
        let script = """
        import os, stat, sys
        root = sys.argv[1]; modes = sys.argv[2] == "1"
        out = []
        for d, dirs, files in os.walk(root):
            for n in dirs + files:
                p = os.path.join(d, n); st = os.lstat(p); rel = os.path.relpath(p, root)
                if stat.S_ISLNK(st.st_mode): out.append("l %s -> %s" % (rel, os.readlink(p)))
                elif stat.S_ISDIR(st.st_mode): out.append("d %s%s" % (rel, " %o" % (st.st_mode & 0o7555) if modes else ""))
                else: out.append("f %s %d%s" % (rel, st.st_size, " %o" % (st.st_mode & 0o7555) if modes else ""))
        print("\\n".join(sorted(out)))
        """
        try? script.write(toFile: fx.root + "/manifest.py", atomically: false, encoding: .utf8)
        return sh("python3 '\(fx.root)/manifest.py' '\(root)' \(modes ? 1 : 0)").out
    }

    func makeRichTree(_ name: String) -> String {
        let src = fx.root + "/src-\(name)"
        let long = String(repeating: "n", count: 200)
        let script = """
        set -e
        mkdir -p '\(src)'/docs/sub '\(src)'/empty '\(src)'/a/b/c/d/e/f/g/h/i/j
        printf 'hello\\n' > '\(src)'/README.txt
        head -c 300000 /dev/urandom > '\(src)'/docs/blob.bin
        : > '\(src)'/docs/empty.txt
        printf 'deep\\n' > '\(src)'/a/b/c/d/e/f/g/h/i/j/deep.txt
        printf 'unicode\\n' > '\(src)'/docs/'Grüße – 日本.txt'
        printf 'long\\n' > '\(src)'/docs/\(long)
        ln -s ../README.txt '\(src)'/docs/link-to-readme
        ln -s /nowhere/at/all '\(src)'/docs/dangling
        chmod 0750 '\(src)'/docs/sub
        chmod 0600 '\(src)'/docs/blob.bin
        chmod 0755 '\(src)'/README.txt
        """
        XCTAssertEqual(sh(script).status, 0)
        return src
    }

    func insert(_ iso: String) {
        XCTAssertEqual(writeErrno(media, iso + "\n"), 0, fx.status("aix01", "cd0")["last_error"] ?? "")
    }

    func testRockRidgeTreeMatchesTheSource() throws {
        makeDrive()
        let src = makeRichTree("rr")
        let iso = fx.media + "/rr.iso"
        XCTAssertEqual(sh("xorriso -as mkisofs -quiet -R -J -V RR -o '\(iso)' '\(src)'").status, 0)
        insert(iso)
        XCTAssertEqual(manifest(contents), manifest(src))
        XCTAssertEqual(sh("diff -r --no-dereference '\(src)' '\(contents)'").status, 0)
        XCTAssertEqual(sh("cmp '\(contents)/docs/blob.bin' '\(src)/docs/blob.bin'").status, 0)
        var st = stat()
        XCTAssertEqual(lstat(contents + "/docs/link-to-readme", &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFLNK)
        XCTAssertEqual(st.st_size, 13, "a symlink's size is its target's length")
        XCTAssertEqual(sh("readlink '\(contents)/docs/dangling'").out, "/nowhere/at/all\n")
        XCTAssertEqual(readText(contents + "/docs/link-to-readme"), "hello\n")
        // Inode numbers stay put while the media stays.
        var a = stat(), b = stat()
        stat(contents + "/docs/blob.bin", &a)
        _ = sh("find '\(contents)' > /dev/null")
        stat(contents + "/docs/blob.bin", &b)
        XCTAssertEqual(a.st_ino, b.st_ino)
        XCTAssertFalse(FileManager.default.fileExists(atPath: contents + "/rr_moved"), "relocation directory hidden")
        // Read-only.
        XCTAssertEqual(writeErrno(contents + "/README.txt", "x"), EROFS)
        XCTAssertEqual(mkdir(contents + "/new", 0o755), -1)
        // tar reads it all.
        XCTAssertEqual(sh("tar -C '\(contents)' -cf '\(fx.root)/t.tar' . && mkdir '\(fx.root)/untar' && tar -C '\(fx.root)/untar' -xf '\(fx.root)/t.tar' && diff -r --no-dereference '\(src)' '\(fx.root)/untar'").status, 0)
    }

    func testJolietOnlyAndUDFBridgeImages() throws {
        makeDrive()
        let src = fx.root + "/src-j"
        XCTAssertEqual(sh("mkdir -p '\(src)/Folder With Spaces' && printf 'J\\n' > '\(src)/Folder With Spaces/Long Joliet Name.text' && printf 'x\\n' > '\(src)/plain.txt'").status, 0)
        let joliet = fx.media + "/j.iso"
        XCTAssertEqual(sh("genisoimage -quiet -J -o '\(joliet)' '\(src)'").status, 0)
        insert(joliet)
        XCTAssertEqual(manifest(contents, modes: false), manifest(src, modes: false))
        XCTAssertEqual(readText(contents + "/Folder With Spaces/Long Joliet Name.text"), "J\n")

        let udf = fx.media + "/u.iso"
        XCTAssertEqual(sh("genisoimage -quiet -udf -o '\(udf)' '\(src)'").status, 0)
        insert(udf)
        XCTAssertEqual(manifest(contents, modes: false), manifest(src, modes: false), "UDF names win over ISO 9660 names")
        XCTAssertEqual(sh("diff -r '\(src)' '\(contents)'").status, 0)
    }

    func testEmptyDriveAndMediaChangesShowTheNewTree() throws {
        makeDrive()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: contents), [])
        let a = try fx.makeISO("a.iso", label: "A", files: ["same.txt": "from A\n", "only-a.txt": "a\n"])
        let b = try fx.makeISO("b.iso", label: "B", files: ["same.txt": "from B, longer\n", "only-b.txt": "b\n"])
        insert(a)
        XCTAssertEqual(readText(contents + "/same.txt"), "from A\n")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: contents).sorted(), ["only-a.txt", "same.txt"])
        let fd = open(contents + "/same.txt", O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        insert(b)
        XCTAssertEqual(readText(contents + "/same.txt"), "from B, longer\n", "no stale bytes or size after a swap")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: contents).sorted(), ["only-b.txt", "same.txt"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: contents + "/only-a.txt"), "no stale names")
        XCTAssertEqual(unlink(media), 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: contents), [])
    }

    /// The nodes of older media generations are dropped: browsing and swapping many times
    /// does not grow the daemon's inode table (statfs reports its size as f_files).
    func testSwapsDoNotAccumulateInodes() throws {
        makeDrive()
        var files: [String: String] = [:]
        for i in 0..<200 { files["d\(i % 10)/f\(i)"] = "\(i)\n" }
        let a = try fx.makeISO("a.iso", files: files)
        let b = try fx.makeISO("b.iso", files: files)
        func nodes() -> Int { Int(sh("stat -f -c %c '\(fx.mnt)'").out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1 }
        insert(a)
        XCTAssertEqual(sh("find '\(contents)' -type f | wc -l").out.trimmingCharacters(in: .whitespacesAndNewlines), "200")
        let first = nodes()
        XCTAssertGreaterThan(first, 200)
        for i in 0..<10 {
            insert(i % 2 == 0 ? b : a)
            XCTAssertEqual(sh("find '\(contents)' -type f | wc -l").out.trimmingCharacters(in: .whitespacesAndNewlines), "200")
        }
        XCTAssertLessThanOrEqual(nodes(), first + 5, "ten swaps of a 200-file disc leave no old nodes behind")
    }

    func testFileOver4GiBIsOneMultiExtentFile() throws {
        makeDrive()
        let src = fx.root + "/src-big"
        XCTAssertEqual(sh("mkdir -p '\(src)' && truncate -s 4297064448 '\(src)/big.img' && printf 'END-OF-BIG' | dd of='\(src)/big.img' bs=1 seek=4297064438 conv=notrunc 2>/dev/null && printf 'x\\n' > '\(src)/small.txt'").status, 0)
        let iso = fx.media + "/big.iso"
        let made = sh("xorriso -as mkisofs -quiet -iso-level 3 -R -J -o '\(iso)' '\(src)'", timeout: 600)
        XCTAssertEqual(made.status, 0, made.err)
        defer { unlink(iso) }
        insert(iso)
        let names = try FileManager.default.contentsOfDirectory(atPath: contents).sorted()
        XCTAssertEqual(names, ["big.img", "small.txt"], "listed once")
        var st = stat()
        XCTAssertEqual(stat(contents + "/big.img", &st), 0)
        XCTAssertEqual(st.st_size, 4_297_064_448, "not cut at 4 GiB")
        XCTAssertEqual(sh("tail -c 10 '\(contents)/big.img'").out, "END-OF-BIG")
        XCTAssertEqual(sh("cmp -n 8388608 -i 4290000000 '\(contents)/big.img' '\(src)/big.img'").status, 0, "bytes across the extent boundary")
    }
}
