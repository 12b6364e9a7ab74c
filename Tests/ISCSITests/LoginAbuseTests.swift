import TestSupport
import Foundation
import ISCSI
import XCTest

/// Logins that must not get in, against `iscsi-demo --initiator GOOD --chap alice:SECRET`:
/// each is refused with a status of class 2 (initiator error, RFC 7143 11.13.5) and its
/// connection closed, while a logged-in session keeps reading.
final class LoginAbuseTests: XCTestCase {
    static let good = "iqn.2026-11.test:allowed"
    static let secret = "alices-secret-12"
    var demo: DemoServer!
    var bystander: MiniInitiator!

    override func setUpWithError() throws {
        demo = try DemoServer(["--initiator", Self.good, "--chap", "alice:\(Self.secret)"])
        bystander = try XCTUnwrap(MiniInitiator(port: demo.port, timeoutSeconds: 20))
        XCTAssertEqual(bystander.login(initiator: Self.good, target: DemoServer.target, chap: ("alice", Self.secret)), 0)
        _ = bystander.command([0x00])
    }

    override func tearDown() { demo?.stop() }

    func connect() throws -> MiniInitiator {
        let i = try XCTUnwrap(MiniInitiator(port: demo.port, timeoutSeconds: 20))
        return i
    }

    /// `status` came back and the server then closed the connection; the bystander still reads.
    func assertRefused(_ i: MiniInitiator, _ status: UInt16?, _ expected: UInt16,
                       file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(status, expected, file: file, line: line)
        XCTAssertEqual(status.map { $0 >> 8 }, 2, "status class: initiator error", file: file, line: line)
        XCTAssertTrue(i.waitForClose(), "closed after the refusal", file: file, line: line)
        XCTAssertEqual(bystander.read(lba: 7, blocks: 1)?.first, PatternSource.byte(7 * 2048), file: file, line: line)
    }

    /// The first step of a CHAP login up to the challenge; returns CHAP_I and CHAP_C.
    func challenge(_ i: MiniInitiator, initiator: String = LoginAbuseTests.good) -> (UInt8, [UInt8])? {
        guard let r = i.loginRequest(csg: 0, nsg: 1, transit: false,
                                     [("InitiatorName", initiator), ("SessionType", "Normal"),
                                      ("TargetName", DemoServer.target), ("AuthMethod", "CHAP")]),
              MiniInitiator.status(r) == 0,
              let c = i.loginRequest(csg: 0, nsg: 1, transit: false, [("CHAP_A", "5")]) else { return nil }
        let k = MiniInitiator.keys(c)
        guard let id = k["CHAP_I"].flatMap({ UInt8($0) }), let ch = k["CHAP_C"].flatMap(CHAP.decodeBinary) else { return nil }
        return (id, ch)
    }

    /// Answers a challenge with these keys; the status of the answer.
    func answer(_ i: MiniInitiator, _ keys: [(key: String, value: String)]) -> UInt16? {
        i.loginRequest(csg: 0, nsg: 1, transit: true, keys).map(MiniInitiator.status)
    }

    func testWrongSecretWrongUserAndNoCHAP() throws {
        var i = try connect()
        assertRefused(i, i.login(initiator: Self.good, target: DemoServer.target, chap: ("alice", "not-the-secret")), 0x0201)
        i = try connect()
        assertRefused(i, i.login(initiator: Self.good, target: DemoServer.target, chap: ("mallory", Self.secret)), 0x0201)
        i = try connect()
        assertRefused(i, i.login(initiator: Self.good, target: DemoServer.target), 0x0201)  // AuthMethod=None only
    }

    func testInitiatorNotAllowedAndWrongTargetEvenWithTheRightSecret() throws {
        var i = try connect()
        assertRefused(i, i.login(initiator: "iqn.2026-11.test:stranger", target: DemoServer.target,
                                 chap: ("alice", Self.secret)), 0x0202)
        i = try connect()
        assertRefused(i, i.login(initiator: Self.good, target: "iqn.2026-11.io.vmediafs:nosuch",
                                 chap: ("alice", Self.secret)), 0x0202)
        i = try connect()  // no TargetName at all in a normal session
        assertRefused(i, i.loginRequest(csg: 0, nsg: 1, transit: false, [("InitiatorName", Self.good)]).map(MiniInitiator.status), 0x0207)
    }

