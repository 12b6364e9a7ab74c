import Synchronization

/// One reader of the `events` stream: the lines posted since it subscribed, up to a bound.
public final class EventSubscription: Sendable {
    public let id: UInt64
    /// Lines waiting to be read, how many were dropped since the last read, and the rest of
    /// a line that a short read took only the start of.
    private struct Queue {
        var lines: [String] = []
        var dropped = 0
        var partial: ArraySlice<UInt8> = []
        /// Bytes of `lines` with their newlines, so that the stream's size is cheap to give.
        var lineBytes = 0
        /// Bytes handed to the reader so far.
        var delivered: UInt64 = 0
    }
    private let queue = Mutex(Queue())
    /// Called (outside every lock) when a line arrives; the FS layer wakes its readers.
    let wake: @Sendable () -> Void
    static let capacity = 4096

    init(id: UInt64, wake: @escaping @Sendable () -> Void) { self.id = id; self.wake = wake }

    func push(_ line: String) {
        queue.withLock { q in
            if q.lines.count >= EventSubscription.capacity {
                q.lineBytes -= q.lines.removeFirst().utf8.count + 1
                q.dropped += 1
            }
            q.lines.append(line)
            q.lineBytes += line.utf8.count + 1
        }
        wake()
    }

    /// Takes at most `maxBytes` of the stream, whole lines where they fit: a read shorter
    /// than the next line gets its start, and the rest stays for the next read (bash's
    /// `read` takes one byte at a time). A reader that fell behind gets one `overflow` line
    /// saying how many lines it lost. Nil when nothing is waiting.
    public func take(maxBytes: Int) -> [UInt8]? {
        guard maxBytes > 0 else { return nil }
        return queue.withLock { q -> [UInt8]? in
            var out: [UInt8] = []
            func give(_ bytes: ArraySlice<UInt8>) -> Bool {
                let room = maxBytes - out.count
                if bytes.count <= room {
                    out += bytes
                    return true
                }
                out += bytes.prefix(room)
                q.partial = bytes.dropFirst(room)
                return false
            }
            if !q.partial.isEmpty {
                let rest = q.partial
                q.partial = []
                guard give(rest) else { return finish(&q, out) }
            }
            if q.dropped > 0 {
                let line = Array("\(rfc3339(nowNanos())) overflow - dropped=\(q.dropped)\n".utf8)
                q.dropped = 0
                guard give(line[...]) else { return finish(&q, out) }
            }
            var taken = 0
            for line in q.lines {
                guard out.count < maxBytes else { break }
                taken += 1
                q.lineBytes -= line.utf8.count + 1
                if !give((Array(line.utf8) + [0x0A])[...]) { break }
            }
            q.lines.removeFirst(taken)
            return finish(&q, out)
        }
    }

    private func finish(_ q: inout Queue, _ out: [UInt8]) -> [UInt8]? {
        q.delivered += UInt64(out.count)
        return out.isEmpty ? nil : out
    }

    public var hasData: Bool { queue.withLock { !$0.lines.isEmpty || $0.dropped > 0 || !$0.partial.isEmpty } }

    /// The stream as a follower sees it: every byte handed out so far plus those waiting.
    /// `tail -f` reads on when this grows.
    public var streamLength: UInt64 {
        queue.withLock { UInt64($0.delivered) + UInt64($0.lineBytes + $0.partial.count) + ($0.dropped > 0 ? 1 : 0) }
    }
}

/// The `events` stream: every reader sees each line posted after it subscribed. A slow
/// reader never holds anyone up: past `EventSubscription.capacity` lines its oldest are
/// dropped and it is told how many.
public final class EventBus: Sendable {
    private let subscribers = Mutex<[UInt64: EventSubscription]>([:])
    private let nextID = Atomic<UInt64>(1)

    public init() {}

    public func subscribe(wake: @escaping @Sendable () -> Void) -> EventSubscription {
        let s = EventSubscription(id: nextID.add(1, ordering: .relaxed).oldValue, wake: wake)
        subscribers.withLock { $0[s.id] = s }
        return s
    }

    public func unsubscribe(_ s: EventSubscription) { _ = subscribers.withLock { $0.removeValue(forKey: s.id) } }

    /// Posts `TIME KIND GUEST/DRIVE key=value...`. Values holding spaces, quotes or
    /// backslashes are double-quoted with backslash escapes.
    public func post(_ kind: String, _ object: String, _ fields: [(String, String)] = []) {
        var line = "\(rfc3339(nowNanos())) \(kind) \(object.isEmpty ? "-" : object)"
        for (k, v) in fields { line += " \(k)=\(EventBus.quote(v))" }
        let targets = subscribers.withLock { Array($0.values) }
        for s in targets { s.push(line) }
    }

    static func quote(_ v: String) -> String {
        let v = v.replacingNewlines()
        guard v.isEmpty || v.contains(where: { $0 == " " || $0 == "\"" || $0 == "\\" || $0 == "\t" }) else { return v }
        var out = "\""
        for c in v {
            if c == "\"" || c == "\\" { out.append("\\") }
            out.append(c)
        }
        return out + "\""
    }
}
