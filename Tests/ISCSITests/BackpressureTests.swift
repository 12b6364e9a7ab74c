import TestSupport
import Foundation
import SCSI
import XCTest
@testable import ISCSI

/// Initiators that send and never read: what the server holds for them stays bounded, and a
/// connection whose last response cannot be delivered still ends.
final class BackpressureTests: XCTestCase {
    static let target = "iqn.2026-11.io.vmediafs:backpressure"
    static let host = "iqn.2026-11.test:reader"
    var provider: TestProvider!
    var server: ISCSIServer!
    var drive: OpticalDrive!

    override func setUpWithError() throws {
        provider = TestProvider()
        drive = makeDrive(bytes: 64 << 20)
        provider.add(Self.target, allowed: [Self.host], drives: [0: drive])
        var limits = ServerLimits(maxConnections: 50)
        limits.pingInterval = .seconds(1)
        server = ISCSIServer(provider: provider, host: "127.0.0.1", port: 0, eventLoops: 1, limits: limits)
        try server.start()
    }

    override func tearDown() { server.stop() }

    func loggedIn(maxRecv: Int = 8192) throws -> MiniInitiator {
        let i = try XCTUnwrap(MiniInitiator(port: server.boundPort, timeoutSeconds: 20))
        i.maxRecv = maxRecv
        XCTAssertEqual(i.login(initiator: Self.host, target: Self.target), 0)
        _ = i.command([0x00])
        return i
    }

    /// The most the server buffers for its connections over `seconds` (polled: a bound, not a time).
    func peakBuffered(over seconds: Double, stopAbove limit: Int) -> Int {
        var peak = 0
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline && peak <= limit {
            peak = max(peak, server.bufferedOutboundBytes)
            usleep(20_000)
        }
        return peak
    }

    /// A healthy second session is served while the other one is stuck.
    func assertServing(file: StaticString = #filePath, line: UInt = #line) throws {
        let i = try loggedIn()
        let data = try XCTUnwrap(i.read(lba: 5, blocks: 1), file: file, line: line)
        XCTAssertEqual(data, (0..<2048).map { PatternSource.byte(UInt64(5 * 2048 + $0)) }, file: file, line: line)
        XCTAssertTrue(i.logout(), file: file, line: line)
    }

    /// A window of 1 MiB READs and no reading: before, every one was answered into the
    /// connection's buffer (tens of MiB); now the next command waits until the data drains.
    func testReadsNobodyReadsAreNotBuffered() throws {
        let i = try loggedIn()
        i.limitSends(seconds: 2)
        let reads = (0..<64).flatMap { _ in
            i.wireBytes(i.commandPDU([0x28, 0, 0, 0, 0, 0, 0, 0x02, 0x00, 0], expected: 1 << 20, reads: true))
        }
        XCTAssertTrue(i.trySendRaw(reads))
        let peak = peakBuffered(over: 3, stopAbove: 8 << 20)
        print("64 unread 1 MiB READs: the server buffered at most \(peak) bytes")
        XCTAssertLessThan(peak, 4 << 20)
        try assertServing()
    }

    /// NOP-Out pings with 64 KiB each, never reading the echoes: before, the server kept reading
    /// and buffered every echo; now it stops reading while it cannot write.
    func testPingFloodIsNotBuffered() throws {
        let i = try loggedIn(maxRecv: 262_144)
        i.limitSends(seconds: 2)
        let ping = [UInt8](repeating: 0x5A, count: 65_536)
        var sent = 0, peak = 0
        while sent < 1000, peak <= 8 << 20, i.trySendRaw(i.wireBytes(i.pingPDU(data: ping))) {
            sent += 1
            peak = max(peak, server.bufferedOutboundBytes)
        }
        print("\(sent) unread 64 KiB pings: the server buffered at most \(peak) bytes")
        XCTAssertLessThan(sent, 1000, "the server stopped reading")
        XCTAssertLessThan(peak, 4 << 20)
        try assertServing()
    }

    /// Logout behind a 32 MiB READ nobody reads: the Logout Response can never be written.
    /// Before, the connection then stayed open for good (no ping once logging out, the close
    /// waited for that write), holding its lock; now it is closed anyway.
    func testLogoutBehindUnreadDataStillCloses() throws {
        let i = try loggedIn()
        XCTAssertEqual(i.command([0x1E, 0, 0, 0, 1, 0])?.status, 0)  // PREVENT
        XCTAssertTrue(drive.state.locked)
        i.limitSends(seconds: 2)
        i.send(i.commandPDU([0x28, 0, 0, 0, 0, 0, 0, 0x40, 0x00, 0], expected: 32 << 20, reads: true))
        XCTAssertTrue(waitUntil(20) { self.server.bufferedOutboundBytes > 0 }, "the server is stuck writing")
        var logout = ISCSIPDU(opcode: .logoutRequest, immediate: true, flags: 0x80)
        logout.initiatorTaskTag = i.itt
        logout.setU32(i.cmdSN, at: 24)
        i.send(logout)
        XCTAssertTrue(waitUntil(30) { self.server.counts.connections == 0 }, "hang guard")
        XCTAssertTrue(waitUntil(10) { !self.drive.state.locked })
        try assertServing()
    }
}
