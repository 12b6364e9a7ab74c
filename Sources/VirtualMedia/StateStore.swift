import Glibc
import Synchronization

/// The one place that holds vmediafs's durable state: guests, drives, loaded media,
/// sharable flags and history, in one SQLite database (WAL, synchronous=FULL: each
/// acknowledged change is on disk, including its WAL frame, before the caller hears of it).
///
/// One daemon per database: an exclusive `flock` on `STATE.lock` is held for the life of
/// the store. Every method runs in one transaction.
public final class StateStore: Sendable {
    private let db: Mutex<Database>
    private let checkpointer: Checkpointer
    private let lockFD: Int32
    public let path: String

    /// The schema as a list of migrations; `PRAGMA user_version` counts those applied.
    static let migrations: [String] = [
        """
        CREATE TABLE guests(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
            uid INTEGER NOT NULL, gid INTEGER NOT NULL, mode INTEGER NOT NULL,
            created_ns INTEGER NOT NULL, changed_ns INTEGER NOT NULL);
        CREATE TABLE drives(id INTEGER PRIMARY KEY AUTOINCREMENT,
            guest_id INTEGER NOT NULL REFERENCES guests(id), name TEXT NOT NULL UNIQUE,
            lun INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL, mode INTEGER NOT NULL,
            created_ns INTEGER NOT NULL, changed_ns INTEGER NOT NULL, last_error TEXT NOT NULL DEFAULT '',
            UNIQUE(guest_id, lun));
        CREATE TABLE loaded(drive_id INTEGER PRIMARY KEY REFERENCES drives(id) ON DELETE CASCADE,
            path TEXT NOT NULL, kind TEXT NOT NULL, dev INTEGER NOT NULL, ino INTEGER NOT NULL,
            size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, loaded_by INTEGER NOT NULL, loaded_at_ns INTEGER NOT NULL);
        CREATE TABLE media(path TEXT PRIMARY KEY, sharable INTEGER NOT NULL);
        CREATE TABLE history(id INTEGER PRIMARY KEY AUTOINCREMENT, time_ns INTEGER NOT NULL, kind TEXT NOT NULL,
            guest TEXT NOT NULL, drive TEXT NOT NULL, uid INTEGER NOT NULL, detail TEXT NOT NULL);
        """,
        // 2: who may reach a guest over iSCSI (one IQN per line) and its CHAP "user:secret".
        """
        ALTER TABLE guests ADD COLUMN initiators TEXT NOT NULL DEFAULT '';
        ALTER TABLE guests ADD COLUMN chap TEXT NOT NULL DEFAULT '';
        """,
        // 3: URL media: the server's validator (ETag or Last-Modified) at insert.
        """
        ALTER TABLE loaded ADD COLUMN validator TEXT NOT NULL DEFAULT '';
        """,
    ]
    /// 'VMFS': marks a database as ours, so that another program's file is never taken over.
    static let applicationID: Int64 = 0x564D_4653

