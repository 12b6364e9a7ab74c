import Foundation
import Glibc

/// One client's part of the tree: its guests, and its drives with the image each holds.
struct TreeModel: Equatable, CustomStringConvertible {
    struct Drive: Equatable { var guest: String; var media: String? }
    var guests: Set<String> = []
    var drives: [String: Drive] = [:]

    var description: String {
        let g = guests.sorted().joined(separator: ",")
        let d = drives.sorted { $0.key < $1.key }
            .map { "\($0.value.guest)/\($0.key):\($0.value.media.map { ($0 as NSString).lastPathComponent } ?? "-")" }
        return "guests[\(g)] drives[\(d.joined(separator: " "))]"
    }
}

/// One operation a crash client began (its BEGIN line).
struct LoggedOp {
    let seq: Int
    let kind: String
    let target: String
    let arg: String
    let expect: Int32

    var guest: String { String(target.split(separator: "/")[0]) }
    var drive: String { String(target.split(separator: "/").last!) }

    /// The tree after this operation took effect, or nil if it could not have (the
    /// contract refuses it in `m`).
    func applied(to m: TreeModel) -> TreeModel? {
        var m = m
        switch kind {
        case "mkguest":
            guard !m.guests.contains(target) else { return nil }
            m.guests.insert(target)
        case "rmguest":
            guard m.guests.contains(target), !m.drives.values.contains(where: { $0.guest == target }) else { return nil }
            m.guests.remove(target)
        case "mkdrive":
            guard m.guests.contains(guest), m.drives[drive] == nil else { return nil }
            m.drives[drive] = .init(guest: guest, media: nil)
        case "rmdrive":
            guard let d = m.drives[drive], d.guest == guest, d.media == nil else { return nil }
            m.drives[drive] = nil
        case "insert":
            guard m.drives[drive]?.guest == guest,
                  !m.drives.contains(where: { $0.key != drive && $0.value.media == arg }) else { return nil }
            m.drives[drive]!.media = arg
        case "eject":
            guard m.drives[drive]?.guest == guest, m.drives[drive]?.media != nil else { return nil }
            m.drives[drive]!.media = nil
        default:
            return nil
        }
        return m
    }
}

/// Follows one crash client's log and decides, at each quiet moment, which trees its log
/// allows: every acknowledged change applied, every refused one not, each one in flight
/// (no outcome, or UNKNOWN) either applied whole or not at all.
final class ClientLog {
    enum Outcome: Equatable { case ok, refused(Int32), unknown }

    let id: Int
    let path: String
    private var consumed = 0
    /// The tree last seen and accepted; the operations since, in order, with their outcomes.
    private(set) var baseline = TreeModel()
    private var steps: [(op: LoggedOp, outcome: Outcome?)] = []
    /// In-flight operations that a check found already applied (the client was paused
    /// between the syscall's return and its log line): their outcome, when logged, must not
    /// be a refusal.
    private var settled: Set<Int> = []
    private(set) var acknowledged = 0, refused = 0, unknown = 0, inFlightAtCheck = 0
    private(set) var violations: [String] = []

    init(id: Int, path: String) { self.id = id; self.path = path }

    private func violation(_ s: String) { violations.append("client \(id): \(s)") }

    /// Reads the complete lines the client has written since the last call.
    func readNewLines() {
        guard let data = FileManager.default.contents(atPath: path), data.count > consumed else { return }
        let fresh = data[consumed...]
        guard let lastNL = fresh.lastIndex(of: 0x0A) else { return }
        let text = String(decoding: data[consumed...lastNL], as: UTF8.self)
        consumed = lastNL + 1
        for line in text.split(separator: "\n") { take(line.split(separator: " ").map(String.init)) }
    }

