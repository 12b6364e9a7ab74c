import Foundation

/// Peak resident memory of this process from /proc (Linux), for the figures in
/// docs/reliability.md: `reset()` sets the peak (VmHWM) back to the current RSS, `report` prints
/// how far it rose since.
enum MemoryProbe {
    private static func field(_ name: String) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }

    /// Starts a measurement; returns the resident set size now, in KiB.
    static func reset() -> Int {
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
        return field("VmRSS")
    }

    /// Prints and returns how many KiB the peak rose above `baseline`.
    @discardableResult
    static func report(_ what: String, since baseline: Int) -> Int {
        let grown = field("VmHWM") - baseline
        print("memory: \(what): peak RSS +\(grown / 1024) MiB (\(grown) KiB) over \(baseline / 1024) MiB")
        return grown
    }
}
