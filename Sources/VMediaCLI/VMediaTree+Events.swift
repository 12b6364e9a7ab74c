/// One line of the `events` file (SPEC 2.6): `TIME KIND GUEST/DRIVE key=value…`.
public struct Event: Sendable, Equatable {
    public var time: String
    public var kind: String
    /// `GUEST/DRIVE`, or `GUEST` for guest events.
    public var target: String
    public var fields: [(key: String, value: String)]
    /// The line as read.
    public var line: String

    public static func == (a: Event, b: Event) -> Bool { a.line == b.line }

    /// Splits a line into its parts. Values may be double-quoted (with `\"` and `\\`); a word
    /// without `=` continues the previous value, so that an unquoted reason with spaces
    /// stays whole.
    public init(parsing line: String) {
        self.line = line
        let words = Event.words(line)
        time = words.count > 0 ? words[0] : ""
        kind = words.count > 1 ? words[1] : ""
        target = words.count > 2 ? words[2] : ""
        fields = []
        for word in words.dropFirst(3) {
            if let eq = word.firstIndex(of: "=") {
                fields.append((String(word[..<eq]), String(word[word.index(after: eq)...])))
            } else if !fields.isEmpty {
                fields[fields.count - 1].value += " " + word
            } else {
                fields.append(("", word))
            }
        }
    }

    static func words(_ line: String) -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false, quoted = false, escaped = false
        for ch in line {
            if escaped { current.append(ch); escaped = false; continue }
            if quoted {
                if ch == "\\" { escaped = true } else if ch == "\"" { quoted = false } else { current.append(ch) }
                continue
            }
            if ch == "\"" { quoted = true; inWord = true; continue }
            if ch == " " || ch == "\t" {
                if inWord { words.append(current); current = ""; inWord = false }
                continue
            }
            current.append(ch)
            inWord = true
        }
        if inWord { words.append(current) }
        return words
    }

    /// `{"time", "kind", "target", "fields": {…}, "line"}`.
    public var json: JSONValue {
        .object([
            ("time", .string(time)), ("kind", .string(kind)), ("target", .string(target)),
            ("fields", .object(fields.map { ($0.key, .string($0.value)) })), ("line", .string(line)),
        ])
    }
}

extension VMediaTree {
    /// `events`: reads the `events` file line by line as events happen, until `line`
    /// returns false, `count` lines were read, or the stream ends (the filesystem was
    /// unmounted).
    public func followEvents(count: Int? = nil, line: (String) -> Bool) throws(VMediaError) {
        if let count, count <= 0 { return }
        var seen = 0
        do {
            try io.follow(eventsPath) { text in
                seen += 1
                guard line(text) else { return false }
                return count.map { seen < $0 } ?? true
            }
        } catch {
            throw VMediaError.from(error, subject: eventsPath, operation: .read)
        }
    }
}
