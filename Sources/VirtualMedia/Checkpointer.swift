import Dispatch
import Synchronization

/// Copies the WAL back into the database file off the path of acknowledged changes.
///
/// With SQLite's automatic checkpoint, the commit that crosses the WAL's threshold does the
/// checkpoint itself: more writes and two more fsyncs inside one user's insert or eject,
/// which made the slowest round trips several times the rest. The store's connection
/// turns the automatic checkpoint off, and every `interval` commits this asks a second
/// connection, on a queue of its own, for a PASSIVE checkpoint, which waits for no writer
/// and blocks none. Durability does not change: a commit is durable in the WAL (fsynced)
/// before it is acknowledged; the checkpoint only moves pages. The last connection to close
/// checkpoints whatever is left.
final class Checkpointer: Sendable {
    /// Commits between checkpoints: a few hundred pages of WAL.
    static let interval = 128

    private struct Connection: @unchecked Sendable {
        // Used only on `queue`.
        let db: Database
    }

    private let connection: Connection
    private let queue = DispatchQueue(label: "vmediafs.state.checkpoint", qos: .utility)
    private let commits = Atomic<Int>(0)
    private let pending = Atomic<Bool>(false)

    init(path: String) throws(VMError) {
        let db = try Database(path: path)
        // A first checkpoint now: it opens the WAL, so the daemon's descriptors are all
        // open from the start (the load test checks that their number stays put).
        try db.query("PRAGMA wal_checkpoint(PASSIVE)")
        connection = Connection(db: db)
    }

    /// Counts one commit; every `interval` commits, schedules a checkpoint (one at a time).
    func committed() {
        let n = commits.wrappingAdd(1, ordering: .relaxed).newValue
        guard n % Self.interval == 0, !pending.exchange(true, ordering: .acquiringAndReleasing) else { return }
        queue.async { [self] in
            pending.store(false, ordering: .releasing)
            do throws(VMError) {
                try connection.db.query("PRAGMA wal_checkpoint(PASSIVE)")
            } catch {
                Log.warning("state checkpoint: \(error.reason)")
            }
        }
    }

    /// Waits until a scheduled checkpoint has run (tests, and closing the store).
    func drain() { queue.sync {} }
}