    /// Malformed and mutual CHAP answers, and skipping the security stage.
    func testMalformedCHAPAnswersAndSkippingSecurity() throws {
        for bad: [(key: String, value: String)] in [
            [("CHAP_N", "alice"), ("CHAP_R", "0x")],
            [("CHAP_N", "alice"), ("CHAP_R", "0bZZ!!")],
            [("CHAP_N", "alice"), ("CHAP_R", "0x" + String(repeating: "ab", count: 3000))],
            [("CHAP_N", "alice")],
            [("CHAP_N", "alice"), ("CHAP_R", "0x00"), ("CHAP_I", "1"), ("CHAP_C", "0x0102")],
        ] {
            let i = try connect()
            XCTAssertNotNil(challenge(i))
            assertRefused(i, answer(i, bad), 0x0201)
        }
        // A right answer for the wrong identifier.
        let i = try connect()
        let (id, ch) = try XCTUnwrap(challenge(i))
        let r = CHAP.response(identifier: id &+ 1, secret: Array(Self.secret.utf8), challenge: ch)
        assertRefused(i, answer(i, [("CHAP_N", "alice"), ("CHAP_R", CHAP.hex(r))]), 0x0201)
        // An algorithm other than MD5.
        let sha = try connect()
        _ = sha.loginRequest(csg: 0, nsg: 1, transit: false, [("InitiatorName", Self.good), ("SessionType", "Normal"),
                                                              ("TargetName", DemoServer.target), ("AuthMethod", "CHAP")])
        assertRefused(sha, sha.loginRequest(csg: 0, nsg: 1, transit: false, [("CHAP_A", "7")]).map(MiniInitiator.status), 0x0201)
        // Straight to the operational stage, as if no security were needed.
        let skip = try connect()
        assertRefused(skip, skip.loginRequest(csg: 1, nsg: 3, transit: true,
                                              [("InitiatorName", Self.good), ("SessionType", "Normal"),
                                               ("TargetName", DemoServer.target)]).map(MiniInitiator.status), 0x0201)
    }

    /// Hundreds of logins in a row, bad and good, and reinstatements of one session: each bad
    /// one refused, each good one let in; the server's descriptors come back to where they were.
    func testRapidRepeatedLogins() throws {
        let fdsBefore = demo.descriptors
        var refused = 0, accepted = 0
        for n in 0..<300 {
            let i = try connect()
            let status = n % 3 == 0
                ? i.login(initiator: Self.good, target: DemoServer.target, chap: ("alice", Self.secret))
                : i.login(initiator: Self.good, target: DemoServer.target, chap: ("alice", "guess-\(n)"))
            if status == 0 { accepted += 1 } else if status == 0x0201 { refused += 1 }
        }
        XCTAssertEqual(accepted, 100)
        XCTAssertEqual(refused, 200)
        // The same initiator and ISID logging in again and again: each new session replaces the last.
        let first = try connect()
        XCTAssertEqual(first.login(initiator: Self.good, target: DemoServer.target, chap: ("alice", Self.secret)), 0)
        var last = first
        for _ in 0..<50 {
            let again = try connect()
            again.reuse(isid: first.isid)
            XCTAssertEqual(again.login(initiator: Self.good, target: DemoServer.target, chap: ("alice", Self.secret)), 0)
            XCTAssertTrue(last.waitForClose(), "reinstatement closes the old session")
            last = again
        }
        _ = last.command([0x00])
        XCTAssertEqual(last.read(lba: 1, blocks: 1)?.first, PatternSource.byte(2048))
        XCTAssertEqual(bystander.read(lba: 2, blocks: 1)?.first, PatternSource.byte(2 * 2048))
        XCTAssertTrue(waitUntil(30) { self.demo.descriptors <= fdsBefore + 1 }, "fds \(fdsBefore) -> \(demo.descriptors)")
    }
}
