/// GET EVENT STATUS NOTIFICATION media event codes (MMC-6 Table 165, Media Event Format).
enum MediaEvent: UInt8, Sendable {
    case noChange = 0
    case ejectRequest = 1
    case newMedia = 2
    case mediaRemoval = 3
}

/// The per-I_T-nexus state: pending unit attentions, unreported media events, sense format.
struct Nexus: Sendable {
    /// Pending unit attention conditions, the one to report next first (SPC-4 5.14).
    var attention: [SenseCode] = []
    /// Media events not yet reported through GESN, oldest first (at most `eventLimit`).
    var events: [MediaEvent] = []
    /// D_SENSE of the Control mode page (0Ah) as this initiator set it: descriptor-format sense.
    var descriptorSense = false

    static let eventLimit = 8

    /// Establishes a unit attention unless the same one is already pending. POWER ON (29h)
    /// outranks everything else and goes first.
    mutating func raise(_ code: SenseCode) {
        guard !attention.contains(code) else { return }
        if code == .powerOnReset { attention.insert(code, at: 0) } else { attention.append(code) }
    }

    mutating func post(_ event: MediaEvent) {
        if events.last == event { return }
        events.append(event)
        if events.count > Nexus.eventLimit { events.removeFirst(events.count - Nexus.eventLimit) }
    }
}

/// Something the delegate must hear about once the lock is released.
enum DriveEffect: Sendable {
    case ejected(Medium, EjectCause)
    case lockChanged(Bool, InitiatorID)
}

/// The mutable state of one drive. Lives inside the drive's `Mutex`; every method here runs with
/// that lock held and does no I/O and no callbacks (callbacks are queued in `effects`).
///
/// Invariants (checked by `checkInvariants()` in tests):
/// - a medium present implies the tray is closed;
/// - `ejectPending` implies a medium is present and the drive is locked;
/// - every preventing initiator is attached.
struct DriveCore: Sendable {
    var medium: Medium?
    var trayOpen = false
    var preventers: Set<InitiatorID> = []
    var ejectPending = false
    var generation: UInt64 = 0
    var nexus: [InitiatorID: Nexus] = [:]
    var nextInitiator: UInt64 = 1
    /// The LUN list REPORT LUNS returns; nil: only this drive's own LUN.
    var reportedLUNs: [UInt64]?
    var effects: [DriveEffect] = []

    var locked: Bool { !preventers.isEmpty }

    /// 02/3A/01 with the tray closed, 02/3A/02 with it open.
    var notPresentSense: SenseCode { trayOpen ? .mediumNotPresentTrayOpen : .mediumNotPresentTrayClosed }

    var snapshot: DriveState {
        DriveState(mediumPresent: medium != nil, trayOpen: trayOpen, locked: locked,
                   ejectPending: ejectPending, generation: generation,
                   lockedBy: preventers.sorted(), initiators: nexus.keys.sorted())
    }

    // MARK: I_T nexus

    mutating func attach(reportPowerOn: Bool) -> InitiatorID {
        let id = InitiatorID(rawValue: nextInitiator)
        nextInitiator += 1
        var n = Nexus()
        if reportPowerOn { n.raise(.powerOnReset) }
        nexus[id] = n
        return id
    }

    /// Nexus loss: forgets the initiator and releases its prevent (which may complete a pending eject).
    mutating func detach(_ initiator: InitiatorID) {
        nexus[initiator] = nil
        if preventers.contains(initiator) { setPrevent(false, by: initiator) }
    }

    /// The nexus of `initiator`, created (without pending conditions) if it is not attached.
    mutating func ensureAttached(_ initiator: InitiatorID) {
        if nexus[initiator] == nil {
            nexus[initiator] = Nexus()
            nextInitiator = max(nextInitiator, initiator.rawValue + 1)
        }
    }

    /// Removes and returns the unit attention to report next to `initiator`, if any.
    mutating func takeAttention(_ initiator: InitiatorID) -> SenseCode? {
        guard var n = nexus[initiator], !n.attention.isEmpty else { return nil }
        let code = n.attention.removeFirst()
        nexus[initiator] = n
        return code
    }

