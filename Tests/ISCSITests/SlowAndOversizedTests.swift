import TestSupport
import Foundation
import NIOCore
import SCSI
import XCTest
@testable import ISCSI

/// Peers that stop mid-PDU, dribble bytes, claim huge segments or flood the command window:
/// each loses its own connection (or is answered per RFC 7143), the others are served, and the
/// server holds nothing for them afterwards. Short limits keep it quick; the waits are hang
/// guards, not timings.
final class SlowAndOversizedTests: XCTestCase {
    static let target = "iqn.2026-11.io.vmediafs:slow"
    static let host = "iqn.2026-11.test:slow"
    var provider: TestProvider!
    var server: ISCSIServer!

    override func setUpWithError() throws {
        provider = TestProvider()
        provider.add(Self.target, allowed: [Self.host], drives: [0: makeDrive(bytes: 16 << 20)])
        try start(pingInterval: .milliseconds(300))
    }

    /// A server with a 500 ms login timeout; the test initiator never answers pings, so an
    /// idle session of it lasts about two `pingInterval`s.
    func start(pingInterval: TimeAmount) throws {
        var limits = ServerLimits(maxConnections: 100)
        limits.loginTimeout = .milliseconds(500)
        limits.pingInterval = pingInterval
        server = ISCSIServer(provider: provider, host: "127.0.0.1", port: 0, eventLoops: 1, limits: limits)
        try server.start()
    }

    override func tearDown() { server.stop() }

    func connect() throws -> MiniInitiator {
        let i = try XCTUnwrap(MiniInitiator(port: server.boundPort, timeoutSeconds: 20))
        i.limitSends(seconds: 5)
        return i
    }

    func loggedIn(maxRecv: Int = 8192) throws -> MiniInitiator {
        let i = try connect()
        i.maxRecv = maxRecv
        XCTAssertEqual(i.login(initiator: Self.host, target: Self.target), 0)
        _ = i.command([0x00])
        return i
    }

    /// No connection is left and a fresh session reads.
    func assertNothingHeldAndServing(file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertTrue(waitUntil(20) { self.server.counts.connections == 0 }, "connections left: \(server.counts)",
                      file: file, line: line)
        let i = try loggedIn()
        XCTAssertEqual(i.read(lba: 4, blocks: 1)?.first, PatternSource.byte(4 * 2048), file: file, line: line)
        XCTAssertTrue(i.logout(), file: file, line: line)
    }

    /// Half a header, then silence, before login: the login timeout closes it.
    func testHalfHeaderThenSilenceBeforeLoginIsClosed() throws {
        let i = try connect()
        i.sendRaw([0x43, 0x87, 0, 0, 0, 0, 0, 0x40, 0, 0])
        XCTAssertTrue(i.waitForClose())
        try assertNothingHeldAndServing()
    }

    /// Half a header, then silence, in full feature phase: pinged, then closed (its PDU never
    /// completes, so it never answers).
    func testHalfHeaderThenSilenceAfterLoginIsClosed() throws {
        let i = try loggedIn()
        i.sendRaw([0x00, 0x80, 0, 0, 0, 0, 0, 0])
        XCTAssertTrue(i.waitForClose())
        try assertNothingHeldAndServing()
    }

    /// A byte every 20 ms of a valid login: the login must end within the login timeout, so
    /// the dribbler is cut off long before its 200 bytes.
    func testByteAtATimeLoginIsCutOff() throws {
        let i = try connect()
        var login = ISCSIPDU(opcode: .loginRequest, immediate: true, flags: 0x87)
        login.data = TextKeys.encode([("InitiatorName", Self.host), ("TargetName", Self.target),
                                      ("AuthMethod", "None"), ("Padding", String(repeating: "x", count: 100))])
        var sent = 0
        for byte in i.wireBytes(login) {
            guard i.trySendRaw([byte]) else { break }
            sent += 1
            if server.counts.connections == 0 { break }
            usleep(20_000)
        }
        XCTAssertTrue(i.waitForClose())
        XCTAssertLessThan(sent, i.wireBytes(login).count, "cut off before the end")
        try assertNothingHeldAndServing()
    }

    /// Data segments claimed over the limit in force (8 KiB during login, our 256 KiB
    /// MaxRecvDataSegmentLength after) close the connection on the header alone; one of
    /// exactly 256 KiB is fine.
    func testDataSegmentsOverTheNegotiatedLimitClose() throws {
        let early = try connect()
        var login = [UInt8](repeating: 0, count: 48)
        login[0] = 0x43; login[5] = 0xFF; login[6] = 0xFF; login[7] = 0xFC  // 2^24 - 4
        early.sendRaw(login)
        XCTAssertTrue(early.waitForClose())

        let atLimit = try loggedIn(maxRecv: 262_144)
        atLimit.send(atLimit.pingPDU(data: [UInt8](repeating: 7, count: 262_144)))
        XCTAssertEqual(atLimit.receive()?.data.count, 262_144)

        for length in [262_145, 1 << 20, 0xFF_FFFF] {
            let over = try loggedIn()
            var header = over.pingPDU()
            header.bhs[5] = UInt8(length >> 16); header.bhs[6] = UInt8(length >> 8 & 0xFF); header.bhs[7] = UInt8(length & 0xFF)
            over.sendRaw(header.bhs)
            XCTAssertTrue(over.waitForClose(), "DataSegmentLength \(length)")
        }
        XCTAssertTrue(atLimit.logout())
        try assertNothingHeldAndServing()
    }

