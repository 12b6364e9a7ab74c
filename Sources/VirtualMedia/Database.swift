import CSQLite
import Glibc

/// A value bound to or read from SQLite.
enum SQLValue: Sendable, Equatable {
    case int(Int64)
    case text(String)
    case null

    var int: Int64 { if case .int(let v) = self { return v }; return 0 }
    var text: String { if case .text(let v) = self { return v }; return "" }
    var optionalText: String? { if case .text(let v) = self { return v }; return nil }
}

/// A thin wrapper over one SQLite connection. Not thread-safe by itself: `StateStore`
/// serialises every use behind its own lock.
final class Database {
    private var db: OpaquePointer?
    let path: String

    init(path: String) throws(VMError) {
        self.path = path
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK else {
            let msg = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close(db)
            db = nil
            throw VMError(EIO, "state database \(path): \(msg)")
        }
        sqlite3_busy_timeout(db, 5000)
    }

    deinit { sqlite3_close(db) }

    private func error(_ what: String) -> VMError {
        VMError(EIO, "state database \(path): \(what): \(String(cString: sqlite3_errmsg(db)))")
    }

    /// Runs one statement with `args` bound in order; returns its rows.
    @discardableResult
    func query(_ sql: String, _ args: [SQLValue] = []) throws(VMError) -> [[SQLValue]] {
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK else { throw error(sql) }
        defer { sqlite3_finalize(stmt) }
        for (i, a) in args.enumerated() {
            let idx = Int32(i + 1)
            switch a {
            case .int(let v): sqlite3_bind_int64(stmt, idx, v)
            case .text(let s): sqlite3_bind_text(stmt, idx, s, -1, vmfs_sqlite_transient())
            case .null: sqlite3_bind_null(stmt, idx)
            }
        }
        var rows: [[SQLValue]] = []
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(sql) }
            let n = sqlite3_column_count(stmt)
            var row: [SQLValue] = []
            row.reserveCapacity(Int(n))
            for c in 0..<n {
                switch sqlite3_column_type(stmt, c) {
                case SQLITE_INTEGER: row.append(.int(sqlite3_column_int64(stmt, c)))
                case SQLITE_NULL: row.append(.null)
                default: row.append(.text(String(cString: sqlite3_column_text(stmt, c))))
                }
            }
            rows.append(row)
        }
        return rows
    }

    /// Runs `body` in one transaction: all of it is durable when this returns, or none of it.
    func transaction<T>(_ body: () throws(VMError) -> T) throws(VMError) -> T {
        try query("BEGIN IMMEDIATE")
        do {
            let v = try body()
            try query("COMMIT")
            return v
        } catch {
            _ = try? query("ROLLBACK")
            throw error
        }
    }

    var lastInsertID: Int64 { sqlite3_last_insert_rowid(db) }
}
