import Dispatch
import Glibc
import SCSI
import Synchronization

/// Told when a drive's media or lock changed, whoever changed it (an insert or eject
/// through the files, a guest's eject, a deferred eject, a backing image changing), so that
/// the filesystem can drop what the kernel cached. Called on the changing thread, after
/// the change is recorded and with no lock of the host held.
public protocol HostObserver: AnyObject, Sendable {
    func driveChanged(_ driveID: Int64)
}

/// The live parts of a drive: its emulator and who has its `disc` open.
public final class DriveRuntime: Sendable {
    public let driveID: Int64
    public let emulator: OpticalDrive
    /// Open handles of `disc` (shown as `openers=` in status).
    public let openers = Atomic<Int>(0)
    /// The emulator holds its delegate weakly; the runtime keeps it alive.
    let guestSide: GuestSide

    init(driveID: Int64, emulator: OpticalDrive, guestSide: GuestSide) {
        self.driveID = driveID; self.emulator = emulator; self.guestSide = guestSide
        emulator.setDelegate(guestSide)
    }
}

/// An image file or device as the sharing rules see it: its device and inode.
struct ImageKey: Hashable {
    var device: UInt64
    var inode: UInt64
    init(_ i: ImageIdentity) { device = i.device; inode = i.inode }
}

/// Everything the host knows, guarded by `Host.state`.
struct HostState {
    var guests: [Int64: GuestRecord] = [:]
    var guestByName: [String: Int64] = [:]
    /// Written only through `add`, `update` and `removeDrive`, which keep the indexes.
    private(set) var drives: [Int64: DriveRecord] = [:]
    private(set) var driveByName: [String: Int64] = [:]
    /// The drives holding each image file or device (by device and inode): an insert
    /// checks sharing against these, not against every drive of the host.
    private(set) var drivesByImage: [ImageKey: Set<Int64>] = [:]
    /// The drives of each guest, by id: listing a guest or picking a new drive's LUN
    /// looks at that guest's drives only, not at every drive of the host.
    private(set) var driveIDsByGuest: [Int64: Set<Int64>] = [:]
    var runtimes: [Int64: DriveRuntime] = [:]
    var sharable: [String: Bool] = [:]
    /// Initiators logged in over iSCSI, by guest name.
    var sessions: [String: [String]] = [:]

    func drives(ofGuest id: Int64) -> [DriveRecord] {
        (driveIDsByGuest[id] ?? []).compactMap { drives[$0] }.sorted { $0.name < $1.name }
    }

    /// Adds a drive to the tables (name, guest and image indexes included).
    mutating func add(_ d: DriveRecord) {
        drives[d.id] = d
        driveByName[d.name] = d.id
        driveIDsByGuest[d.guestID, default: []].insert(d.id)
        indexImage(of: d)
    }

    /// Replaces a drive's record (same id, guest and name), keeping the image index.
    mutating func update(_ d: DriveRecord) {
        if let old = drives[d.id] { unindexImage(of: old) }
        drives[d.id] = d
        indexImage(of: d)
    }

    /// Removes a drive from the tables (name, guest and image indexes included).
    mutating func removeDrive(id: Int64) {
        guard let d = drives.removeValue(forKey: id) else { return }
        driveByName[d.name] = nil
        driveIDsByGuest[d.guestID]?.remove(id)
        if driveIDsByGuest[d.guestID]?.isEmpty == true { driveIDsByGuest[d.guestID] = nil }
        unindexImage(of: d)
    }

    /// One other drive that holds the image `identity` names, if any (an image shared by a
    /// thousand drives is not copied out a thousand times to answer this).
    func anotherDrive(holding identity: ImageIdentity, except id: Int64) -> DriveRecord? {
        guard let ids = drivesByImage[ImageKey(identity)] else { return nil }
        for other in ids where other != id {
            if let d = drives[other] { return d }
        }
        return nil
    }

    private mutating func indexImage(of d: DriveRecord) {
        if let m = d.loaded { drivesByImage[ImageKey(m.identity), default: []].insert(d.id) }
    }

    private mutating func unindexImage(of d: DriveRecord) {
        guard let m = d.loaded else { return }
        let k = ImageKey(m.identity)
        drivesByImage[k]?.remove(d.id)
        if drivesByImage[k]?.isEmpty == true { drivesByImage[k] = nil }
    }

    func label(_ d: DriveRecord) -> String { "\(guests[d.guestID]?.name ?? "?")/\(d.name)" }
}