    private func take(_ f: [String]) {
        guard f.count >= 2, let seq = Int(f[0]) else { return }   // SYNC lines
        if f[1] == "BEGIN", f.count == 6 {
            steps.append((LoggedOp(seq: seq, kind: f[2], target: f[3], arg: f[4], expect: Int32(f[5]) ?? -1), nil))
            return
        }
        let outcome: Outcome
        switch f[1] {
        case "OK": outcome = .ok; acknowledged += 1
        case "REFUSED": outcome = .refused(Int32(f[2]) ?? -1); refused += 1
        case "UNKNOWN": outcome = .unknown; unknown += 1
        default: return violation("unreadable log line \(f.joined(separator: " "))")
        }
        if settled.remove(seq) != nil {
            // Told after a check that already saw it done: the two must agree.
            if case .refused(let e) = outcome { violation("#\(seq) was refused (errno \(e)), but the tree after the restart had it") }
            return
        }
        guard let i = steps.lastIndex(where: { $0.op.seq == seq }) else { return violation("outcome for unknown #\(seq)") }
        steps[i].outcome = outcome
        let op = steps[i].op
        switch outcome {
        case .ok where op.expect != 0:
            violation("#\(seq) \(op.kind) \(op.target) \(op.arg) succeeded; the contract refuses it with errno \(op.expect)")
        case .refused(let e) where e != op.expect:
            violation("#\(seq) \(op.kind) \(op.target) \(op.arg) refused with errno \(e); expected \(op.expect == 0 ? "success" : "errno \(op.expect)")")
        default: break
        }
    }

    /// The trees the log allows now, each with which uncertain steps it took as applied.
    func allowedTrees() -> [(tree: TreeModel, applied: [Int: Bool])] {
        let uncertain = steps.indices.filter { steps[$0].outcome == nil || steps[$0].outcome == .unknown }
        guard uncertain.count <= 12 else {
            violation("\(uncertain.count) operations with unknown outcome between two checks")
            return []
        }
        var out: [(TreeModel, [Int: Bool])] = []
        for mask in 0..<(1 << uncertain.count) {
            var m: TreeModel? = baseline
            var applied: [Int: Bool] = [:]
            for (i, step) in steps.enumerated() {
                guard let cur = m else { break }
                let take: Bool
                if let u = uncertain.firstIndex(of: i) {
                    take = mask & (1 << u) != 0
                    applied[step.op.seq] = take
                } else {
                    take = step.outcome == .ok
                }
                m = take ? step.op.applied(to: cur) : cur
            }
            if let m { out.append((m, applied)) }
        }
        return out
    }

    /// Compares the tree seen after a restart with what the log allows; the seen tree is the
    /// baseline from now on.
    func check(observed: TreeModel, round: Int) {
        readNewLines()
        let allowed = allowedTrees()
        let matches = allowed.filter { $0.tree == observed }
        if matches.isEmpty {
            let acked = steps.filter { $0.outcome == .ok }.map { "#\($0.op.seq) \($0.op.kind) \($0.op.target) \(($0.op.arg as NSString).lastPathComponent)" }
            let open = steps.filter { $0.outcome == nil || $0.outcome == .unknown }.map { "#\($0.op.seq) \($0.op.kind) \($0.op.target)" }
            violation("round \(round): the tree is \(observed); the log allows \(Set(allowed.map(\.tree.description)).sorted()) "
                      + "(from \(baseline); acknowledged since: \(acked.suffix(6)); uncertain: \(open))")
        }
        // An operation still in flight was either done by the daemon that died (the check
        // shows it) or not yet begun: the client was paused between its BEGIN line and the
        // syscall, which then goes to the new daemon and is judged with the next check.
        var carried: [(op: LoggedOp, outcome: Outcome?)] = []
        for step in steps where step.outcome == nil {
            inFlightAtCheck += 1
            if !matches.isEmpty && matches.allSatisfy({ $0.applied[step.op.seq] == true }) {
                settled.insert(step.op.seq)
            } else {
                carried.append(step)
            }
        }
        baseline = observed
        steps = carried
    }
}
