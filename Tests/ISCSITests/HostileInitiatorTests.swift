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

/// Memory a session's queued commands may hold, measured on the `iscsi-demo` process.
final class QueuedDataTests: XCTestCase {
    var demo: DemoServer!

    override func setUpWithError() throws { demo = try DemoServer() }
    override func tearDown() { demo?.stop() }

    func loggedIn() throws -> MiniInitiator {
        let i = try XCTUnwrap(MiniInitiator(port: demo.port, timeoutSeconds: 20))
        XCTAssertEqual(i.login(initiator: HostileInitiatorTests.host, target: DemoServer.target), 0)
        _ = i.command([0x00])
        return i
    }

    /// WRITE(10) of 512 blocks (1 MiB), with `immediate` bytes of immediate data.
    func write(_ i: MiniInitiator, immediate: Int = 0) -> [UInt8] {
        var p = i.commandPDU([0x2A, 0, 0, 0, 0, 0, 0, 0x02, 0x00, 0], expected: 1 << 20, reads: false, writes: true)
        p.data = [UInt8](repeating: 0xEE, count: immediate)
        return i.wireBytes(p)
    }

    /// A full window (64) of 1 MiB write-direction commands and no data: before, each had its
    /// whole 1 MiB buffer allocated when it was queued, 64 MiB for 3 KiB sent.
    func testQueuedWritesHoldNoBufferBeforeTheirData() throws {
        let i = try loggedIn()
        XCTAssertTrue(i.roundTrip())
        let before = demo.rssKiB
        XCTAssertTrue(i.trySendRaw((0..<64).flatMap { _ in write(i) }))
        XCTAssertTrue(i.roundTrip(), "all 64 handled before the ping's answer")
        let growth = demo.rssKiB - before
        print("64 queued 1 MiB writes: iscsi-demo VmRSS \(before) -> \(before + growth) KiB")
        XCTAssertLessThan(growth, 16 * 1024)
        XCTAssertTrue(demo.isRunning)
    }

    /// Behind a command waiting for its data, commands with immediate data are queued up to
    /// 1 MiB of it; the ones past that are answered BUSY at once, and the session lives on.
    func testImmediateDataPastTheQueueBudgetIsAnsweredBusy() throws {
        let i = try loggedIn()
        var bytes = write(i)  // waits for its 1 MiB (R2T): everything behind it queues
        for _ in 0..<20 { bytes += write(i, immediate: 65_536) }
        XCTAssertTrue(i.trySendRaw(bytes))
        var busy = 0, r2t = 0
        let ping = i.pingPDU()
        i.send(ping)
        while let r = i.receive(), !(r.opcode == .nopIn && r.initiatorTaskTag == ping.initiatorTaskTag) {
            if r.opcode == .scsiResponse && r.bhs[3] == 0x08 { busy += 1 }
            if r.opcode == .readyToTransfer { r2t += 1 }
        }
        XCTAssertEqual(r2t, 1, "only the first command is asked for its data")
        XCTAssertEqual(busy, 4, "16 x 64 KiB fit in the 1 MiB budget")
    }

    /// Data-Out at an offset other than the next one (DataPDUInOrder=Yes) closes the connection,
    /// and so does unsolicited Data-Out (InitialR2T=Yes).
    func testOutOfOrderAndUnsolicitedDataOutClose() throws {
        for unsolicited in [false, true] {
            let i = try loggedIn()
            let cmd = i.commandPDU([0x55, 0x10, 0, 0, 0, 0, 0, 0, 20, 0], expected: 20, reads: false, writes: true)
            i.send(cmd)
            let r2t = try XCTUnwrap(i.receive())
            XCTAssertEqual(r2t.opcode, .readyToTransfer)
            var out = ISCSIPDU(opcode: .dataOut, flags: 0x80)
            out.initiatorTaskTag = cmd.initiatorTaskTag
            out.setU32(unsolicited ? ISCSIPDU.reservedTag : r2t.u32(at: 20), at: 20)
            out.setU32(unsolicited ? 0 : 8, at: 40)
            out.data = [UInt8](repeating: 0, count: 12)
            i.send(out)
            i.limitReceives(seconds: 20)
            XCTAssertTrue(i.waitForClose())
        }
        XCTAssertNotNil(try loggedIn().read(lba: 0, blocks: 1))
    }
}
