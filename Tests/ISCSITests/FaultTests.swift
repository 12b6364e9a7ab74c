import TestSupport
import Foundation
import SCSI
import XCTest
@testable import ISCSI

/// Malformed, truncated and oversized PDUs, dropped connections and many connections: each
/// closes (or refuses) that connection only; the server keeps serving and leaks no descriptors.
final class FaultTests: XCTestCase {
    static let target = "iqn.2026-11.io.vmediafs:faults"
    static let host = "iqn.2026-11.test:host"
    var provider: TestProvider!
    var server: ISCSIServer!
    var drive: OpticalDrive!

    override func setUp() {
        provider = TestProvider()
        drive = makeDrive(bytes: 32 << 20)
        provider.add(Self.target, allowed: [Self.host], drives: [0: drive])
        server = ISCSIServer(provider: provider, port: 0, maxConnections: 400)
        XCTAssertNoThrow(try server.start())
    }

    override func tearDown() { server.stop() }

    func loggedIn() -> MiniInitiator {
        let i = MiniInitiator(port: server.boundPort)!
        XCTAssertEqual(i.login(initiator: Self.host, target: Self.target), 0)
        return i
    }

    /// A healthy session still works.
    func assertServing(file: StaticString = #filePath, line: UInt = #line) {
        let i = loggedIn()
        _ = i.command([0x00])
        XCTAssertEqual(i.command([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], expected: 8)?.data.count, 8, file: file, line: line)
        XCTAssertTrue(i.logout(), file: file, line: line)
    }

    func testImmediateDataAfterImmediateDataNoClosesTheConnection() {
        let i = MiniInitiator(port: server.boundPort)!
        XCTAssertEqual(i.login(initiator: Self.host, target: Self.target, operational: [("ImmediateData", "No")]), 0)
        _ = i.command([0x00])
        _ = i.command([0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0], dataOut: [UInt8](repeating: 1, count: 2048), immediate: 512)
        XCTAssertTrue(i.waitForClose(), "data the session agreed not to send is a protocol error")
        assertServing()
    }

