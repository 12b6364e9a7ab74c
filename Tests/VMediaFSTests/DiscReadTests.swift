import Glibc
import SCSI
import XCTest
@testable import VMediaFS

/// The one decision the tree makes about a read of `disc`: which errno a sense code becomes.
final class DiscReadTests: XCTestCase {
    func testSenseToErrno() {
        XCTAssertEqual(errno(for: .mediumNotPresentTrayOpen), ENOMEDIUM)
        XCTAssertEqual(errno(for: .notReadyToReadyChange), ESTALE)
        XCTAssertEqual(errno(for: .writeProtected), EROFS)
        XCTAssertEqual(errno(for: .lbaOutOfRange), EINVAL)
        XCTAssertEqual(errno(for: .unrecoveredReadError), EIO)
        XCTAssertEqual(errno(for: nil), EIO)
    }
}