    /// Opens (creating if needed) the state at `path`, refusing if another daemon holds it,
    /// if it is not a vmediafs database, or if SQLite finds it damaged.
    public init(path: String) throws(VMError) {
        self.path = path
        let dir = (path as String).split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if !dir.isEmpty { try StateStore.makeDirectories(dir) }
        let lock = Glibc.open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw VMError.system(errno, "cannot create lock file \(path).lock") }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            close(lock)
            throw VMError(EBUSY, "state database \(path) is in use by another vmediafs (lock \(path).lock held)")
        }
        lockFD = lock
        let pid = "\(getpid())\n"
        _ = ftruncate(lock, 0)
        _ = pwrite(lock, pid, pid.utf8.count, 0)
        let database: Database
        do {
            database = try Database(path: path)
            try StateStore.prepare(database)
            checkpointer = try Checkpointer(path: path)
        } catch {
            close(lock)
            throw error
        }
        db = Mutex(database)
    }

    deinit {
        checkpointer.drain()
        close(lockFD)
    }

    /// Waits for a background checkpoint that is under way (see `Checkpointer`).
    func drainCheckpoints() { checkpointer.drain() }

    /// SQLite's automatic checkpoint threshold on the store's connection (0: off).
    var automaticCheckpointPages: Int64 {
        db.withLock { (d: inout Database) -> Int64 in (try? d.query("PRAGMA wal_autocheckpoint"))?.first?.first?.int ?? -1 }
    }

    private static func makeDirectories(_ dir: String) throws(VMError) {
        var built = dir.hasPrefix("/") ? "" : "."
        for part in dir.split(separator: "/") {
            built += "/" + part
            if mkdir(built, 0o700) != 0 && errno != EEXIST { throw VMError.system(errno, "cannot create \(built)") }
        }
    }

    private static func prepare(_ db: Database) throws(VMError) {
        let check = try db.query("PRAGMA quick_check")
        guard check.first?.first?.text == "ok" else {
            throw VMError(EIO, "state database \(db.path) is damaged (quick_check: \(check.first?.first?.text ?? "no answer")); it was left untouched")
        }
        let app = try db.query("PRAGMA application_id").first?.first?.int ?? 0
        let version = try db.query("PRAGMA user_version").first?.first?.int ?? 0
        let tables = try db.query("SELECT count(*) FROM sqlite_master").first?.first?.int ?? 0
        if app != applicationID && (tables > 0 || version > 0) {
            throw VMError(EINVAL, "\(db.path) is not a vmediafs state database; it was left untouched")
        }
        guard version <= migrations.count else {
            throw VMError(EINVAL, "state database \(db.path) has schema \(version), newer than this vmediafs (\(migrations.count))")
        }
        let mode = try db.query("PRAGMA journal_mode=WAL").first?.first?.text ?? ""
        guard mode.lowercased() == "wal" else { throw VMError(EIO, "state database \(db.path): cannot enable WAL") }
        try db.query("PRAGMA synchronous=FULL")
        try db.query("PRAGMA foreign_keys=ON")
        // Checkpoints run on their own connection and queue (Checkpointer), not in a commit.
        try db.query("PRAGMA wal_autocheckpoint=0")
        for v in Int(version)..<migrations.count {
            try db.transaction { () throws(VMError) in
                for stmt in migrations[v].split(separator: ";") where !stmt.allSatisfy({ $0.isWhitespace }) {
                    try db.query(String(stmt))
                }
                try db.query("PRAGMA application_id=\(applicationID)")
                try db.query("PRAGMA user_version=\(v + 1)")
            }
        }
    }

    @discardableResult
    private func write<T: Sendable>(_ history: HistoryEvent?, _ body: (Database) throws(VMError) -> T) throws(VMError) -> T {
        let v = try db.withLock { (db: inout Database) throws(VMError) -> T in
            let d = db
            return try d.transaction { () throws(VMError) -> T in
                let v = try body(d)
                if let h = history { try StateStore.append(h, to: d) }
                return v
            }
        }
        checkpointer.committed()
        return v
    }

    private static func append(_ h: HistoryEvent, to db: Database) throws(VMError) {
        try db.query("INSERT INTO history(time_ns, kind, guest, drive, uid, detail) VALUES(?,?,?,?,?,?)",
                     [.int(h.time), .text(h.kind), .text(h.guest), .text(h.drive), .int(Int64(h.uid)), .text(h.detail)])
    }

    // MARK: reading everything at start

    public func loadGuests() throws(VMError) -> [GuestRecord] {
        try db.withLock { (db: inout Database) throws(VMError) in
            try db.query("SELECT id, name, uid, gid, mode, created_ns, changed_ns, initiators, chap FROM guests ORDER BY id").map { r in
                GuestRecord(id: r[0].int, name: r[1].text,
                            owner: Ownership(uid: UInt32(r[2].int), gid: UInt32(r[3].int), mode: UInt32(r[4].int)),
                            created: r[5].int, changed: r[6].int,
                            initiators: r[7].text.split(separator: "\n").map(String.init), chap: r[8].text)
            }
        }
    }

    public func loadDrives() throws(VMError) -> [DriveRecord] {
        try db.withLock { (db: inout Database) throws(VMError) in
            try db.query("""
                SELECT d.id, d.guest_id, d.name, d.lun, d.uid, d.gid, d.mode, d.created_ns, d.changed_ns, d.last_error,
                       l.path, l.kind, l.dev, l.ino, l.size, l.mtime_ns, l.loaded_by, l.loaded_at_ns, l.validator
                FROM drives d LEFT JOIN loaded l ON l.drive_id = d.id ORDER BY d.id
                """).map { r in
                var loaded: LoadedMedia?
                if let path = r[10].optionalText {
                    loaded = LoadedMedia(path: path, kind: MediaKind(rawValue: r[11].text) ?? .file,
                                         identity: ImageIdentity(device: UInt64(bitPattern: r[12].int), inode: UInt64(bitPattern: r[13].int),
                                                                 size: UInt64(r[14].int), modificationNanos: r[15].int,
                                                                 validator: r[18].optionalText ?? ""),
                                         loadedBy: UInt32(r[16].int), loadedAt: r[17].int)
                }
                return DriveRecord(id: r[0].int, guestID: r[1].int, name: r[2].text, lun: Int(r[3].int),
                                   owner: Ownership(uid: UInt32(r[4].int), gid: UInt32(r[5].int), mode: UInt32(r[6].int)),
                                   created: r[7].int, changed: r[8].int, loaded: loaded, lastError: r[9].text)
            }
        }
    }

    public func loadSharable() throws(VMError) -> [String: Bool] {
        try db.withLock { (db: inout Database) throws(VMError) in
            var out: [String: Bool] = [:]
            for r in try db.query("SELECT path, sharable FROM media") { out[r[0].text] = r[1].int != 0 }
            return out
        }
    }

    public func history(limit: Int = 1000) throws(VMError) -> [HistoryEvent] {
        try db.withLock { (db: inout Database) throws(VMError) in
            try db.query("SELECT time_ns, kind, guest, drive, uid, detail FROM history ORDER BY id DESC LIMIT ?", [.int(Int64(limit))])
                .reversed().map { r in
                    HistoryEvent(time: r[0].int, kind: r[1].text, guest: r[2].text, drive: r[3].text,
                                 uid: UInt32(r[4].int), detail: r[5].text)
                }
        }
    }

    // MARK: changes, each one transaction with its history line

    public func addGuest(name: String, owner: Ownership, at time: Nanos, history: HistoryEvent?) throws(VMError) -> Int64 {
        try write(history) { (db) throws(VMError) in
            try db.query("INSERT INTO guests(name, uid, gid, mode, created_ns, changed_ns) VALUES(?,?,?,?,?,?)",
                         [.text(name), .int(Int64(owner.uid)), .int(Int64(owner.gid)), .int(Int64(owner.mode)), .int(time), .int(time)])
            return db.lastInsertID
        }
    }

    public func removeGuest(id: Int64, history: HistoryEvent?) throws(VMError) {
        try write(history) { (db) throws(VMError) in try db.query("DELETE FROM guests WHERE id=?", [.int(id)]) }
    }

    /// Records who may log in to a guest over iSCSI and its CHAP credentials.
    public func setGuestAccess(id: Int64, initiators: [String], chap: String, history: HistoryEvent?) throws(VMError) {
        try write(history) { (db) throws(VMError) in
            try db.query("UPDATE guests SET initiators=?, chap=? WHERE id=?",
                         [.text(initiators.joined(separator: "\n")), .text(chap), .int(id)])
        }
    }

    public func addDrive(guestID: Int64, name: String, lun: Int, owner: Ownership, at time: Nanos,
                         history: HistoryEvent?) throws(VMError) -> Int64 {
        try write(history) { (db) throws(VMError) in
            try db.query("""
                INSERT INTO drives(guest_id, name, lun, uid, gid, mode, created_ns, changed_ns) VALUES(?,?,?,?,?,?,?,?)
                """, [.int(guestID), .text(name), .int(Int64(lun)), .int(Int64(owner.uid)), .int(Int64(owner.gid)),
                      .int(Int64(owner.mode)), .int(time), .int(time)])
            return db.lastInsertID
        }
    }

    public func removeDrive(id: Int64, history: HistoryEvent?) throws(VMError) {
        try write(history) { (db) throws(VMError) in
            try db.query("DELETE FROM loaded WHERE drive_id=?", [.int(id)])
            try db.query("DELETE FROM drives WHERE id=?", [.int(id)])
        }
    }

    /// Records a guest's or a drive's owner, group and mode (`table`: "guests" or "drives").
    public func setOwner(table: OwnedTable, id: Int64, owner: Ownership, at time: Nanos) throws(VMError) {
        try write(nil) { (db) throws(VMError) in
            try db.query("UPDATE \(table.rawValue) SET uid=?, gid=?, mode=?, changed_ns=? WHERE id=?",
                         [.int(Int64(owner.uid)), .int(Int64(owner.gid)), .int(Int64(owner.mode)), .int(time), .int(id)])
        }
    }

    /// Records what a drive holds now (nil: empty) and its last error.
    /// Records what a drive holds now, its `last_error`, and (when given) the time its media
    /// came or went, which is the drive directory's mtime.
    public func setLoaded(driveID: Int64, _ media: LoadedMedia?, lastError: String, changedAt: Nanos? = nil,
                          history: HistoryEvent?) throws(VMError) {
        try write(history) { (db) throws(VMError) in
            try db.query("DELETE FROM loaded WHERE drive_id=?", [.int(driveID)])
            if let m = media {
                try db.query("""
                    INSERT INTO loaded(drive_id, path, kind, dev, ino, size, mtime_ns, loaded_by, loaded_at_ns, validator)
                    VALUES(?,?,?,?,?,?,?,?,?,?)
                    """, [.int(driveID), .text(m.path), .text(m.kind.rawValue), .int(Int64(bitPattern: m.identity.device)),
                          .int(Int64(bitPattern: m.identity.inode)), .int(Int64(m.identity.size)),
                          .int(m.identity.modificationNanos), .int(Int64(m.loadedBy)), .int(m.loadedAt),
                          .text(m.identity.validator)])
            }
            try db.query("UPDATE drives SET last_error=? WHERE id=?", [.text(lastError), .int(driveID)])
            if let changedAt { try db.query("UPDATE drives SET changed_ns=? WHERE id=?", [.int(changedAt), .int(driveID)]) }
        }
    }

    public func setLastError(driveID: Int64, _ text: String, history: HistoryEvent?) throws(VMError) {
        try write(history) { (db) throws(VMError) in
            try db.query("UPDATE drives SET last_error=? WHERE id=?", [.text(text), .int(driveID)])
        }
    }

    public func setSharable(path: String, _ sharable: Bool, history: HistoryEvent?) throws(VMError) {
        try write(history) { (db) throws(VMError) in
            try db.query("INSERT INTO media(path, sharable) VALUES(?,?) ON CONFLICT(path) DO UPDATE SET sharable=excluded.sharable",
                         [.text(path), .int(sharable ? 1 : 0)])
        }
    }
}

/// The tables whose rows are directories of the tree, with an owner, group and mode.
public enum OwnedTable: String, Sendable {
    case guests, drives
}
