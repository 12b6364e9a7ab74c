import TestSupport
import Foundation
import ISCSI
import Synchronization
import XCTest

/// A thousand connections opened and dropped against `iscsi-demo` while one well-behaved
/// session keeps reading: the server's descriptors return to where they were, its memory does
/// not grow with the connections it has seen, and the reader never fails.
final class ChurnTests: XCTestCase {
    static let host = "iqn.2026-11.test:churn"
    static let connections = 1000
    static let wave = 200

    /// The ways a connection ends here, one in four each.
    enum Drop: CaseIterable {
        case idle, midLogin, halfHeader, midCommand
    }

    /// Opens one connection and leaves it the way `drop` says (the caller drops it).
    func open(_ drop: Drop, port: Int) -> MiniInitiator? {
        guard let c = MiniInitiator(port: port, timeoutSeconds: 20) else { return nil }
        switch drop {
        case .idle:
            break
        case .midLogin:  // the first login step, answered, then nothing
            _ = c.loginRequest(csg: 0, nsg: 1, transit: false,
                               [("InitiatorName", Self.host), ("SessionType", "Normal"), ("TargetName", DemoServer.target),
                                ("AuthMethod", "None")])
        case .halfHeader:  // 20 bytes of a 48-byte login header
            c.sendRaw([0x43, 0x87, 0, 0, 0, 0, 0, 0x40] + [UInt8](repeating: 0, count: 12))
        case .midCommand:  // logged in, a 2 MiB READ asked for and never read
            guard c.login(initiator: Self.host, target: DemoServer.target) == 0 else { return nil }
            c.send(c.commandPDU([0x28, 0, 0, 0, 0, 0, 0, 0x04, 0x00, 0], expected: 2 << 20, reads: true))
        }
        return c
    }

    /// READs of 8 blocks at changing LBAs, each checked byte for byte, until `stop`.
    final class Reader: @unchecked Sendable {
        let reads = Atomic<Int>(0)
        let failures = Atomic<Int>(0)
        let stop = Atomic<Bool>(false)
        let finished = DispatchSemaphore(value: 0)

        /// The session, handed to the reader's thread and used by it alone.
        struct Session: @unchecked Sendable { let initiator: MiniInitiator }

        func run(_ session: Session) {
            Thread { [self] in
                let i = session.initiator
                var lba: UInt32 = 0
                while !stop.load(ordering: .relaxed) {
                    let expected = (0..<8 * 2048).map { PatternSource.byte(UInt64(lba) * 2048 + UInt64($0)) }
                    if i.read(lba: lba, blocks: 8) == expected {
                        reads.add(1, ordering: .relaxed)
                    } else {
                        failures.add(1, ordering: .relaxed)
                    }
                    lba = (lba &+ 977) % 30_000
                }
                finished.signal()
            }.start()
        }
    }

    func testThousandDroppedConnectionsLeaveNothingBehind() throws {
        let demo = try DemoServer()
        defer { demo.stop() }
        let steady = try XCTUnwrap(MiniInitiator(port: demo.port, timeoutSeconds: 20))
        XCTAssertEqual(steady.login(initiator: "iqn.2026-11.test:steady", target: DemoServer.target), 0)
        _ = steady.command([0x00])  // the power-on unit attention
        let reader = Reader()
        reader.run(.init(initiator: steady))

        XCTAssertTrue(waitUntil(10) { reader.reads.load(ordering: .relaxed) > 0 })
        let fdsBefore = demo.descriptors
        churn(demo, count: 2 * Self.wave)  // warm-up: the allocator's and NIO's first pools
        XCTAssertTrue(waitUntil(60) { demo.descriptors <= fdsBefore }, "settle")
        let rssBefore = demo.rssKiB
        let start = Date()
        let peak = churn(demo, count: Self.connections)
        XCTAssertTrue(waitUntil(60) { demo.descriptors <= fdsBefore }, "descriptors \(fdsBefore) -> \(demo.descriptors)")
        let (fdsAfter, rssAfter) = (demo.descriptors, demo.rssKiB)
        let seconds = Date().timeIntervalSince(start)

        reader.stop.store(true, ordering: .relaxed)
        XCTAssertEqual(reader.finished.wait(timeout: .now() + 60), .success, "hang guard")
        let perConnection = Double(rssAfter - rssBefore) * 1024 / Double(Self.connections)
        let perOpen = Double(peak.rss - rssBefore) * 1024 / Double(Self.wave)
        print("""
            churn: \(Self.connections) connections (\(Self.wave) open at a time) in \(String(format: "%.1f", seconds)) s; \
            iscsi-demo fds \(fdsBefore) -> peak \(peak.fds) -> \(fdsAfter); VmRSS \(rssBefore) KiB -> peak \
            \(peak.rss) KiB -> \(rssAfter) KiB (\(String(format: "%.0f", perConnection)) B kept per connection seen, \
            \(String(format: "%.0f", perOpen)) B per open connection at the peak); \
            steady session: \(reader.reads.load(ordering: .relaxed)) verified READs, \
            \(reader.failures.load(ordering: .relaxed)) failed
            """)
        XCTAssertEqual(reader.failures.load(ordering: .relaxed), 0)
        XCTAssertGreaterThan(reader.reads.load(ordering: .relaxed), 0)
        XCTAssertLessThanOrEqual(fdsAfter, fdsBefore)
        XCTAssertLessThan(perConnection, 16 * 1024, "memory grows with the connections seen")
        XCTAssertLessThan(perOpen, 256 * 1024, "an open connection costs more than a bounded amount")
        XCTAssertTrue(demo.isRunning)
        XCTAssertTrue(steady.logout())
    }

    /// `count` connections, `wave` open at a time, the four kinds of drop in turn; returns the
    /// server's peak descriptors and VmRSS, sampled with each wave open.
    @discardableResult
    func churn(_ demo: DemoServer, count: Int) -> (fds: Int, rss: Int) {
        var peak = (fds: 0, rss: 0)
        var n = 0
        while n < count {
            var open: [MiniInitiator] = []
            for k in 0..<min(Self.wave, count - n) {
                let drop = Drop.allCases[(n + k) % Drop.allCases.count]
                if let c = self.open(drop, port: demo.port) { open.append(c) } else { XCTFail("\(drop) failed") }
            }
            peak = (max(peak.fds, demo.descriptors), max(peak.rss, demo.rssKiB))
            n += open.count
            if open.isEmpty { break }
            open.removeAll()  // every socket closed at once (a reset where data was unread)
        }
        return peak
    }
}