    /// The largest AHS (TotalAHSLength 255 words) of garbage on a command and a ping: parsed
    /// and ignored (not an Extended CDB), or the connection closed; never more than it holds.
    func testLargestAHSIsBounded() throws {
        let i = try loggedIn()
        var cmd = i.commandPDU([0x00], expected: 0, reads: false)
        cmd.ahs = (0..<1020).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        cmd.ahs[2] = 0x7E
        i.send(cmd)
        XCTAssertEqual(i.receive()?.opcode, .scsiResponse)
        var ping = i.pingPDU()
        ping.ahs = [UInt8](repeating: 0xAB, count: 1020)
        i.send(ping)
        XCTAssertEqual(i.receive()?.opcode, .nopIn)
        XCTAssertTrue(i.logout())
        try assertNothingHeldAndServing()
    }

    /// A command far outside the CmdSN window is ignored (RFC 7143 4.2.2.1), and the session
    /// goes on.
    func testCommandOutsideTheWindowIsIgnored() throws {
        let i = try loggedIn()
        var far = i.commandPDU([0x00], expected: 0, reads: false)
        far.setU32(i.cmdSN &+ 1000, at: 24)
        i.send(far)
        XCTAssertTrue(i.roundTrip(), "no answer to it, and the ping after it answered")
        XCTAssertEqual(i.command([0x00])?.status, 0)
        XCTAssertTrue(i.logout())
    }

    /// An initiator that keeps to the MaxCmdSN it is told, behind a command waiting for its
    /// data: the window must close (MaxCmdSN = ExpCmdSN - 1) once it is full. Before, it never
    /// shrank below one command, so such an initiator went on until the queue cap closed its
    /// connection.
    func testWindowClosesForAnInitiatorThatKeepsToIt() throws {
        let i = try loggedIn()
        i.send(i.commandPDU([0x55, 0x10, 0, 0, 0, 0, 0, 0, 20, 0], expected: 20, reads: false, writes: true))
        XCTAssertEqual(i.receive()?.opcode, .readyToTransfer)  // its data is never sent: the queue is held
        var queued = 0
        for _ in 0..<300 {
            let ping = i.pingPDU()
            i.send(ping)
            var answer = i.receive()
            while let a = answer, a.opcode == .nopIn, a.initiatorTaskTag != ping.initiatorTaskTag { answer = i.receive() }
            guard let answer, answer.opcode == .nopIn else { return XCTFail("closed after \(queued) commands") }
            let maxCmdSN = answer.u32(at: 32)
            if serialLess(maxCmdSN, i.cmdSN) { break }  // closed
            while !serialLess(maxCmdSN, i.cmdSN) {
                i.send(i.commandPDU([0x00], expected: 0, reads: false))
                queued += 1
            }
        }
        XCTAssertEqual(queued, 63, "the held command and 63 more fill the window of 64")
        XCTAssertTrue(i.roundTrip(), "the connection is still open")
    }

    /// Ten thousand commands at once, in and past the window, and a thousand immediate ones
    /// that ignore it: the queue stays bounded (those past MaxCmdSN ignored; past 4 windows of
    /// queued commands, the connection closed), and a second session is served throughout.
    func testCommandFloodsStayBounded() throws {
        server.stop()
        try start(pingInterval: .seconds(30))  // the bystander waits idle meanwhile
        let bystander = try loggedIn()
        for immediate in [false, true] {
            let i = try loggedIn()
            let count = immediate ? 1000 : 10_000
            let flood = (0..<count).flatMap { _ in
                i.wireBytes(i.commandPDU([0x00], expected: 0, reads: false, immediate: immediate))
            }
            i.trySendRaw(flood)
            var answered = 0
            i.limitReceives(seconds: 2)
            while let r = i.receive() { if r.opcode == .scsiResponse { answered += 1 } }
            print("\(count) \(immediate ? "immediate " : "")TURs at once: \(answered) answered")
            XCTAssertLessThanOrEqual(answered, count)
            if !immediate { XCTAssertGreaterThanOrEqual(answered, 64, "a full window is served") }
            XCTAssertEqual(bystander.command([0x00])?.status, 0)
        }
        XCTAssertTrue(bystander.logout())
    }
}
