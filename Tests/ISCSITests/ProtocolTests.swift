import TestSupport
import Foundation
import SCSI
import XCTest
@testable import ISCSI

/// The target driven by the tests' own minimal initiator: login, CHAP, discovery, commands,
/// lock and media-change semantics across sessions.
final class ProtocolTests: XCTestCase {
    static let target = "iqn.2026-11.io.vmediafs:aix01"
    static let other = "iqn.2026-11.io.vmediafs:hidden"
    static let host = "iqn.1994-05.com.redhat:host1"
    var provider: TestProvider!
    var server: ISCSIServer!
    var drive: OpticalDrive!

    override func setUp() {
        provider = TestProvider()
        drive = makeDrive()
        provider.add(Self.target, allowed: [Self.host], drives: [0: drive])
        provider.add(Self.other, allowed: ["iqn.someone.else"], drives: [0: makeDrive()])
        provider.add("iqn.2026-11.io.vmediafs:chap", allowed: [Self.host],
                     policy: .chap(user: "alice", secret: "twelve-chars-secret"), drives: [1: makeDrive()])
        server = ISCSIServer(provider: provider, port: 0)
        XCTAssertNoThrow(try server.start())
    }

    override func tearDown() {
        server.stop()
    }

    func connect() -> MiniInitiator { MiniInitiator(port: server.boundPort)! }

    func loggedIn(_ target: String = ProtocolTests.target) -> MiniInitiator {
        let i = connect()
        XCTAssertEqual(i.login(initiator: Self.host, target: target), 0)
        return i
    }

    func testPortTakenIsAClearError() {
        let second = ISCSIServer(provider: provider, port: server.boundPort)
        XCTAssertThrowsError(try second.start()) { XCTAssertTrue("\($0)".contains("cannot listen on 127.0.0.1:")) }
        second.stop()
    }

    func testDiscoveryListsOnlyAllowedTargets() {
        let i = connect()
        XCTAssertEqual(i.login(initiator: Self.host, target: nil), 0)
        let answer = i.text([("SendTargets", "All")])!
        XCTAssertEqual(answer.filter { $0.key == "TargetName" }.map(\.value).sorted(),
                       ["iqn.2026-11.io.vmediafs:aix01", "iqn.2026-11.io.vmediafs:chap"])
        XCTAssertEqual(answer.first { $0.key == "TargetAddress" }?.value, "127.0.0.1:\(server.boundPort),1")
        XCTAssertNil(i.command([0x00]))  // SCSI in a discovery session: rejected, no response
        XCTAssertTrue(i.logout())
    }

    func testLoginRefusals() {
        XCTAssertEqual(connect().login(initiator: "iqn.not.allowed", target: Self.target), 0x0202)
        XCTAssertEqual(connect().login(initiator: Self.host, target: "iqn.no.such.target"), 0x0202)
        XCTAssertEqual(connect().login(initiator: Self.host, target: Self.other), 0x0202)
        let chapTarget = "iqn.2026-11.io.vmediafs:chap"
        XCTAssertEqual(connect().login(initiator: Self.host, target: chapTarget), 0x0201)  // no CHAP offered
        XCTAssertEqual(connect().login(initiator: Self.host, target: chapTarget, chap: ("alice", "wrong-secret-xx")), 0x0201)
        XCTAssertEqual(connect().login(initiator: Self.host, target: chapTarget, chap: ("mallory", "twelve-chars-secret")), 0x0201)
        let ok = connect()
        XCTAssertEqual(ok.login(initiator: Self.host, target: chapTarget, chap: ("alice", "twelve-chars-secret")), 0)
        XCTAssertEqual(ok.command([0x00], lun: 1)?.status, 2)  // power-on unit attention first
        XCTAssertEqual(ok.command([0x00], lun: 1)?.status, 0)
    }