    func testMalformedTruncatedAndOversizedPDUsCloseOnlyTheirConnection() {
        let bystander = loggedIn()
        _ = bystander.command([0x00])

        // A data segment over the negotiated limit (16 MiB - 1 claimed) in full feature phase.
        let big = loggedIn()
        var header = [UInt8](repeating: 0, count: 48)
        header[0] = 0x01; header[5] = 0xFF; header[6] = 0xFF; header[7] = 0xFF
        big.sendRaw(header)
        XCTAssertTrue(big.waitForClose())

        // Over the 8 KiB login limit before login.
        let early = MiniInitiator(port: server.boundPort)!
        var login = [UInt8](repeating: 0, count: 48)
        login[0] = 0x43; login[6] = 0x40  // 16 KiB
        early.sendRaw(login)
        XCTAssertTrue(early.waitForClose())

        // A non-login PDU before login.
        let rude = MiniInitiator(port: server.boundPort)!
        rude.sendRaw([UInt8](repeating: 0, count: 48))
        XCTAssertTrue(rude.waitForClose())

        // Garbage text keys in a login request: refused with an initiator error, then closed.
        let garbage = MiniInitiator(port: server.boundPort)!
        var p = ISCSIPDU(opcode: .loginRequest, immediate: true, flags: 0x81 | 0x04 & 0)
        p.data = [0xFF, 0xFE, 0x00, 0x41]
        garbage.send(p)
        XCTAssertEqual(garbage.receive().map(MiniInitiator.status), 0x0200)
        XCTAssertTrue(garbage.waitForClose())

        // Truncated: half a header, then the client goes away.
        let half = MiniInitiator(port: server.boundPort)!
        half.sendRaw([0x43, 0, 0, 0, 0, 0, 0, 0x10])
        half.close()

        // Random bytes in full feature phase, from a printed seed so that a failure repeats.
        let seed = UInt64.random(in: 1...UInt64.max)
        print("fault test: random PDUs from seed \(seed)")
        var rng = SeededRandom(seed: seed)
        for _ in 0..<20 {
            let fuzz = loggedIn()
            fuzz.sendRaw((0..<Int.random(in: 1...400, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
            fuzz.close()
        }

        XCTAssertEqual(bystander.command([0x00])?.status, 0)
        assertServing()
    }

    func testConnectionDroppedMidCommandReleasesItsLock() throws {
        let i = loggedIn()
        i.maxRecv = 512
        _ = i.command([0x00])
        XCTAssertEqual(i.command([0x1E, 0, 0, 0, 1, 0])?.status, 0)
        XCTAssertTrue(drive.state.locked)
        // A 16 MiB READ, and the initiator goes away without reading it.
        var read = ISCSIPDU(opcode: .scsiCommand, flags: 0xC0)
        read.initiatorTaskTag = 77
        read.setU32(16 << 20, at: 20)
        read.setU32(i.cmdSN, at: 24)
        read.bhs.replaceSubrange(32..<42, with: [0x28, 0, 0, 0, 0, 0, 0, 0x20, 0, 0])
        i.send(read)
        usleep(50_000)
        i.close()
        XCTAssertTrue(waitUntil { !self.drive.state.locked && self.drive.state.initiators.isEmpty })

        // A write-direction command waiting for its R2T data when the connection drops.
        let w = loggedIn()
        _ = w.command([0x00])
        XCTAssertEqual(w.command([0x1E, 0, 0, 0, 1, 0])?.status, 0)
        var select = ISCSIPDU(opcode: .scsiCommand, flags: 0xA0)
        select.initiatorTaskTag = 78
        select.setU32(20, at: 20)
        select.setU32(w.cmdSN, at: 24)
        select.bhs.replaceSubrange(32..<42, with: [0x55, 0x10, 0, 0, 0, 0, 0, 0, 20, 0])
        w.send(select)
        XCTAssertEqual(w.receive()?.opcode, .readyToTransfer)
        w.close()
        XCTAssertTrue(waitUntil { !self.drive.state.locked && self.drive.state.initiators.isEmpty })
        assertServing()
    }

    func testSessionReinstatementClosesTheOldSession() {
        let a = loggedIn()
        _ = a.command([0x00])
        XCTAssertEqual(a.command([0x1E, 0, 0, 0, 1, 0])?.status, 0)
        let b = MiniInitiator(port: server.boundPort)!
        let isid = a.isid
        b.reuse(isid: isid)
        XCTAssertEqual(b.login(initiator: Self.host, target: Self.target), 0)
        XCTAssertTrue(a.waitForClose())
        XCTAssertTrue(waitUntil { !self.drive.state.locked })
    }

    func testHundredsOfConnectionsAreBoundedAndLeakNothing() {
        let before = openDescriptors()
        var clients: [MiniInitiator] = []
        for n in 0..<300 {
            guard let c = MiniInitiator(port: server.boundPort) else { continue }
            if n % 3 == 0 { XCTAssertEqual(c.login(initiator: Self.host, target: Self.target), 0) }
            clients.append(c)
        }
        XCTAssertEqual(clients.count, 300)
        XCTAssertTrue(waitUntil { self.server.counts.connections == 300 })
        XCTAssertEqual(server.counts.sessions, 100)
        assertServing()
        clients.removeAll()
        XCTAssertTrue(waitUntil { self.server.counts.connections == 0 && self.server.counts.sessions == 0 })
        XCTAssertTrue(waitUntil { openDescriptors() <= before }, "descriptors \(before) -> \(openDescriptors())")
        XCTAssertEqual(drive.state.initiators, [])
        // Every connection's handler is freed (no handler <-> context cycle).
        XCTAssertTrue(waitUntil { ISCSIConnection.alive.load(ordering: .relaxed) == 0 },
                      "\(ISCSIConnection.alive.load(ordering: .relaxed)) handlers still alive")
    }

    func testConnectionLimitRefusesTheExcessAndKeepsServing() {
        server.stop()
        server = ISCSIServer(provider: provider, port: 0, maxConnections: 20)
        XCTAssertNoThrow(try server.start())
        let held = (0..<20).compactMap { _ in MiniInitiator(port: server.boundPort) }
        XCTAssertTrue(waitUntil { self.server.counts.connections == 20 })
        let extra = MiniInitiator(port: server.boundPort)!
        XCTAssertTrue(extra.waitForClose())
        withExtendedLifetime(held) {}
        _ = held.count
    }

    func testStopDetachesEveryNexus() {
        let a = loggedIn(), b = loggedIn()
        _ = a.command([0x00]); _ = b.command([0x00])
        XCTAssertEqual(a.command([0x1E, 0, 0, 0, 1, 0])?.status, 0)
        server.stop()
        XCTAssertFalse(drive.state.locked)
        XCTAssertEqual(drive.state.initiators, [])
        XCTAssertTrue(a.waitForClose())
        server = ISCSIServer(provider: provider, port: 0)
        XCTAssertNoThrow(try server.start())
    }
}

/// A silent initiator is pinged, and dropped (its lock released) when it does not answer.
final class DeadPeerTests: XCTestCase {
    func testSilentInitiatorIsPingedThenDropped() throws {
        let provider = TestProvider()
        let drive = makeDrive()
        provider.add(FaultTests.target, allowed: [FaultTests.host], drives: [0: drive])
        var limits = ServerLimits(maxConnections: 10)
        limits.pingInterval = .milliseconds(200)
        let server = ISCSIServer(provider: provider, host: "127.0.0.1", port: 0, eventLoops: 1, limits: limits)
        try server.start()
        defer { server.stop() }
        let answering = MiniInitiator(port: server.boundPort)!
        XCTAssertEqual(answering.login(initiator: FaultTests.host, target: FaultTests.target), 0)
        let silent = MiniInitiator(port: server.boundPort)!
        XCTAssertEqual(silent.login(initiator: FaultTests.host, target: FaultTests.target), 0)
        _ = silent.command([0x00])
        XCTAssertEqual(silent.command([0x1E, 0, 0, 0, 1, 0])?.status, 0)
        // The answering one replies to each ping; the silent one never reads or answers.
        let deadline = Date().addingTimeInterval(1.5)
        while Date() < deadline {
            guard let ping = answering.receive() else { break }
            XCTAssertEqual(ping.opcode, .nopIn)
            XCTAssertEqual(ping.initiatorTaskTag, ISCSIPDU.reservedTag)
            var pong = ISCSIPDU(opcode: .nopOut, immediate: true, flags: 0x80)
            pong.initiatorTaskTag = ISCSIPDU.reservedTag
            pong.setU32(ping.u32(at: 20), at: 20)
            answering.send(pong)
        }
        XCTAssertFalse(drive.state.locked)
        XCTAssertEqual(server.counts.sessions, 1)
        XCTAssertEqual(answering.command([0x00])?.status, 2)  // still served (its power-on UA first)
    }
}
