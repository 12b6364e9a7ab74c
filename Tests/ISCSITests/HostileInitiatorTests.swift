import TestSupport
import Foundation
import ISCSI
import XCTest

/// Malformed headers against `iscsi-demo` as a separate process: a fault that traps ends the
/// child (which the test sees) instead of the test run, and the server must keep serving.
final class HostileInitiatorTests: XCTestCase {
    static let host = "iqn.2026-11.test:hostile"
    var demo: DemoServer!

    override func setUpWithError() throws { demo = try DemoServer() }
    override func tearDown() { demo?.stop() }

    func loggedIn() throws -> MiniInitiator {
        let i = try XCTUnwrap(MiniInitiator(port: demo.port, timeoutSeconds: 20))
        XCTAssertEqual(i.login(initiator: Self.host, target: DemoServer.target), 0)
        _ = i.command([0x00])  // the power-on unit attention
        return i
    }

    /// The server process is alive and a fresh session reads the right bytes.
    func assertServing(file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertTrue(demo.isRunning, "iscsi-demo ended", file: file, line: line)
        let i = try loggedIn()
        let data = try XCTUnwrap(i.read(lba: 3, blocks: 2), file: file, line: line)
        XCTAssertEqual(data, (0..<4096).map { PatternSource.byte(UInt64(3 * 2048 + $0)) }, file: file, line: line)
    }

    /// An Extended CDB AHS whose AHSLength is 0 (it must count at least the reserved byte).
    /// Before: `ahs[4..<3]` trapped and the whole daemon ended.
    func testExtendedCDBWithZeroLengthIsRefusedNotFatal() throws {
        let i = try loggedIn()
        var p = i.commandPDU([0x00], expected: 0, reads: false)
        p.ahs = [0x00, 0x00, 0x01, 0x00]
        i.send(p)
        i.limitReceives(seconds: 10)
        _ = i.receive()  // a response or a close; either way the process must live on
        usleep(100_000)
        try assertServing()
    }

    /// An Extended CDB AHS that claims more bytes than the AHS holds, and one of odd type.
    func testExtendedCDBLongerThanItsAHSAndOtherAHSTypes() throws {
        for ahs: [UInt8] in [[0x00, 0xFF, 0x01, 0x00, 1, 2, 3, 4], [0xFF, 0xFF, 0x02, 0x00], [0x00, 0x01, 0x01, 0x00]] {
            let i = try loggedIn()
            var p = i.commandPDU([0x12, 0, 0, 0, 36, 0], expected: 36, reads: true)
            p.ahs = ahs
            i.send(p)
            i.limitReceives(seconds: 10)
            _ = i.receive()
        }
        try assertServing()
    }
}
