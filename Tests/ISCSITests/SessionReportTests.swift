import TestSupport
import Foundation
import SCSI
import Synchronization
import XCTest
@testable import ISCSI

/// What `sessionsChanged` last told the provider is what is logged in, even when the provider
/// is slow to take one report and the next one overtakes it on the other pool thread.
final class SessionReportTests: XCTestCase {
    /// A provider whose first `sessionsChanged` takes a while (a busy host lock, say).
    final class SlowReports: ISCSIProvider {
        let inner = TestProvider()
        let calls = Atomic<Int>(0)
        let finished = Atomic<Int>(0)
        func discoverableTargets(initiator: String) -> [String] { inner.discoverableTargets(initiator: initiator) }
        func loginPolicy(target: String, initiator: String) -> LoginPolicy? { inner.loginPolicy(target: target, initiator: initiator) }
        func lun(_ lun: UInt64, of target: String) -> OpticalDrive? { inner.lun(lun, of: target) }
        func luns(of target: String) -> [UInt64] { inner.luns(of: target) }
        func sessionsChanged(target: String, initiators: [String]) {
            if calls.add(1, ordering: .relaxed).newValue == 1 { usleep(300_000) }
            inner.sessionsChanged(target: target, initiators: initiators)
            finished.add(1, ordering: .relaxed)
        }
    }

    func testLastReportIsTheLatestState() throws {
        let provider = SlowReports()
        provider.inner.add(FaultTests.target, allowed: [FaultTests.host], drives: [0: makeDrive()])
        let server = ISCSIServer(provider: provider, port: 0)
        try server.start()
        defer { server.stop() }
        let i = try XCTUnwrap(MiniInitiator(port: server.boundPort))
        XCTAssertEqual(i.login(initiator: FaultTests.host, target: FaultTests.target), 0)
        XCTAssertTrue(i.logout())  // its report runs while the login's is still being taken
        XCTAssertTrue(waitUntil(10) { provider.finished.load(ordering: .relaxed) == 2 }, "both reports taken")
        XCTAssertEqual(provider.inner.sessions.withLock { $0[FaultTests.target] }, [],
                       "status would show a logged-out initiator for good")
    }
}
