import Synchronization

/// The immutable facts about a drive, shared by all its commands.
final class DeviceModel: Sendable {
    let identity: DeviceIdentity
    let lun: UInt64
    /// Standard INQUIRY data, built once.
    let standardInquiry: [UInt8]

    init(identity: DeviceIdentity, lun: UInt64) {
        self.identity = identity
        self.lun = lun
        self.standardInquiry = InquiryCommands.standardData(identity)
    }
}

/// One MMC-5 logical unit (peripheral device type 05h): a virtual CD/DVD-ROM drive.
///
/// A CDB goes in through `execute`; status, data and sense come out. The host side
/// (`insert`, `eject`, `cancelPendingEject`) and the I_T nexus bookkeeping (`attach`, `detach`)
/// change the same state.
///
/// Thread safety and lock rule: every method may be called from many threads at once. All state
/// lives behind one `Mutex`, which is held only while a command's state check and response
/// building run (pure computation, no I/O). It is never held while calling out: the
/// `BlockSource` (`validate()` for a READ, `read` when materialising) and the delegate are called
/// after it is released, on the calling thread. So a delegate or a source may call back into the
/// drive. A READ's range is computed under the lock and validated after it; the returned
/// `BlockRange.generation` tells which medium it belongs to.
public final class OpticalDrive: Sendable {
    private let model: DeviceModel
    private let core: Mutex<DriveCore>
    private let delegateBox: Mutex<WeakDelegate>

    private struct WeakDelegate: @unchecked Sendable {
        // Only read and written under `delegateBox`'s lock; the delegate itself is Sendable.
        weak var value: (any OpticalDriveDelegate)?
    }

    /// - Parameters:
    ///   - identity: INQUIRY and VPD identity.
    ///   - lun: this logical unit's number, as REPORT LUNS reports it (see `setReportedLUNs`).
    ///   - delegate: held weakly.
    public init(identity: DeviceIdentity, lun: UInt64 = 0, delegate: (any OpticalDriveDelegate)? = nil) {
        self.model = DeviceModel(identity: identity, lun: lun)
        self.core = Mutex(DriveCore())
        self.delegateBox = Mutex(WeakDelegate(value: delegate))
    }

    /// The identity given at init.
    public var identity: DeviceIdentity { model.identity }
    /// The LUN given at init.
    public var lun: UInt64 { model.lun }

    /// Sets (or clears) the delegate, held weakly.
    public func setDelegate(_ d: (any OpticalDriveDelegate)?) {
        delegateBox.withLock { $0.value = d }
    }

    // MARK: I_T nexus

    /// A new I_T nexus. It has no pending unit attention unless `reportPowerOn` is true, in which
    /// case its first command (other than INQUIRY, REPORT LUNS, REQUEST SENSE, GET CONFIGURATION,
    /// GESN) gets 06/29/00 once.
    public func attach(reportPowerOn: Bool = false) -> InitiatorID {
        core.withLock { $0.attach(reportPowerOn: reportPowerOn) }
    }

    /// Nexus loss: forgets the initiator and releases its prevent lock, which may complete a
    /// pending host eject (then the delegate hears `didEject(cause: .deferred)`).
    public func detach(_ initiator: InitiatorID) {
        let effects = core.withLock { c -> [DriveEffect] in
            c.detach(initiator)
            return c.drainEffects()
        }
        deliver(effects)
    }

    // MARK: commands

    /// Executes one CDB from `initiator`.
    ///
    /// A CDB longer than its opcode's length is accepted (the extra bytes are ignored, as with a
    /// transport's padded 16-byte CDB field); a shorter one gets 05/24/00. A command from an
    /// initiator that is not attached (e.g. after `detach`) attaches it again, with nothing pending.
    public func execute(_ cdb: [UInt8], from initiator: InitiatorID, dataOut: [UInt8] = []) -> CommandResult {
        cdb.withUnsafeBytes { raw in run(CDB(raw), from: initiator, dataOut: dataOut) }
    }

    /// The hot-path overload: no array allocation for the CDB.
    public func execute(_ cdb: UnsafeRawBufferPointer, from initiator: InitiatorID,
                        dataOut: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) -> CommandResult {
        run(CDB(cdb), from: initiator, dataOut: dataOut.isEmpty ? [] : Array(dataOut))
    }

