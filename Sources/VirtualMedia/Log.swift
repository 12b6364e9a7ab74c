import Glibc
import Synchronization

/// The daemon's log: one line per event worth an administrator's attention. Lines go to
/// standard error (the journal, under systemd) and, once the daemon has detached from its
/// terminal, to syslog.
public enum Log {
    private static let toSyslog = Atomic<Bool>(false)

    /// Sends later lines to syslog (after daemonizing, when stderr is /dev/null).
    public static func useSyslog() {
        openlog("vmediafs", LOG_PID, LOG_DAEMON)
        toSyslog.store(true, ordering: .relaxed)
    }

    public static func info(_ message: String) { emit(LOG_INFO, message) }
    public static func warning(_ message: String) { emit(LOG_WARNING, message) }
    public static func error(_ message: String) { emit(LOG_ERR, message) }

    private static func emit(_ level: Int32, _ message: String) {
        let line = "vmediafs: " + message.replacingNewlines() + "\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
        if toSyslog.load(ordering: .relaxed) {
            message.replacingNewlines().withCString { msg in
                withVaList([msg]) { vsyslog(level, "%s", $0) }
            }
        }
    }
}

extension String {
    /// The text on one line: log and status values must never span lines. Newlines become
    /// spaces; other control characters (NUL, escape, ...) are written as `\xNN`.
    func replacingNewlines() -> String {
        guard unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return self }
        var out = ""
        for u in unicodeScalars {
            switch u.value {
            case 0x0A, 0x0D: out += " "
            case 0..<0x20, 0x7F:
                let hex = String(u.value, radix: 16)
                out += "\\x" + (hex.count < 2 ? "0" + hex : hex)
            default: out.unicodeScalars.append(u)
            }
        }
        return out
    }
}

/// RFC 3339 UTC with milliseconds, e.g. 2026-11-22T18:42:16.123Z.
func rfc3339(_ nanos: Nanos) -> String {
    var t = time_t(nanos / 1_000_000_000)
    var tmv = tm()
    gmtime_r(&t, &tmv)
    let ms = Int((nanos / 1_000_000) % 1000)
    func pad(_ v: Int32, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
    return "\(pad(tmv.tm_year + 1900, 4))-\(pad(tmv.tm_mon + 1, 2))-\(pad(tmv.tm_mday, 2))T"
        + "\(pad(tmv.tm_hour, 2)):\(pad(tmv.tm_min, 2)):\(pad(tmv.tm_sec, 2)).\(pad(Int32(ms), 3))Z"
}
