import Foundation
import XCTest
@testable import ISO9660

/// Many threads listing, looking up and reading the same volume at once see one consistent tree.
final class ConcurrencyTests: ImageTestCase {
    func testConcurrentWalksAgree() throws {
        try requireTools("xorriso")
        let dir = try TempDir("concurrent")
        var style = TreeGenerator.Style()
        style.deepChain = 6
        let source = try makeTree(dir, seed: 31, style: style)
        let image = dir.sub("c.iso")
        try Tool.run("xorriso", ["-as", "mkisofs", "-quiet", "-R", "-o", image, source])
        let volume = try open(image)
        let results = Mutex<[[String: NodeID]]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            var ids: [String: NodeID] = [:]
            func walk(_ id: NodeID, _ prefix: String) {
                guard let children = try? volume.children(of: id) else { return }
                for child in (worker % 2 == 0 ? children : children.reversed()) {
                    ids[prefix + child.name] = child.id
                    _ = try? volume.read(child.id, at: 0, count: 1000)
                    if child.kind == .directory { walk(child.id, prefix + child.name + "/") }
                }
            }
            walk(Volume.rootID, "")
            results.withLock { $0.append(ids) }
        }
        let all = results.withLock { $0 }
        XCTAssertEqual(all.count, 8)
        XCTAssertGreaterThan(all[0].count, 40)
        for other in all.dropFirst() { XCTAssertEqual(other, all[0]) }
        Snapshot.assertEqual(try Snapshot.volume(volume, permissions: true), try Snapshot.host(source, permissions: true), "after concurrent walks")
    }
}

import Synchronization
