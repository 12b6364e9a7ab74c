import Foundation
import XCTest
@testable import ISO9660

/// A file over 4 GiB, which ISO 9660 stores as several directory records with the multi-extent
/// flag (xorriso -iso-level 3). Needs about 4.3 GB of temporary disk space, removed afterwards.
final class MultiExtentTests: ImageTestCase {
    func testFileOver4GiBIsOneEntryWithAllItsBytes() throws {
        try requireTools("xorriso")
        let dir = try TempDir("multiextent")
        let source = dir.sub("src")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        let size: UInt64 = (4 << 30) + 3 * 1024 * 1024 + 123
        // A sparse file with recognisable bytes around the 4 GiB boundary and at both ends.
        let markers: [(UInt64, [UInt8])] = [
            (0, Array("start of the big file".utf8)),
            ((4 << 30) - 2048 - 7, Array(repeating: 0xA5, count: 4096 + 14)),   // across the first extent's end
            ((4 << 30) + 1_048_576, Array("past four gibibytes".utf8)),
            (size - 10, Array("0123456789".utf8)),
        ]
        let path = source + "/big.bin"
        let fd = Foundation.open(path, O_WRONLY | O_CREAT, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        ftruncate(fd, off_t(size))
        for (offset, bytes) in markers { _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) } }
        close(fd)
        try Data("small".utf8).write(to: URL(fileURLWithPath: source + "/small.txt"))
        let image = dir.sub("big.iso")
        try Tool.run("xorriso", ["-as", "mkisofs", "-quiet", "-R", "-J", "-iso-level", "3", "-o", image, source], timeout: 300)
        try FileManager.default.removeItem(atPath: path)

        for format in [VolumeFormat.rockRidge, .joliet, .iso9660] {
            let volume = try open(image, OpenOptions(format: format))
            let children = try volume.children(of: Volume.rootID)
            let names = children.map(\.name).sorted()
            XCTAssertEqual(names, format == .iso9660 ? ["BIG.BIN", "SMALL.TXT"] : ["big.bin", "small.txt"], "\(format): listed once")
            let big = try XCTUnwrap(children.first { $0.name.lowercased() == "big.bin" })
            XCTAssertEqual(try volume.attributes(of: big.id).size, size)
            let extents = try volume.extents(of: big.id)
            XCTAssertGreaterThanOrEqual(extents.count, 2)
            XCTAssertEqual(extents.reduce(0) { $0 + $1.length }, size)
            for (offset, bytes) in markers {
                XCTAssertEqual(try volume.read(big.id, at: offset, count: bytes.count), bytes, "\(format) at \(offset)")
                XCTAssertEqual(try volume.read(big.id, at: offset + UInt64(bytes.count), count: 1).first ?? 0, 0)
            }
            XCTAssertEqual(try volume.read(big.id, at: size - 4, count: 100), Array("6789".utf8))
        }
        // xorriso (libisofs) agrees on the size.
        let listing = try Tool.run("xorriso", ["-indev", image, "-lsl", "/big.bin"])
        XCTAssertTrue(listing.contains(" \(size) "), listing)
    }
}