/// The virtual media host: guests, their drives, what is loaded where, and the repository.
/// Every change is written to the `StateStore` before it is acknowledged.
///
/// Locking: `state` is the one lock of the domain. It may be held while calling into a
/// drive's emulator (the emulator's own lock is taken after it, never before) and while
/// writing the store. It is never held while calling an observer, posting an event or
/// opening an image as a user.
public final class Host: Sendable {
    public let store: StateStore
    public let events = EventBus()
    public let configuration: MediaConfiguration
    let policy: MediaPolicy
    let state = Mutex(HostState())
    private let observerBox = Mutex<(any HostObserver)?>(nil)
    /// Where guest-side callbacks (which arrive on a command's thread) are finished.
    let background = DispatchQueue(label: "vmediafs.host")

    /// Opens the state and brings every guest and drive back, reloading media whose images
    /// are unchanged and emptying (with `last_error`) drives whose images vanished or changed.
    public init(store: StateStore, configuration: MediaConfiguration) throws(VMError) {
        self.store = store
        self.configuration = configuration
        self.policy = MediaPolicy(configuration)
        let guests = try store.loadGuests()
        let drives = try store.loadDrives()
        let sharable = try store.loadSharable()
        state.withLock { st in
            for g in guests { st.guests[g.id] = g; st.guestByName[g.name] = g.id }
            st.sharable = sharable
        }
        // Every image is opened again, as the user who loaded it. One shared deadline: a
        // file system that does not answer delays the mount by at most one open timeout.
        let deadline = nowNanos() + Nanos(configuration.openTimeout * 1e9)
        for d in drives { try restore(d, deadline: deadline) }
    }

    /// Tells the host the device number of vmediafs's own mount: images inside it are refused.
    public func mounted(device: UInt64) { policy.ownMount.device.store(device, ordering: .relaxed) }

    public func setObserver(_ o: (any HostObserver)?) { observerBox.withLock { $0 = o } }
    func notifyChanged(_ driveID: Int64) { observerBox.withLock { $0 }?.driveChanged(driveID) }

    func makeRuntime(for d: DriveRecord) -> DriveRuntime {
        let identity = DeviceIdentity(vendor: "VMEDIAFS", product: "Virtual DVD-ROM", revision: "1.0",
                                      serial: "VMFS\(String(d.id))", identifier: UInt64(d.id))
        return DriveRuntime(driveID: d.id, emulator: OpticalDrive(identity: identity, lun: UInt64(d.lun)),
                            guestSide: GuestSide(host: self, driveID: d.id))
    }

    // MARK: reading

    public func guests() -> [GuestRecord] { state.withLock { $0.guests.values.sorted { $0.name < $1.name } } }
    public func guest(named name: String) -> GuestRecord? { state.withLock { st in st.guestByName[name].flatMap { st.guests[$0] } } }
    public func guest(id: Int64) -> GuestRecord? { state.withLock { $0.guests[id] } }
    public func drives(ofGuest id: Int64) -> [DriveRecord] { state.withLock { $0.drives(ofGuest: id) } }
    public func drive(id: Int64) -> DriveRecord? { state.withLock { $0.drives[id] } }
    public func drive(named name: String) -> DriveRecord? { state.withLock { st in st.driveByName[name].flatMap { st.drives[$0] } } }
    public func runtime(driveID: Int64) -> DriveRuntime? { state.withLock { $0.runtimes[driveID] } }
    public var driveCount: Int { state.withLock { $0.drives.count } }

    // MARK: guests

    public func createGuest(_ name: String, owner: Ownership) throws(VMError) -> GuestRecord {
        try Names.validate(name, what: "guest")
        let g = try state.withLock { (st: inout HostState) throws(VMError) -> GuestRecord in
            guard st.guestByName[name] == nil else { throw VMError(EEXIST, "guest \(name) exists") }
            let now = nowNanos()
            let id = try store.addGuest(name: name, owner: owner, at: now,
                                        history: HistoryEvent(time: now, kind: "create", guest: name, drive: "", uid: owner.uid, detail: "guest"))
            let g = GuestRecord(id: id, name: name, owner: owner, created: now, changed: now)
            st.guests[id] = g
            st.guestByName[name] = id
            return g
        }
        events.post("create", name, [("uid", String(owner.uid))])
        Log.info("guest \(name) created by uid \(owner.uid)")
        return g
    }

