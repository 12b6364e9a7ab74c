import XCTest
@testable import VMediaFS

final class InodeTableTests: XCTestCase {
    func testDiscTreeNumbersAreComputedPerGenerationAndForgottenTogether() {
        let t = InodeTable()
        let a1 = NodeKey.contents(7, generation: 1, node: 2)
        let a2 = NodeKey.contents(7, generation: 1, node: 2_000_000)
        let b1 = NodeKey.contents(7, generation: 2, node: 2)
        let other = NodeKey.contents(8, generation: 1, node: 2)
        let stored = t.count
        let inos = [a1, a2, b1, other].map { t.ino($0) }
        XCTAssertEqual(Set(inos).count, 4, "distinct numbers")
        XCTAssertEqual(t.count, stored, "nothing stored per node")
        XCTAssertEqual(t.ino(a1), inos[0], "stable")
        for (k, i) in zip([a1, a2, b1, other], inos) {
            XCTAssertEqual(t.key(i), k)
            XCTAssertEqual(t.existing(k), i)
            XCTAssertNotEqual(i & InodeTable.computedBit, 0)
        }
        XCTAssertNil(t.existing(.contents(9, generation: 1, node: 2)), "existing never hands out a number")

        t.forgetDiscTrees(drive: 7, keeping: 2)
        XCTAssertNil(t.key(inos[0]), "the old generation's numbers are gone")
        XCTAssertNil(t.key(inos[1]))
        XCTAssertEqual(t.key(inos[2]), b1, "the kept generation stays")
        XCTAssertEqual(t.key(inos[3]), other, "another drive's stays")
        XCTAssertNotEqual(t.ino(a1), inos[0], "a forgotten generation never gets its old numbers back")

        t.forgetDiscTrees(drive: 7, keeping: nil)
        XCTAssertNil(t.key(inos[2]))
        XCTAssertEqual(t.key(inos[3]), other)

        // Stored numbers and computed ones never meet.
        let d = t.ino(.drive(7))
        XCTAssertEqual(d & InodeTable.computedBit, 0)
        XCTAssertEqual(t.key(d), .drive(7))
    }
}