    mutating func clearAttention(_ code: SenseCode, for initiator: InitiatorID) {
        nexus[initiator]?.attention.removeAll { $0 == code }
    }

    mutating func raiseForAll(_ code: SenseCode) {
        for key in nexus.keys { nexus[key]!.raise(code) }
    }

    mutating func postForAll(_ event: MediaEvent) {
        for key in nexus.keys { nexus[key]!.post(event) }
    }

    /// The next media event for `initiator` (consumed), or `.noChange`.
    mutating func takeEvent(_ initiator: InitiatorID) -> MediaEvent {
        guard var n = nexus[initiator], !n.events.isEmpty else { return .noChange }
        let e = n.events.removeFirst()
        nexus[initiator] = n
        return e
    }

    // MARK: host side

    /// Loads `new`, swapping out a loaded medium in one step. Refused while a loaded medium is
    /// locked in; an empty drive accepts a medium even while an initiator prevents removal
    /// (nothing is removed). Every attached initiator gets 06/28/00 and a NewMedia event.
    mutating func insert(_ new: Medium) throws(HostError) {
        if medium != nil && locked { throw .removalPrevented }
        medium = new
        trayOpen = false
        ejectPending = false
        generation &+= 1
        raiseForAll(.notReadyToReadyChange)
        postForAll(.newMedia)
    }

    /// Ejects at once if unlocked; if locked, marks the eject pending, posts an EjectRequest
    /// event to every initiator and throws `.removalPrevented`.
    mutating func eject() throws(HostError) -> Medium {
        guard let current = medium else { throw .noMedium }
        if locked {
            ejectPending = true
            postForAll(.ejectRequest)
            throw .removalPrevented
        }
        removeMedium()
        return current
    }

    mutating func cancelPendingEject() {
        ejectPending = false
    }

    /// Takes the medium out: tray open, generation bumped, MediaRemoval posted.
    @discardableResult
    private mutating func removeMedium() -> Medium? {
        guard let current = medium else { return nil }
        medium = nil
        trayOpen = true
        ejectPending = false
        generation &+= 1
        postForAll(.mediaRemoval)
        return current
    }

    // MARK: guest side

    /// PREVENT ALLOW MEDIUM REMOVAL from `initiator`. Allowing by the last preventer unlocks the
    /// drive and completes a pending host eject.
    mutating func setPrevent(_ prevent: Bool, by initiator: InitiatorID) {
        let wasLocked = locked
        if prevent {
            preventers.insert(initiator)
            if !wasLocked { effects.append(.lockChanged(true, initiator)) }
            return
        }
        preventers.remove(initiator)
        guard wasLocked && !locked else { return }
        effects.append(.lockChanged(false, initiator))
        if ejectPending, let removed = removeMedium() {
            effects.append(.ejected(removed, .deferred))
        }
    }

    /// START STOP UNIT LoEj=1 Start=0: opens the tray, ejecting the medium for real.
    mutating func guestEject(by initiator: InitiatorID) throws(SenseError) {
        if locked { throw SenseError(.removalPrevented) }
        if let removed = removeMedium() {
            effects.append(.ejected(removed, .guest(initiator)))
        } else {
            trayOpen = true
        }
    }

    /// START STOP UNIT LoEj=1 Start=1: closes the tray (a guest has no medium to load).
    mutating func guestLoad() {
        trayOpen = false
    }

    /// Replaces the REPORT LUNS inventory; every initiator gets 06/3F/0E if it changed.
    mutating func setReportedLUNs(_ luns: [UInt64]?) {
        if luns == reportedLUNs { return }
        reportedLUNs = luns
        raiseForAll(.reportedLUNsDataChanged)
    }

    /// Returns a description of the first broken invariant, or nil.
    func invariantViolation() -> String? {
        if medium != nil && trayOpen { return "medium present with tray open" }
        if ejectPending && (medium == nil || !locked) { return "eject pending without a locked medium" }
        for p in preventers where nexus[p] == nil { return "\(p) prevents removal but is not attached" }
        return nil
    }
}
