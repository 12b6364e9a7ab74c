import Glibc

/// What a user writes into the tree's control files, parsed from the raw bytes. Pure
/// functions with no I/O, so that they can be tested and fuzzed on their own; every refusal
/// is a `VMError` with the errno the contract names and a one-line reason.
public enum ControlText {
    /// One request written to `media`: an absolute path or a `library/` NAME.
    ///
    /// Trailing newlines (and carriage returns) end the request and are dropped. Refused with
    /// `EINVAL`: nothing left (an empty path), a NUL byte anywhere (the kernel would cut the
    /// path there and load something else than what was written), any other control
    /// character (a path read back from `media` or `status` must stay one line), bytes that
    /// are not UTF-8. A path of PATH_MAX bytes or more is `ENAMETOOLONG`.
    public static func mediaRequest<C: Collection<UInt8>>(_ bytes: C) throws(VMError) -> String {
        var text = Array(bytes)
        while let last = text.last, last == 0x0A || last == 0x0D { text.removeLast() }
        guard !text.isEmpty else { throw VMError(EINVAL, "empty path") }
        guard text.count < Int(PATH_MAX) else { throw VMError(ENAMETOOLONG, "path longer than PATH_MAX") }
        try checkPrintable(text, what: "the path")
        guard let path = String(validating: text, as: UTF8.self) else {
            throw VMError(EINVAL, "the path is not valid UTF-8")
        }
        return path
    }

    /// Refuses NUL and the other C0 control characters and DEL in a name or path.
    public static func checkPrintable<C: Collection<UInt8>>(_ bytes: C, what: String) throws(VMError) {
        if bytes.contains(0) { throw VMError(EINVAL, "\(what) holds a NUL byte") }
        if bytes.contains(where: { $0 < 0x20 || $0 == 0x7F }) {
            throw VMError(EINVAL, "\(what) holds a control character (newline, tab, escape, ...)")
        }
    }

    /// `library/NAME/sharable`: `yes` or `no`, in any case, with surrounding white space.
    public static func sharable<C: Collection<UInt8>>(_ bytes: C) throws(VMError) -> Bool {
        let word = String(decoding: Array(bytes), as: UTF8.self).trimmingWhitespace().lowercased()
        switch word {
        case "yes": return true
        case "no": return false
        default: throw VMError(EINVAL, "sharable takes yes or no")
        }
    }

    /// A guest's `initiators`: one iSCSI initiator name per line; blank lines and `#`
    /// comments are ignored, duplicates (compared without case) kept once.
    public static func initiators<C: Collection<UInt8>>(_ bytes: C) throws(VMError) -> [String] {
        guard let text = String(validating: Array(bytes), as: UTF8.self) else {
            throw VMError(EINVAL, "initiators is not valid UTF-8")
        }
        var names: [String] = []
        for raw in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = String(raw).trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard ISCSINames.isValidInitiator(line) else {
                throw VMError(EINVAL, "'\(line.prefix(64))' is not an iSCSI initiator name (iqn., eui. or naa.)")
            }
            if !names.contains(where: { $0.lowercased() == line.lowercased() }) { names.append(line) }
        }
        return names
    }

    /// A guest's `chap`: `user:secret` on one line (the secret at least 12 characters, as
    /// RFC 7143 asks), or nothing to require no CHAP. Returns the line as stored.
    public static func chap<C: Collection<UInt8>>(_ bytes: C) throws(VMError) -> String {
        guard let text = String(validating: Array(bytes), as: UTF8.self) else {
            throw VMError(EINVAL, "chap is not valid UTF-8")
        }
        let line = text.trimmingWhitespace()
        if line.isEmpty { return "" }
        guard !line.contains("\n") else { throw VMError(EINVAL, "chap takes one line") }
        try checkPrintable(line.utf8, what: "chap")
        guard let colon = line.firstIndex(of: ":"), colon != line.startIndex, line.index(after: colon) != line.endIndex else {
            throw VMError(EINVAL, "chap takes user:secret")
        }
        guard line[line.index(after: colon)...].utf8.count >= 12 else {
            throw VMError(EINVAL, "a CHAP secret needs at least 12 characters (RFC 7143)")
        }
        return line
    }
}
