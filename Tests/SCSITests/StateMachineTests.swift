import XCTest
@testable import SCSI

/// The drive's state machine: tray, medium, prevent locks, pending host eject, unit attention
/// (SPC-4 5.14, MMC-6 4.1.6), media events (MMC-6 6.7, Table 165), START STOP UNIT (6.39),
/// PREVENT ALLOW MEDIUM REMOVAL (6.19).
final class StateMachineTests: XCTestCase {
    func gesn(_ d: OpticalDrive, _ i: InitiatorID) -> [UInt8] { d.execute(CDBs.gesn(), from: i).bytes }

    /// Media event descriptor (MMC-6 Table 162 header + Table 165): code, status (present, open).
    func event(_ code: UInt8, present: Bool, open: Bool) -> [UInt8] {
        [0, 6, 4, 0x10, code, (present ? 2 : 0) | (open ? 1 : 0), 0, 0]
    }

    func testEmptyDriveTrayClosedThenOpenThenClosed() {
        let d = makeDrive()
        let i = d.attach()
        XCTAssertEqual(d.state, DriveState(mediumPresent: false, trayOpen: false, locked: false, ejectPending: false,
                                           generation: 0, lockedBy: [], initiators: [i]))
        assertCheck(d.execute(CDBs.tur, from: i), .mediumNotPresentTrayClosed)
        assertGood(d.execute(CDBs.eject, from: i), [])          // open the empty tray
        XCTAssertTrue(d.state.trayOpen)
        assertCheck(d.execute(CDBs.tur, from: i), .mediumNotPresentTrayOpen)
        assertGood(d.execute(CDBs.load, from: i), [])           // close it
        assertCheck(d.execute(CDBs.tur, from: i), .mediumNotPresentTrayClosed)
        XCTAssertEqual(d.state.generation, 0)
        XCTAssertThrowsError(try d.eject()) { XCTAssertEqual($0 as? HostError, .noMedium) }
    }

    /// Insert: generation bumps, every attached initiator gets 06/28/00 exactly once and a
    /// NewMedia event; an initiator attached afterwards gets neither.
    func testInsertUnitAttentionOncePerInitiator() {
        let d = makeDrive()
        let a = d.attach(), b = d.attach()
        try! d.insert(smallMedium())
        XCTAssertEqual(d.state.generation, 1)
        XCTAssertFalse(d.state.trayOpen)
        let late = d.attach()
        assertGood(d.execute(CDBs.tur, from: late), [])
        XCTAssertEqual(gesn(d, late), event(0, present: true, open: false))
        for i in [a, b] {
            // GESN is not blocked by the attention (MMC-6 4.1.6.1) and reports NewMedia once.
            XCTAssertEqual(gesn(d, i), event(2, present: true, open: false))
            XCTAssertEqual(gesn(d, i), event(0, present: true, open: false))
            assertCheck(d.execute(CDBs.read10(0, 1), from: i), .notReadyToReadyChange)
            XCTAssertEqual(d.execute(CDBs.read10(0, 1), from: i).status, .good)
            assertGood(d.execute(CDBs.tur, from: i), [])
        }
    }

    /// A new nexus asked to report power on gets 06/29/00 once, before anything else.
    func testPowerOnAttention() {
        let d = makeDrive()
        try! d.insert(smallMedium())
        let i = d.attach(reportPowerOn: true)
        assertCheck(d.execute(CDBs.tur, from: i), .powerOnReset)
        assertGood(d.execute(CDBs.tur, from: i), [])
        let j = d.attach(reportPowerOn: true)
        try! d.insert(smallMedium(tag: 1))
        assertCheck(d.execute(CDBs.tur, from: j), .powerOnReset)
        assertCheck(d.execute(CDBs.tur, from: j), .notReadyToReadyChange)
        assertGood(d.execute(CDBs.tur, from: j), [])
    }

    /// Swap: one step, generation +1, new data served, 06/28/00 once.
    func testSwap() {
        let (d, i) = loadedDrive(smallMedium(tag: 1))
        let g = d.state.generation
        let second = MemorySource(count: 2048 * 2, tag: 2)
        try! d.insert(Medium(source: second))
        XCTAssertEqual(d.state.generation, g + 1)
        XCTAssertTrue(d.medium!.source === second)
        assertCheck(d.execute(CDBs.read10(0, 1), from: i), .notReadyToReadyChange)
        XCTAssertEqual(d.execute(CDBs.read10(0, 2), from: i).bytes, second.bytes)
        assertGood(d.execute([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], from: i), [0, 0, 0, 1, 0, 0, 8, 0])
    }

