/// Renders listings as the tables people read and the JSON scripts read.
///
/// JSON key names are part of the interface: they are the tree's own names (`status` keys,
/// `library/NAME/` files) and never change meaning.
public enum Report {
    // MARK: lsguest

    public static func guests(_ guests: [GuestInfo], json: Bool) -> String {
        if json {
            return JSONValue.array(guests.map { g in
                .object([
                    ("guest", .string(g.name)), ("owner", .string(g.owner)), ("uid", .int(Int64(g.uid))),
                    ("gid", .int(Int64(g.gid))), ("mode", .string(octal(g.mode))),
                    ("drives", g.drives.map { .int(Int64($0)) } ?? .null),
                ])
            }).rendered() + "\n"
        }
        var table = Table("GUEST", "OWNER", "DRIVES")
        for g in guests { table.add([g.name, g.owner, g.drives.map(String.init) ?? "?"]) }
        return table.rendered()
    }

    // MARK: lsvopt

    public static func drives(_ drives: [DriveInfo], json: Bool) -> String {
        if json { return JSONValue.array(drives.map(\.status.json)).rendered() + "\n" }
        var table = Table("GUEST", "DRIVE", "MEDIA", "SIZE", "STATE")
        for d in drives {
            let loaded = d.status.isLoaded
            table.add([
                d.ref.guest, d.ref.drive,
                loaded ? (d.status.media ?? "?") : "No Media",
                loaded ? (d.status.size.map(SizeFormat.human) ?? "?") : "n/a",
                d.status.stateSummary,
            ])
        }
        return table.rendered()
    }

    // MARK: lsrep

    public static func library(_ entries: [LibraryEntry], json: Bool) -> String {
        if json {
            return JSONValue.array(entries.map { e in
                .object([
                    ("name", .string(e.name)), ("path", .string(e.path)), ("kind", .string(e.kind)),
                    ("size", e.size.map { .int($0) } ?? .null), ("sharable", .bool(e.sharable)),
                    ("users", .array(e.users.map { .string($0) })),
                ])
            }).rendered() + "\n"
        }
        var table = Table("NAME", "SIZE", "SHARABLE", "USERS")
        for e in entries {
            table.add([e.name, e.size.map(SizeFormat.human) ?? "?", e.sharable ? "yes" : "no",
                       e.users.isEmpty ? "-" : e.users.joined(separator: ",")])
        }
        return table.rendered()
    }

    // MARK: status, events

    public static func status(_ text: String, json: Bool) -> String {
        if json { return DriveStatus(parsing: text).json.rendered() + "\n" }
        return text.isEmpty || text.hasSuffix("\n") ? text : text + "\n"
    }

    /// One event: the line itself, or one compact JSON object per line (JSON Lines).
    public static func event(_ line: String, json: Bool) -> String {
        json ? Event(parsing: line).json.rendered(compact: true) + "\n" : line + "\n"
    }

    static func octal(_ mode: UInt32) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
