import Foundation
import VirtualMedia
import XCTest
@testable import Redfish

final class UsersTests: XCTestCase {
    func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }

    /// RFC 7914 section 11's PBKDF2-HMAC-SHA256 vectors (the first 32 bytes of each).
    func testPBKDF2MatchesRFC7914() {
        XCTAssertEqual(hex(RedfishUsers.pbkdf2(Array("passwd".utf8), salt: Array("salt".utf8), iterations: 1)),
                       "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc")
        XCTAssertEqual(hex(RedfishUsers.pbkdf2(Array("Password".utf8), salt: Array("NaCl".utf8), iterations: 80000)),
                       "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56")
    }

    func testUsersFileIsPrivateAndPasswordsAreChecked() throws {
        let dir = NSTemporaryDirectory() + "vmfs-rf-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let salt = Array("0123456789abcdef".utf8)
        let line = "admin 0 pbkdf2-sha256$1000$\(hex(salt))$\(hex(RedfishUsers.pbkdf2(Array("s3cret".utf8), salt: salt, iterations: 1000)))\n"
        let file = dir + "/users"
        try ("# NAME UID HASH\n" + line + "op 1234 " + line.split(separator: " ")[2]).write(toFile: file, atomically: false, encoding: .utf8)
        chmod(file, 0o640)
        XCTAssertThrowsError(try RedfishUsers(file: file)) { XCTAssertEqual(($0 as? VMError)?.errno, EPERM) }
        chmod(file, 0o600)
        let users = try RedfishUsers(file: file)
        XCTAssertEqual(users.authenticate("admin", "s3cret")?.uid, 0)
        XCTAssertEqual(users.authenticate("admin", "s3cret")?.agent, "redfish:admin")
        XCTAssertEqual(users.authenticate("op", "s3cret")?.uid, 1234)
        XCTAssertNil(users.authenticate("admin", "wrong"))
        XCTAssertNil(users.authenticate("nobody", "s3cret"))
        try "admin 0 plain-password\n".write(toFile: file, atomically: false, encoding: .utf8)
        XCTAssertThrowsError(try RedfishUsers(file: file)) { XCTAssertEqual(($0 as? VMError)?.errno, EINVAL) }
    }

    func testErrnosBecomeBaseMessages() {
        XCTAssertEqual(RedfishService.error(for: VMError(EBUSY, "x")).status.code, 409)
        XCTAssertEqual(RedfishService.error(for: VMError(EACCES, "x")).status.code, 403)
        XCTAssertEqual(RedfishService.error(for: VMError(EPERM, "x")).status.code, 403)
        XCTAssertEqual(RedfishService.error(for: VMError(ENOENT, "x")).status.code, 400)
        XCTAssertEqual(RedfishService.error(for: VMError(EIO, "x")).status.code, 500)
    }
}