    /// Host eject, unlocked: medium gone, tray open, generation +1, MediaRemoval event, no
    /// delegate call (the host asked), no unit attention.
    func testHostEject() {
        let (d, i) = loadedDrive()
        let delegate = RecordingDelegate()
        d.setDelegate(delegate)
        _ = gesn(d, i)   // consume NewMedia
        let g = d.state.generation
        let m = try! d.eject()
        XCTAssertEqual(m.blockCount, 4)
        XCTAssertEqual(d.state, DriveState(mediumPresent: false, trayOpen: true, locked: false, ejectPending: false,
                                           generation: g + 1, lockedBy: [], initiators: [i]))
        XCTAssertEqual(gesn(d, i), event(3, present: false, open: true))
        assertCheck(d.execute(CDBs.tur, from: i), .mediumNotPresentTrayOpen)
        XCTAssertEqual(delegate.recorded, [])
        // Insert through the open tray closes it: 06/28/00 (no 06/3A/00 first: a documented choice).
        try! d.insert(smallMedium())
        assertCheck(d.execute(CDBs.tur, from: i), .notReadyToReadyChange)
        assertGood(d.execute(CDBs.tur, from: i), [])
    }

    /// PREVENT by one initiator locks; its ALLOW unlocks; lock state shows in MODE SENSE 2Ah
    /// and DriveState; the delegate hears both transitions; prevent works without a medium.
    func testPreventAllowOneInitiator() {
        let d = makeDrive()
        let delegate = RecordingDelegate()
        d.setDelegate(delegate)
        let i = d.attach()
        assertGood(d.execute(CDBs.prevent, from: i), [])
        XCTAssertEqual(d.state.lockedBy, [i])
        XCTAssertTrue(d.state.locked)
        assertGood(d.execute(CDBs.prevent, from: i), [])        // idempotent
        // An empty drive accepts a medium while locked (nothing is removed).
        try! d.insert(smallMedium())
        XCTAssertThrowsError(try d.insert(smallMedium(tag: 3))) { XCTAssertEqual($0 as? HostError, .removalPrevented) }
        XCTAssertFalse(d.state.ejectPending)                      // a refused swap leaves nothing pending
        XCTAssertEqual(d.state.generation, 1)
        // PREVENT ALLOW is not exempt from the insert's unit attention (SPC-4 5.14).
        assertCheck(d.execute(CDBs.allow, from: i), .notReadyToReadyChange)
        XCTAssertTrue(d.state.locked)
        assertGood(d.execute(CDBs.allow, from: i), [])
        XCTAssertFalse(d.state.locked)
        XCTAssertEqual(delegate.recorded, [.lock(true, i), .lock(false, i)])
    }

    /// Two initiators: the drive stays locked until both allow; the guest eject is refused
    /// 05/53/02 while anyone prevents.
    func testPreventByTwoInitiators() {
        let (d, a) = loadedDrive()
        let delegate = RecordingDelegate()
        d.setDelegate(delegate)
        let b = d.attach()
        _ = d.execute(CDBs.prevent, from: a)
        _ = d.execute(CDBs.prevent, from: b)
        XCTAssertEqual(d.state.lockedBy, [a, b])
        _ = d.execute(CDBs.allow, from: a)
        XCTAssertTrue(d.state.locked)
        assertCheck(d.execute(CDBs.eject, from: a), .removalPrevented)
        assertCheck(d.execute(CDBs.eject, from: b), .removalPrevented)
        XCTAssertTrue(d.state.mediumPresent)
        _ = d.execute(CDBs.allow, from: b)
        XCTAssertFalse(d.state.locked)
        XCTAssertEqual(delegate.recorded, [.lock(true, a), .lock(false, b)])
    }

    /// Host eject while locked: pending + EJECT REQUEST event -> ALLOW -> the medium leaves by
    /// itself, MediaRemoval event, delegate didEject(.deferred) after lockChanged(false).
    func testHostEjectWhileLockedIsDeferredUntilAllow() {
        let (d, i) = loadedDrive()
        let delegate = RecordingDelegate()
        d.setDelegate(delegate)
        _ = gesn(d, i)
        _ = d.execute(CDBs.prevent, from: i)
        XCTAssertThrowsError(try d.eject()) { XCTAssertEqual($0 as? HostError, .removalPrevented) }
        XCTAssertTrue(d.state.ejectPending)
        XCTAssertTrue(d.state.mediumPresent)
        XCTAssertEqual(gesn(d, i), event(1, present: true, open: false))
        XCTAssertEqual(gesn(d, i), event(0, present: true, open: false))
        XCTAssertEqual(d.execute(CDBs.read10(0, 1), from: i).status, .good)   // still served
        let g = d.state.generation
        assertGood(d.execute(CDBs.allow, from: i), [])
        XCTAssertEqual(d.state, DriveState(mediumPresent: false, trayOpen: true, locked: false, ejectPending: false,
                                           generation: g + 1, lockedBy: [], initiators: [i]))
        XCTAssertEqual(delegate.recorded, [.lock(true, i), .lock(false, i), .ejected(cause: .deferred, generationAfter: g + 1)])
        XCTAssertEqual(gesn(d, i), event(3, present: false, open: true))
    }

    /// cancelPendingEject: the allow then leaves the medium in.
    func testCancelPendingEject() {
        let (d, i) = loadedDrive()
        _ = d.execute(CDBs.prevent, from: i)
        XCTAssertThrowsError(try d.eject())
        d.cancelPendingEject()
        XCTAssertFalse(d.state.ejectPending)
        _ = d.execute(CDBs.allow, from: i)
        XCTAssertTrue(d.state.mediumPresent)
    }

