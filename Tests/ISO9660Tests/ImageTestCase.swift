import Foundation
import XCTest
@testable import ISO9660

/// Shared steps of the differential tests: make a tree, build an image, open it, compare.
class ImageTestCase: XCTestCase {
    func requireTools(_ names: String...) throws {
        for name in names where !Tool.available(name) {
            // A missing tool fails the test: mountscripts/run-tests.sh installs them all.
            XCTFail("\(name) is not installed (mountscripts/install-deps.sh --test installs it)")
            throw CocoaError(.executableNotLoadable)
        }
    }

    /// Opens an image file.
    func open(_ path: String, _ options: OpenOptions = .init()) throws -> Volume {
        try Volume.open(FileSectorReader(path: path), options: options)
    }

    /// A random tree in `dir/src`.
    func makeTree(_ dir: TempDir, seed: UInt64, style: TreeGenerator.Style) throws -> String {
        let source = dir.sub("src")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        var generator = TreeGenerator(seed: seed, style: style)
        try generator.populate(source)
        return source
    }

    /// Extracts an ISO image with xorriso (libisofs) into a new directory.
    func xorrisoExtract(_ image: String, _ dir: TempDir, name: String = "xorriso-out", extra: [String] = []) throws -> String {
        let out = dir.sub(name)
        try Tool.run("xorriso", ["-abort_on", "FATAL", "-osirrox", "on"] + extra + ["-indev", image, "-extract", "/", out])
        return out
    }

    /// Extracts an image with 7-Zip into a new directory.
    func sevenZipExtract(_ image: String, _ dir: TempDir, name: String = "7z-out", type: String = "udf") throws -> String {
        let out = dir.sub(name)
        try Tool.run("7z", ["x", "-y", "-t" + type, "-o" + out, image])
        return out
    }
}
