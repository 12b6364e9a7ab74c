/// What the drive says it is: INQUIRY data and the VPD pages 80h and 83h.
public struct DeviceIdentity: Sendable, Equatable {
    /// T10 vendor identification, 8 ASCII characters (padded with spaces, cut if longer).
    public var vendor: String
    /// Product identification, 16 ASCII characters.
    public var product: String
    /// Product revision level, 4 ASCII characters.
    public var revision: String
    /// Unit serial number (VPD page 80h); at most 252 ASCII characters are reported.
    public var serial: String
    /// Stable per drive; its low 60 bits form the NAA 3h (locally assigned) designator in VPD 83h.
    public var identifier: UInt64

    public init(vendor: String, product: String, revision: String, serial: String, identifier: UInt64) {
        self.vendor = vendor
        self.product = product
        self.revision = revision
        self.serial = serial
        self.identifier = identifier
    }
}

/// One I_T nexus (an initiator's connection to this logical unit), handed out by
/// `OpticalDrive.attach(reportPowerOn:)`.
public struct InitiatorID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: UInt64

    init(rawValue: UInt64) { self.rawValue = rawValue }

    public static func < (a: InitiatorID, b: InitiatorID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "initiator#\(rawValue)" }
}

/// SCSI status codes (SAM-5 Table 33) the emulator can return.
public enum ScsiStatus: UInt8, Sendable {
    case good = 0x00
    case checkCondition = 0x02
    case busy = 0x08
    case reservationConflict = 0x18
}

/// The outcome of one command: status, data-in, and (with CHECK CONDITION) sense.
public struct CommandResult: Sendable {
    public var status: ScsiStatus
    public var data: ResponseData
    /// Set with `.checkCondition`.
    public var sense: SenseCode?
    /// The sense data as sent (fixed format 70h, or descriptor format 72h when the initiator set
    /// D_SENSE in the Control mode page); empty with GOOD.
    public var senseBytes: [UInt8]

    public init(status: ScsiStatus, data: ResponseData = .none, sense: SenseCode? = nil, senseBytes: [UInt8] = []) {
        self.status = status
        self.data = data
        self.sense = sense
        self.senseBytes = senseBytes
    }

    /// GOOD with `data`.
    public static func good(_ data: ResponseData = .none) -> CommandResult {
        CommandResult(status: .good, data: data)
    }

    /// CHECK CONDITION with `code` (and a field pointer) in the chosen format.
    public static func checkCondition(_ code: SenseCode, field: FieldPointer? = nil, descriptorFormat: Bool = false) -> CommandResult {
        CommandResult(status: .checkCondition, data: .none, sense: code,
                      senseBytes: SenseData.build(code, field: field, descriptorFormat: descriptorFormat))
    }

    /// The data-in as bytes, copying a READ's blocks out of their source.
    public func materializedData() throws(MediumError) -> [UInt8] {
        switch data {
        case .none: return []
        case .bytes(let b): return b
        case .blocks(let range): return try range.bytes()
        }
    }
}

/// Why a host (administrator) operation was refused.
public enum HostError: Error, Sendable, Equatable {
    /// The guest has locked the tray (PREVENT ALLOW MEDIUM REMOVAL). For `eject()` the eject is
    /// now pending and completes by itself when the guest allows removal.
    case removalPrevented
    /// `eject()` of an empty drive.
    case noMedium
}

/// A snapshot of a drive's state, for `status` and tests.
public struct DriveState: Sendable, Equatable {
    public var mediumPresent: Bool
    public var trayOpen: Bool
    /// True while at least one initiator prevents medium removal.
    public var locked: Bool
    /// A host eject waits for the guest to allow removal.
    public var ejectPending: Bool
    /// Bumps on every medium change (insert, swap, and every eject).
    public var generation: UInt64
    /// The initiators that currently prevent removal, in ascending order.
    public var lockedBy: [InitiatorID]
    /// The attached initiators (I_T nexuses), in ascending order.
    public var initiators: [InitiatorID]

    public init(mediumPresent: Bool, trayOpen: Bool, locked: Bool, ejectPending: Bool,
                generation: UInt64, lockedBy: [InitiatorID], initiators: [InitiatorID] = []) {
        self.mediumPresent = mediumPresent
        self.trayOpen = trayOpen
        self.locked = locked
        self.ejectPending = ejectPending
        self.generation = generation
        self.lockedBy = lockedBy
        self.initiators = initiators
    }
}

/// Who removed a medium without the host asking for it through `eject()` succeeding at once.
public enum EjectCause: Sendable, Equatable {
    /// START STOP UNIT with LoEj=1, Start=0 from this initiator.
    case guest(InitiatorID)
    /// A host eject that was pending on a lock, completed when the guest allowed removal
    /// (PREVENT ALLOW with Prevent=0 by the last preventing initiator, or its detach).
    case deferred
}

/// Told about what the guest side did.
///
/// Lock rule: every method is called AFTER the drive released its own lock, on the thread that
/// ran the command (or `detach`), so an implementation may call back into the drive.
/// The drive holds its delegate weakly.
public protocol OpticalDriveDelegate: AnyObject, Sendable {
    /// A medium left the drive without a successful host `eject()` call.
    func opticalDrive(_ drive: OpticalDrive, didEject medium: Medium, cause: EjectCause)
    /// The drive became locked (first preventing initiator) or unlocked (last one allowed or
    /// detached). `initiator` is the one whose command or detach caused the change.
    func opticalDrive(_ drive: OpticalDrive, lockChanged locked: Bool, by initiator: InitiatorID)
}
