import Foundation
import TestImages
import XCTest
@testable import ISO9660

/// Small real images, made once per test run, for the hostile-image and mutation tests.
enum Corpus {
    struct Image {
        var name: String
        var bytes: [UInt8]
    }

    nonisolated(unsafe) private static var cached: [Image]?
    private static let lock = NSLock()

    /// Builds (once) a small tree and images of it in every format the tools make.
    static func images() throws -> [Image] {
        lock.lock()
        defer { lock.unlock() }
        if let cached { return cached }
        let dir = try TempDir("corpus")
        let source = dir.sub("src")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        var style = TreeGenerator.Style()
        style.files = 12
        style.directories = 5
        style.maxFileSize = 3000
        style.deepChain = 10
        style.longSymlink = false
        style.bmpOnly = true
        var generator = TreeGenerator(seed: 99, style: style)
        try generator.populate(source)
        var result: [Image] = []
        func make(_ name: String, _ tool: String, _ arguments: [String]) throws {
            let image = dir.sub(name)
            try Tool.run(tool, arguments + ["-o", image, source])
            result.append(Image(name: name, bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: image)))))
        }
        try make("xorriso-rr-joliet.iso", "xorriso", ["-as", "mkisofs", "-quiet", "-R", "-J", "-joliet-long"])
        try make("genisoimage-rr.iso", "genisoimage", ["-quiet", "-R"])
        try make("genisoimage-joliet.iso", "genisoimage", ["-quiet", "-J"])
        try make("genisoimage-udf.iso", "genisoimage", ["-quiet", "-udf"])
        let udfOnly = dir.sub("udf-only.udf")
        try UDFOnly.stripISO9660(from: dir.sub("genisoimage-udf.iso"), to: udfOnly)
        result.append(Image(name: "udf-only.udf", bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: udfOnly)))))
        let vat = dir.sub("vat.udf")
        try Tool.run("truncate", ["-s", "2M", vat])
        try Tool.run("mkudffs", ["--media-type=dvdr", "--blocksize=2048", "--udfrev=2.50", vat])
        try UDFOnly.trimToLastWrittenSector(vat)
        result.append(Image(name: "mkudffs-vat.udf", bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: vat)))))
        for (name, metadata) in [("built-udf250.udf", true), ("built-udf-fe.udf", false)] {
            var builder = UDFImageBuilder()
            builder.metadataPartition = metadata
            builder.extendedEntries = metadata
            try builder.build(from: source, to: dir.sub(name))
            result.append(Image(name: name, bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.sub(name))))))
        }
        cached = result
        return result
    }

    /// Sectors worth mutating: volume descriptors and directories (ISO images made by genisoimage
    /// and xorriso put them before the file data), or the whole UDF volume structure and partition.
    static func metadataSectors(_ image: Image) -> Range<Int> {
        let sectors = image.bytes.count / 2048
        return 16..<min(sectors, image.name.hasSuffix(".udf") || image.name.contains("udf") ? 420 : 80)
    }
}

/// Walks a whole volume through the public API, bounded, counting what it did.
struct BoundedWalk {
    var nodes = 0
    var bytesRead = 0
    var errors = 0

    mutating func walk(_ volume: Volume, readLimit: Int = 4096) {
        var queue: [NodeID] = [Volume.rootID]
        var seen: Set<NodeID> = []
        while let id = queue.popLast() {
            guard seen.insert(id).inserted else { continue }
            nodes += 1
            guard let attributes = try? volume.attributes(of: id) else { errors += 1; continue }
            switch attributes.kind {
            case .directory:
                do {
                    let children = try volume.children(of: id)
                    for child in children.prefix(5000) {
                        _ = try? volume.lookup(child.name, in: id)
                        queue.append(child.id)
                    }
                } catch { errors += 1 }
            case .regularFile:
                _ = try? volume.extents(of: id)
                if let head = try? volume.read(id, at: 0, count: readLimit) { bytesRead += head.count } else { errors += 1 }
                if attributes.size > UInt64(readLimit), let tail = try? volume.read(id, at: attributes.size - UInt64(readLimit), count: readLimit) {
                    bytesRead += tail.count
                }
            default:
                break
            }
        }
    }
}