    /// Detach (nexus loss) releases that initiator's prevent and completes the pending eject.
    func testDetachReleasesLockAndCompletesPendingEject() {
        let (d, i) = loadedDrive()
        let other = d.attach()
        let delegate = RecordingDelegate()
        d.setDelegate(delegate)
        _ = d.execute(CDBs.prevent, from: i)
        XCTAssertThrowsError(try d.eject())
        d.detach(i)
        XCTAssertEqual(d.state.initiators, [other])
        XCTAssertFalse(d.state.mediumPresent)
        XCTAssertEqual(delegate.recorded.count, 3)
        XCTAssertEqual(delegate.recorded.last, .ejected(cause: .deferred, generationAfter: d.state.generation))
        // Detaching an initiator that held nothing changes nothing else.
        d.detach(other)
        XCTAssertEqual(d.state.initiators, [])
        XCTAssertNil(d.invariantViolation())
    }

    /// Guest eject (START STOP LoEj=1 Start=0): ejects for real, delegate didEject(.guest),
    /// MediaRemoval for the other initiators too; then load closes the empty tray.
    func testGuestEject() {
        let (d, i) = loadedDrive()
        let other = d.attach()
        let delegate = RecordingDelegate()
        d.setDelegate(delegate)
        let g = d.state.generation
        assertGood(d.execute(CDBs.eject, from: i), [])
        XCTAssertEqual(d.state.generation, g + 1)
        XCTAssertNil(d.medium)
        XCTAssertTrue(d.state.trayOpen)
        XCTAssertEqual(delegate.recorded, [.ejected(cause: .guest(i), generationAfter: g + 1)])
        XCTAssertEqual(gesn(d, other), event(3, present: false, open: true))
        assertCheck(d.execute(CDBs.tur, from: other), .mediumNotPresentTrayOpen)
        assertGood(d.execute(CDBs.load, from: i), [])
        assertCheck(d.execute(CDBs.tur, from: other), .mediumNotPresentTrayClosed)
        // Power conditions and LoEj=0 are accepted no-ops; IMMED is accepted.
        assertGood(d.execute([0x1B, 0x01, 0, 0, 0x01, 0], from: i), [])
        assertGood(d.execute([0x1B, 0, 0, 0, 0x22, 0], from: i), [])
        XCTAssertFalse(d.state.trayOpen)
    }

    /// A delegate may call back into the drive (the lock is released before callbacks).
    func testDelegateMayReenter() {
        let (d, i) = loadedDrive()
        let delegate = RecordingDelegate()
        delegate.probe.withLock { $0 = { drive in try? drive.insert(smallMedium(tag: 9)) } }
        d.setDelegate(delegate)
        _ = d.execute(CDBs.eject, from: i)
        XCTAssertTrue(d.state.mediumPresent)   // the delegate re-inserted
        XCTAssertEqual(d.state.generation, 3)
    }

    /// GESN, MMC-6 6.7: Polled=0 -> 05/24/00 byte 1 bit 0; media class not requested -> NEA.
    func testGESNFields() {
        let d = makeDrive()
        let i = d.attach()
        assertCheck(d.execute([0x4A, 0x00, 0, 0, 0x10, 0, 0, 0, 8, 0], from: i), .invalidFieldInCDB, field: .cdb(1, bit: 0))
        assertGood(d.execute(CDBs.gesn(0x02), from: i), [0, 2, 0x80, 0x10])
        assertGood(d.execute(CDBs.gesn(0x00), from: i), [0, 2, 0x80, 0x10])
        try! d.insert(smallMedium())
        // A 4-byte probe does not consume the event.
        assertGood(d.execute(CDBs.gesn(alloc: 4), from: i), [0, 6, 4, 0x10])
        assertGood(d.execute(CDBs.gesn(0x5E), from: i), event(2, present: true, open: false))
    }

    /// Events queue in order per initiator: eject then insert before a poll -> removal, new media.
    func testEventOrder() {
        let (d, i) = loadedDrive()
        _ = gesn(d, i)
        _ = try! d.eject()
        try! d.insert(smallMedium(tag: 4))
        XCTAssertEqual(gesn(d, i), event(3, present: true, open: false))
        XCTAssertEqual(gesn(d, i), event(2, present: true, open: false))
        XCTAssertEqual(gesn(d, i), event(0, present: true, open: false))
        assertCheck(d.execute(CDBs.tur, from: i), .notReadyToReadyChange)   // one attention, not two
        assertGood(d.execute(CDBs.tur, from: i), [])
    }

    /// A command from a detached initiator re-attaches it with nothing pending.
    func testDetachedInitiatorIsReattached() {
        let (d, i) = loadedDrive()
        d.detach(i)
        try! d.insert(smallMedium(tag: 5))
        assertGood(d.execute(CDBs.tur, from: i), [])
        XCTAssertEqual(d.state.initiators, [i])
    }
}