    /// A READ of `blocks` blocks at `lba`, built on the stack (no CDB array): READ(12), the
    /// command MMC drives answer, or READ(16) for an LBA past 32 bits. The result is what
    /// `execute` would return (`.blocks` on success).
    public func read(lba: UInt64, blocks: UInt32, from initiator: InitiatorID) -> CommandResult {
        var bytes = SIMD16<UInt8>(repeating: 0)
        if lba <= UInt64(UInt32.max) {
            bytes[0] = 0xA8
            for i in 0..<4 {
                bytes[2 + i] = UInt8(truncatingIfNeeded: lba >> UInt64(24 - 8 * i))
                bytes[6 + i] = UInt8(truncatingIfNeeded: blocks >> UInt32(24 - 8 * i))
            }
            return run(CDB(bytes, count: 12), from: initiator, dataOut: [])
        }
        bytes[0] = 0x88
        for i in 0..<8 { bytes[2 + i] = UInt8(truncatingIfNeeded: lba >> UInt64(56 - 8 * i)) }
        for i in 0..<4 { bytes[10 + i] = UInt8(truncatingIfNeeded: blocks >> UInt32(24 - 8 * i)) }
        return run(CDB(bytes, count: 16), from: initiator, dataOut: [])
    }

    /// Reads `blocks` blocks at `lba` and copies them out: the plain path for callers that need
    /// bytes. Throws the sense the guest would see.
    public func readBytes(lba: UInt64, blocks: UInt32, from initiator: InitiatorID) throws(SenseError) -> [UInt8] {
        let result = read(lba: lba, blocks: blocks, from: initiator)
        guard result.status == .good else {
            throw SenseError(result.sense ?? .internalTargetFailure)
        }
        do { return try result.materializedData() } catch { throw SenseError(error.sense) }
    }

    private func run(_ cdb: CDB, from initiator: InitiatorID, dataOut: [UInt8]) -> CommandResult {
        let (outcome, effects) = core.withLock { c -> (Outcome, [DriveEffect]) in
            let o = c.run(cdb, from: initiator, dataOut: dataOut, device: model)
            return (o, c.drainEffects())
        }
        deliver(effects)
        switch outcome {
        case .done(let result):
            return result
        case .read(let range, let descriptorSense):
            do {
                try range.source.validate()
            } catch {
                return .checkCondition(error.sense, descriptorFormat: descriptorSense)
            }
            return .good(range.count == 0 ? .none : .blocks(range))
        }
    }

    // MARK: host side

    /// Loads `medium`; if one is loaded it is a swap in one step. Refused with
    /// `.removalPrevented` while a loaded medium is locked in (the old medium stays, nothing
    /// becomes pending). Every attached initiator gets unit attention 06/28/00 once and a
    /// NewMedia event. An empty drive accepts a medium even while locked.
    public func insert(_ medium: Medium) throws(HostError) {
        try core.withLock { (c: inout DriveCore) throws(HostError) in try c.insert(medium) }
    }

    /// Ejects the medium (tray left open). `.noMedium` if empty. While locked: marks
    /// `ejectPending`, queues an EjectRequest event for every initiator and throws
    /// `.removalPrevented`; the eject then completes by itself when the last prevent is released
    /// and the delegate hears `didEject(cause: .deferred)`. A successful call tells no delegate.
    @discardableResult
    public func eject() throws(HostError) -> Medium {
        try core.withLock { (c: inout DriveCore) throws(HostError) -> Medium in try c.eject() }
    }

    /// Forgets a pending host eject (the medium stays, still locked).
    public func cancelPendingEject() {
        core.withLock { $0.cancelPendingEject() }
    }

    /// Sets the LUN list REPORT LUNS returns (for a target with several drives); nil: only this
    /// drive's own `lun`. A change raises 06/3F/0E REPORTED LUNS DATA HAS CHANGED for every
    /// attached initiator.
    public func setReportedLUNs(_ luns: [UInt64]?) {
        core.withLock { $0.setReportedLUNs(luns) }
    }

    /// A consistent snapshot.
    public var state: DriveState { core.withLock { $0.snapshot } }

    /// The loaded medium, if any.
    public var medium: Medium? { core.withLock { $0.medium } }

    /// The loaded medium and the generation it belongs to, read together: a caller that
    /// needs both (a size for one generation) must not read them separately.
    public var mediumAndGeneration: (medium: Medium?, generation: UInt64) {
        core.withLock { ($0.medium, $0.generation) }
    }

    /// For tests: a description of the first broken state invariant, or nil.
    public func invariantViolation() -> String? { core.withLock { $0.invariantViolation() } }

    private func deliver(_ effects: [DriveEffect]) {
        guard !effects.isEmpty, let delegate = delegateBox.withLock({ $0.value }) else { return }
        for effect in effects {
            switch effect {
            case .ejected(let m, let cause): delegate.opticalDrive(self, didEject: m, cause: cause)
            case .lockChanged(let locked, let who): delegate.opticalDrive(self, lockChanged: locked, by: who)
            }
        }
    }
}

extension DriveCore {
    mutating func drainEffects() -> [DriveEffect] {
        if effects.isEmpty { return [] }
        defer { effects = [] }
        return effects
    }
}