    func testReadIsByteExactAcrossManyDataInPDUs() throws {
        let i = connect()
        i.maxRecv = 4096
        XCTAssertEqual(i.login(initiator: Self.host, target: Self.target), 0)
        _ = i.command([0x00])  // consume 06/29/00
        // READ(10) of 300 blocks at LBA 10: 600 KiB in 4 KiB Data-In PDUs, status in the last.
        let r = try XCTUnwrap(i.command([0x28, 0, 0, 0, 0, 10, 0, 0x01, 0x2C, 0], expected: 300 * 2048))
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.dataPDUs, 150)
        XCTAssertEqual(r.data.count, 300 * 2048)
        XCTAssertTrue(r.data.enumerated().allSatisfy { $0.element == PatternSource.byte(UInt64(10 * 2048 + $0.offset)) })
        // Underflow: the initiator expects more than the command returns.
        let inq = try XCTUnwrap(i.command([0x12, 0, 0, 0, 36, 0], expected: 100))
        XCTAssertEqual(inq.data.count, 36)
        XCTAssertEqual(inq.residualFlags, 0x02)
        XCTAssertEqual(inq.residual, 64)
        XCTAssertEqual(inq.data[0], 0x05)  // MMC device
        // Overflow: a READ of 2 blocks with room for one.
        let over = try XCTUnwrap(i.command([0x28, 0, 0, 0, 0, 0, 0, 0, 2, 0], expected: 2048))
        XCTAssertEqual(over.data.count, 2048)
        XCTAssertEqual(over.residualFlags, 0x04)
        XCTAssertEqual(over.residual, 2048)
    }

    func testUnknownLUNAndReportLUNs() throws {
        let i = loggedIn()
        let bad = try XCTUnwrap(i.command([0x00], lun: 7))
        XCTAssertEqual(bad.status, 2)
        XCTAssertEqual(senseTriple(bad.sense), [5, 0x25, 0])
        let inq = try XCTUnwrap(i.command([0x12, 0, 0, 0, 36, 0], lun: 7, expected: 36))
        XCTAssertEqual(inq.data.first, 0x7F)
        let luns = try XCTUnwrap(i.command([0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0], lun: 7, expected: 64))
        XCTAssertEqual(luns.data, [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    func testModeSelectParameterListArrivesThroughR2T() throws {
        let i = loggedIn()
        _ = i.command([0x00])
        // MODE SELECT(10) with the Control page (0Ah) setting D_SENSE: 8-byte header + 12-byte page,
        // 4 bytes as immediate data, the rest on R2T.
        var list: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0]
        list += [0x0A, 0x0A, 0x04, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0]
        let r = try XCTUnwrap(i.command([0x55, 0x10, 0, 0, 0, 0, 0, 0, UInt8(list.count), 0], dataOut: list, immediate: 4))
        XCTAssertEqual(r.status, 0, "sense \(r.sense)")
        // Descriptor-format sense now (72h) for a bad opcode.
        let bad = try XCTUnwrap(i.command([0xFF]))
        XCTAssertEqual(bad.sense.first, 0x72)
        // A WRITE(10) is refused as write protected (its data collected first).
        let w = try XCTUnwrap(i.command([0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0], dataOut: [UInt8](repeating: 1, count: 2048)))
        XCTAssertEqual(w.status, 2)
    }

    func testPreventLocksAgainstGuestAndHostAndDroppedConnectionReleases() throws {
        let i = loggedIn()
        XCTAssertEqual(i.command([0x00])?.status, 2)  // 06/29/00
        XCTAssertEqual(i.command([0x1E, 0, 0, 0, 1, 0])?.status, 0)  // PREVENT
        XCTAssertTrue(drive.state.locked)
        let eject = try XCTUnwrap(i.command([0x1B, 0, 0, 0, 0x02, 0]))  // START STOP LoEj=1 Start=0
        XCTAssertEqual(senseTriple(eject.sense), [5, 0x53, 0x02])
        XCTAssertThrowsError(try drive.eject()) { XCTAssertEqual($0 as? HostError, .removalPrevented) }
        XCTAssertTrue(drive.state.ejectPending)
        // GET EVENT STATUS NOTIFICATION reports the eject request.
        let gesn = try XCTUnwrap(i.command([0x4A, 0x01, 0, 0, 0x10, 0, 0, 0, 8, 0], expected: 8))
        XCTAssertEqual(gesn.data[4] & 0x0F, 1)
        // The connection drops: the lock goes with it and the pending eject completes.
        i.close()
        XCTAssertTrue(waitUntil { !self.drive.state.mediumPresent })
        XCTAssertFalse(drive.state.locked)
        XCTAssertEqual(drive.state.initiators, [])
    }

    func testHostInsertReachesGuestAsUnitAttention() throws {
        let i = loggedIn()
        XCTAssertEqual(i.command([0x00])?.status, 2)
        XCTAssertEqual(i.command([0x00])?.status, 0)
        try drive.eject()
        XCTAssertEqual(senseTriple(try XCTUnwrap(i.command([0x00])).sense), [2, 0x3A, 0x02])
        try drive.insert(Medium(source: PatternSource(bytes: 4 << 20)))
        XCTAssertEqual(senseTriple(try XCTUnwrap(i.command([0x00])).sense), [6, 0x28, 0x00])
        XCTAssertEqual(i.command([0x00])?.status, 0)
        // The guest ejects for real.
        XCTAssertEqual(i.command([0x1B, 0, 0, 0, 0x02, 0])?.status, 0)
        XCTAssertFalse(drive.state.mediumPresent)
    }

    func testSessionsAreReportedAndLogoutDetaches() {
        let a = loggedIn(), b = loggedIn()
        _ = a.command([0x00]); _ = b.command([0x00])
        XCTAssertTrue(waitUntil { self.provider.sessions.withLock { $0[Self.target] } == [Self.host] })
        XCTAssertEqual(drive.state.initiators.count, 2)
        XCTAssertEqual(a.command([0x1E, 0, 0, 0, 1, 0])?.status, 0)
        XCTAssertTrue(a.logout())
        XCTAssertTrue(waitUntil { self.drive.state.initiators.count == 1 && !self.drive.state.locked })
        XCTAssertTrue(b.logout())
        XCTAssertTrue(waitUntil { self.provider.sessions.withLock { $0[Self.target] } == [] })
    }

    func testDigestsNopAndTaskManagement() throws {
        let i = connect()
        XCTAssertEqual(i.login(initiator: Self.host, target: Self.target,
                               operational: [("HeaderDigest", "CRC32C"), ("DataDigest", "CRC32C")]), 0)
        XCTAssertTrue(i.digests.header && i.digests.data)
        _ = i.command([0x00])
        let r = try XCTUnwrap(i.command([0x28, 0, 0, 0, 0, 1, 0, 0, 4, 0], expected: 4 * 2048))
        XCTAssertEqual(r.data.count, 8192)
        XCTAssertEqual(r.data[0], PatternSource.byte(2048))
        var nop = ISCSIPDU(opcode: .nopOut, immediate: true, flags: 0x80)
        nop.initiatorTaskTag = 99
        nop.setU32(ISCSIPDU.reservedTag, at: 20)
        nop.setU32(i.cmdSN, at: 24)
        nop.data = [1, 2, 3]
        i.send(nop)
        let pong = try XCTUnwrap(i.receive())
        XCTAssertEqual(pong.opcode, .nopIn)
        XCTAssertEqual(pong.data, [1, 2, 3])
        XCTAssertEqual(pong.initiatorTaskTag, 99)
        var tmf = ISCSIPDU(opcode: .taskManagementRequest, immediate: true, flags: 0x80 | 5)  // LUN RESET
        tmf.initiatorTaskTag = 100
        tmf.setU32(ISCSIPDU.reservedTag, at: 20)
        tmf.setU32(i.cmdSN, at: 24)
        i.send(tmf)
        let answer = try XCTUnwrap(i.receive())
        XCTAssertEqual(answer.opcode, .taskManagementResponse)
        XCTAssertEqual(answer.bhs[2], 0)
        XCTAssertEqual(senseTriple(try XCTUnwrap(i.command([0x00])).sense), [6, 0x29, 0x00])
        var unknown = ISCSIPDU(opcode: .nopOut)
        unknown.bhs[0] = 0x1C  // not an initiator opcode
        i.send(unknown)
        XCTAssertEqual(i.receive()?.opcode, .reject)
    }
}

/// Polls `condition` for up to `seconds`.
func waitUntil(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}
