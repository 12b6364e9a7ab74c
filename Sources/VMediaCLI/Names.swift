import Foundation

/// Checks on names typed by the user, before they become paths.
///
/// `vmedia` leaves the naming rules (SPEC 2: characters, length, reserved names) to the
/// filesystem, which answers `EINVAL`: that is the contract and scripts see the same. It only
/// refuses what would make the path point somewhere else: empty, `.`, `..`, a `/` or a NUL.
public enum Names {
    public static func check(_ name: String, as kind: String) throws(VMediaError) {
        if name.isEmpty || name == "." || name == ".." || name.contains("/") || name.contains("\0") {
            throw VMediaError(name, "not a valid \(kind) name", exit: .notFound, errno: .invalid)
        }
    }

    /// Orders names as a person would: `vtopt2` before `vtopt10`.
    public static func naturalOrder(_ a: String, _ b: String) -> Bool {
        a.compare(b, options: [.numeric]) == .orderedAscending
    }

    /// The default drive name with the lowest free number: `vtopt0`, `vtopt1`, …
    public static func lowestFreeDriveName(taken: Set<String>, prefix: String = "vtopt") -> String {
        var n = 0
        while taken.contains("\(prefix)\(n)") { n += 1 }
        return "\(prefix)\(n)"
    }
}
