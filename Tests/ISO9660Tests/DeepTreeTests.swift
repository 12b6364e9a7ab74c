import Foundation
import XCTest
@testable import ISO9660

/// Trees nested far deeper than ISO 9660's 8 levels: Rock Ridge lets xorriso write them as they
/// are and genisoimage relocate them (CL/RE). They must list to the bottom; past
/// `OpenOptions.maxDepth` a listing fails loudly instead of showing an empty directory.
final class DeepTreeTests: ImageTestCase {
    /// `levels` nested directories called `name` under `root`, with a file at the bottom and a
    /// marker file every 100 levels. Made with `mkdirat`/`openat`, so the path can exceed PATH_MAX.
    static func makeChain(_ root: String, levels: Int, name: String = "d") throws {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        var fd = Glibc.open(root, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        for level in 1...levels {
            guard mkdirat(fd, name, 0o755) == 0 else { throw POSIXError(.EIO) }
            let next = openat(fd, name, O_RDONLY | O_DIRECTORY)
            guard next >= 0 else { throw POSIXError(.EIO) }
            close(fd)
            fd = next
            if level % 100 == 0 || level == levels { try write(fd, level == levels ? "bottom" : "level\(level)", "mark\(level)") }
        }
    }

    private static func write(_ dirFD: Int32, _ text: String, _ name: String) throws {
        let file = openat(dirFD, name, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard file >= 0 else { throw POSIXError(.EIO) }
        defer { close(file) }
        let bytes = Array(text.utf8)
        guard Glibc.write(file, bytes, bytes.count) == bytes.count else { throw POSIXError(.EIO) }
    }

    /// Walks down the chain by name; returns the id of the directory at `levels`.
    private func descend(_ volume: Volume, levels: Int, name: String = "d") throws -> NodeID {
        var id = Volume.rootID
        for level in 1...levels {
            guard let next = try volume.lookup(name, in: id) else {
                XCTFail("no \(name) at level \(level)")
                throw POSIXError(.ENOENT)
            }
            XCTAssertEqual(next.kind, .directory)
            id = next.id
        }
        return id
    }

    private func assertBottom(_ volume: Volume, levels: Int) throws {
        let start = Date()
        let bottom = try descend(volume, levels: levels)
        let mark = try XCTUnwrap(volume.lookup("mark\(levels)", in: bottom))
        XCTAssertEqual(try volume.read(mark.id, at: 0, count: 100), Array("bottom".utf8))
        XCTAssertEqual(try volume.children(of: bottom).map(\.name), ["mark\(levels)"])
        XCTAssertLessThan(Date().timeIntervalSince(start), 5, "walking \(levels) levels took too long")
    }

    func testThousandLevelsWrittenByXorrisoListToTheBottom() throws {
        try requireTools("xorriso")
        let dir = try TempDir("deep1000")
        try Self.makeChain(dir.sub("src"), levels: 1000)
        let image = dir.sub("deep.iso")
        try Tool.run("xorriso", ["-as", "mkisofs", "-quiet", "-R", "-o", image, dir.sub("src")])
        let baseline = MemoryProbe.reset()
        let volume = try open(image)
        XCTAssertEqual(volume.format, .rockRidge)
        try assertBottom(volume, levels: 1000)
        MemoryProbe.report("1000 levels, listed to the bottom", since: baseline)
        let middle = try descend(volume, levels: 500)
        XCTAssertEqual(Set(try volume.children(of: middle).map(\.name)), ["d", "mark500"])
    }

    /// A chain `levels` deep written by genisoimage with Rock Ridge (which relocates what
    /// lies past ISO 9660's eight levels); returns the image's path.
    static func genisoimageChain(in dir: TempDir, levels: Int) throws -> String {
        try makeChain(dir.sub("src"), levels: levels)
        let image = dir.sub("deep.iso")
        try Tool.run("genisoimage", ["-quiet", "-R", "-o", image, dir.sub("src")])
        return image
    }

    func testRelocatedDirectoriesThreeHundredLevelsDeepListToTheBottom() throws {
        try requireTools("genisoimage")
        let dir = try TempDir("deep300")
        let image = try Self.genisoimageChain(in: dir, levels: 300)
        let plain = try open(image, OpenOptions(format: .iso9660))
        XCTAssertTrue(try plain.children(of: Volume.rootID).contains { $0.name.lowercased() == "rr_moved" }, "relocated for real")
        let volume = try open(image)
        XCTAssertEqual(try volume.children(of: Volume.rootID).map(\.name), ["d"])
        try assertBottom(volume, levels: 300)
    }

    func testPastTheDepthLimitListingFailsInsteadOfShowingEmpty() throws {
        try requireTools("genisoimage")
        let dir = try TempDir("deepcap")
        let image = try Self.genisoimageChain(in: dir, levels: 300)
        let volume = try open(image, OpenOptions(maxDepth: 200))
        let last = try descend(volume, levels: 199)
        let capped = try XCTUnwrap(volume.lookup("d", in: last))     // depth 200: named, not listable
        for call in [{ _ = try volume.children(of: capped.id) }, { _ = try volume.lookup("d", in: capped.id) }] {
            XCTAssertThrowsError(try call()) { error in
                XCTAssertEqual((error as? DiscFormatError)?.code, .limitExceeded)
                XCTAssertTrue("\(error)".contains("200"), "\(error)")
            }
        }
        XCTAssertGreaterThanOrEqual(OpenOptions().maxDepth, 2048, "the default is past what the tools write")
    }
}
