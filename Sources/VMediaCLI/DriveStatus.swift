/// A drive's `status` file (SPEC 2.3): one `key=value` per line, keys in file order.
///
/// Keys `vmedia` does not know are kept and passed through to JSON as strings, so that a
/// newer daemon's additions (such as logged-in initiators) are never hidden.
public struct DriveStatus: Sendable, Equatable {
    public private(set) var pairs: [(key: String, value: String)]

    public static func == (a: DriveStatus, b: DriveStatus) -> Bool {
        a.pairs.map { "\($0.key)=\($0.value)" } == b.pairs.map { "\($0.key)=\($0.value)" }
    }

    /// Parses the file's text. Lines without `=` are ignored; the value is everything after
    /// the first `=` (a `last_error` reason may itself contain `=`).
    public init(parsing text: String) {
        pairs = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            guard let eq = line.firstIndex(of: "=") else { continue }
            pairs.append((String(line[..<eq]), String(line[line.index(after: eq)...])))
        }
    }

    public subscript(key: String) -> String? {
        pairs.last(where: { $0.key == key })?.value
    }

    public var isLoaded: Bool { self["state"] == "loaded" }
    public var media: String? { nonEmpty("media") }
    public var size: Int64? { self["size"].flatMap { Int64($0) } }
    public var isLocked: Bool { self["locked"] == "yes" }
    public var ejectPending: Bool { self["eject_pending"] == "yes" }
    public var generation: Int64? { self["generation"].flatMap { Int64($0) } }
    public var lastError: String? { nonEmpty("last_error") }

    private func nonEmpty(_ key: String) -> String? {
        guard let v = self[key], !v.isEmpty else { return nil }
        return v
    }

    /// The STATE column: `empty` or `loaded`, with `,locked` and `,eject_pending` when so.
    public var stateSummary: String {
        var s = self["state"] ?? "unknown"
        if isLocked { s += ",locked" }
        if ejectPending { s += ",eject_pending" }
        return s
    }

    /// Keys whose values are numbers in JSON.
    static let integerKeys: Set<String> = ["size", "blocks", "block_size", "generation", "openers"]
    /// Keys whose `yes`/`no` values are booleans in JSON.
    static let booleanKeys: Set<String> = ["sharable", "locked", "eject_pending"]

    /// The status as a JSON object with the file's own key names, in the file's order:
    /// numbers as numbers, `yes`/`no` as booleans, empty values as `null`.
    public var json: JSONValue {
        .object(pairs.map { pair in
            let (key, value) = pair
            if value.isEmpty { return (key, .null) }
            if DriveStatus.integerKeys.contains(key), let n = Int64(value) { return (key, .int(n)) }
            if DriveStatus.booleanKeys.contains(key), value == "yes" || value == "no" {
                return (key, .bool(value == "yes"))
            }
            return (key, .string(value))
        })
    }
}