    public func removeGuest(_ name: String, by user: Credentials) throws(VMError) {
        try state.withLock { (st: inout HostState) throws(VMError) in
            guard let id = st.guestByName[name] else { throw VMError(ENOENT, "no guest \(name)") }
            guard st.drives(ofGuest: id).isEmpty else { throw VMError(ENOTEMPTY, "guest \(name) still has drives") }
            try store.removeGuest(id: id, history: HistoryEvent(time: nowNanos(), kind: "remove", guest: name, drive: "", uid: user.uid, detail: "guest"))
            st.guests[id] = nil
            st.guestByName[name] = nil
            st.sessions[name] = nil   // a new guest of the same name starts with none logged in
        }
        events.post("remove", name, [("uid", String(user.uid))])
        Log.info("guest \(name) removed by uid \(user.uid)")
    }

    // MARK: drives

    public func createDrive(guest guestName: String, name: String, owner: Ownership) throws(VMError) -> DriveRecord {
        try Names.validate(name, what: "drive")
        let d = try state.withLock { (st: inout HostState) throws(VMError) -> DriveRecord in
            guard let gid = st.guestByName[guestName] else { throw VMError(ENOENT, "no guest \(guestName)") }
            if let other = st.driveByName[name], let od = st.drives[other] {
                throw VMError(EEXIST, "drive \(name) exists (\(st.label(od)))")
            }
            let used = Set(st.drives(ofGuest: gid).map(\.lun))
            var lun = 0
            while used.contains(lun) { lun += 1 }
            let now = nowNanos()
            let id = try store.addDrive(guestID: gid, name: name, lun: lun, owner: owner, at: now,
                                        history: HistoryEvent(time: now, kind: "create", guest: guestName, drive: name, uid: owner.uid, detail: "lun=\(lun)"))
            let d = DriveRecord(id: id, guestID: gid, name: name, lun: lun, owner: owner, created: now, changed: now, loaded: nil, lastError: "")
            st.add(d)
            st.runtimes[id] = makeRuntime(for: d)
            return d
        }
        events.post("create", "\(guestName)/\(name)", [("lun", String(d.lun)), ("uid", String(owner.uid))])
        Log.info("drive \(guestName)/\(name) created (lun \(d.lun)) by uid \(owner.uid)")
        return d
    }

    public func removeDrive(guest guestName: String, name: String, by user: Credentials) throws(VMError) {
        let runtime = try state.withLock { (st: inout HostState) throws(VMError) -> DriveRuntime? in
            guard let gid = st.guestByName[guestName], let id = st.driveByName[name], let d = st.drives[id], d.guestID == gid else {
                throw VMError(ENOENT, "no drive \(guestName)/\(name)")
            }
            guard d.loaded == nil else { throw VMError(EBUSY, "drive \(guestName)/\(name) has media loaded; eject it first") }
            try store.removeDrive(id: id, history: HistoryEvent(time: nowNanos(), kind: "remove", guest: guestName, drive: name, uid: user.uid, detail: ""))
            st.removeDrive(id: id)
            return st.runtimes.removeValue(forKey: id)
        }
        runtime?.emulator.setDelegate(nil)
        events.post("remove", "\(guestName)/\(name)", [("uid", String(user.uid))])
        Log.info("drive \(guestName)/\(name) removed by uid \(user.uid)")
    }

    // MARK: owners

    /// A guest's or a drive's directory, for chmod and chown.
    public enum Directory: Sendable {
        case guest(Int64), drive(Int64)
    }

    /// Gives a guest's or a drive's directory a new owner, group and mode (chmod, chown),
    /// durable before it returns; the directory's ctime and mtime move to now.
    public func setOwnership(_ directory: Directory, _ owner: Ownership) throws(VMError) {
        try state.withLock { (st: inout HostState) throws(VMError) in
            let now = nowNanos()
            switch directory {
            case .guest(let id):
                guard var g = st.guests[id] else { throw VMError(ENOENT, "no such guest") }
                try store.setOwner(table: .guests, id: id, owner: owner, at: now)
                g.owner = owner
                g.changed = now
                st.guests[id] = g
            case .drive(let id):
                guard var d = st.drives[id] else { throw VMError(ENOENT, "no such drive") }
                try store.setOwner(table: .drives, id: id, owner: owner, at: now)
                d.owner = owner
                d.changed = now
                st.update(d)
            }
        }
    }
}

/// Receives what a guest did to a drive (eject, lock) and finishes it in the domain.
final class GuestSide: OpticalDriveDelegate {
    unowned let host: Host
    let driveID: Int64
    init(host: Host, driveID: Int64) { self.host = host; self.driveID = driveID }

    func opticalDrive(_ drive: OpticalDrive, didEject medium: Medium, cause: EjectCause) {
        host.ejectedBySCSI(driveID: driveID, cause: cause)
    }

    func opticalDrive(_ drive: OpticalDrive, lockChanged locked: Bool, by initiator: InitiatorID) {
        host.lockChanged(driveID: driveID, locked: locked)
    }
}
