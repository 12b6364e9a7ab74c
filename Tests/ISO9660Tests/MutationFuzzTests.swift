import Foundation
import TestImages
import TestSupport
import XCTest
@testable import ISO9660

/// A seeded random mutator: real small images with bytes of their metadata changed, run through
/// open, a full walk and reads. Nothing may crash, hang or take unbounded time or memory.
final class MutationFuzzTests: ImageTestCase {
    /// Executions per corpus image (eight images); FUZZ_ITERATIONS overrides it for longer runs.
    static let iterationsPerImage = ProcessInfo.processInfo.environment["FUZZ_ITERATIONS"].flatMap { Int($0) } ?? 500

    func testMutatedImagesNeverCrashOrHang() throws {
        try requireTools("xorriso", "genisoimage", "mkudffs")
        let corpus = try Corpus.images()
        var random = SeededRandom(seed: ProcessInfo.processInfo.environment["FUZZ_SEED"].flatMap { UInt64($0) } ?? 0x150_9660)
        let options = OpenOptions(maxEntriesPerDirectory: 2000, maxNodes: 20_000, maxDepth: 64, maxDirectoryBytes: 1 << 20)
        var executions = 0, opened = 0, totalNodes = 0
        var openErrors: [String: Int] = [:]
        var slowest = 0.0
        let start = Date()
        for image in corpus {
            let region = Corpus.metadataSectors(image)
            for _ in 0..<Self.iterationsPerImage {
                var bytes = image.bytes
                Mutator.mutate(&bytes, region: region, random: &random)
                if bytes.count > 0 && Int.random(in: 0..<10, using: &random) == 0 {
                    bytes.removeLast(Int.random(in: 0..<bytes.count, using: &random))       // truncated image
                }
                let began = Date()
                executions += 1
                do {
                    let volume = try Volume.open(MemorySectorReader(bytes: bytes), options: options)
                    opened += 1
                    var walk = BoundedWalk()
                    walk.walk(volume)
                    totalNodes += walk.nodes
                    XCTAssertLessThanOrEqual(walk.nodes, options.maxNodes)
                } catch let error as DiscFormatError {
                    openErrors["\(error.code)", default: 0] += 1
                } catch {
                    openErrors["reader", default: 0] += 1
                }
                slowest = max(slowest, Date().timeIntervalSince(began))
            }
        }
        let elapsed = Date().timeIntervalSince(start)
        print("mutation fuzz: \(executions) executions over \(corpus.count) images in \(String(format: "%.1f", elapsed)) s; opened \(opened), walked \(totalNodes) nodes; open errors \(openErrors.sorted { $0.key < $1.key }); slowest \(String(format: "%.3f", slowest)) s")
        XCTAssertLessThan(slowest, 5, "one mutated image took too long")
    }
}

/// Byte-level mutations aimed at disc structures.
enum Mutator {
    static func mutate(_ bytes: inout [UInt8], region: Range<Int>, random: inout SeededRandom) {
        guard !region.isEmpty else { return }
        let count = Int.random(in: 1...8, using: &random)
        for _ in 0..<count {
            let sector = Int.random(in: 0..<10, using: &random) < 9 ? region.randomElement(using: &random)! : Int.random(in: 0..<(bytes.count / 2048), using: &random)
            let offset = sector * 2048 + Int.random(in: 0..<2048, using: &random)
            guard offset + 4 <= bytes.count else { continue }
            switch Int.random(in: 0..<6, using: &random) {
            case 0: bytes[offset] = UInt8.random(in: 0...255, using: &random)
            case 1: bytes[offset] ^= 1 << UInt8.random(in: 0..<8, using: &random)
            case 2: bytes[offset] = [0, 1, 0x7F, 0x80, 0xFF, 0x22, 0x30].randomElement(using: &random)!
            case 3:
                let value: UInt32 = [0, 1, 16, 17, 18, 19, 20, 0xFFFF_FFFF, 0x7FFF_FFFF, UInt32(bytes.count / 2048), UInt32(bytes.count / 2048 + 1), 256, 257]
                    .randomElement(using: &random)!
                for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
            case 4:
                let from = region.randomElement(using: &random)! * 2048 + Int.random(in: 0..<2048, using: &random)
                let length = Int.random(in: 1...64, using: &random)
                if from + length <= bytes.count && offset + length <= bytes.count {
                    bytes.replaceSubrange(offset..<(offset + length), with: bytes[from..<(from + length)])
                }
            default:
                bytes[offset] = bytes[offset] &+ UInt8.random(in: 1...3, using: &random)
            }
        }
        // Most UDF mutations would only break a checksum; re-seal descriptor tags half of the time
        // so that the mutated contents are parsed.
        if Bool.random(using: &random) { UDFTagFixer.reseal(&bytes, sectors: region) }
    }
}
