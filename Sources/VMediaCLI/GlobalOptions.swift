/// Options that every subcommand takes and that may also come before the subcommand, as
/// `virsh -c`, `git -C` and `kubectl --context` take theirs: `vmedia --mount DIR lsvopt`
/// means `vmedia lsvopt --mount DIR`.
public enum GlobalOptions {
    /// Options taking a value (as `--name VALUE` or `--name=VALUE`).
    static let valued: Set<String> = ["--mount"]
    /// Flags.
    static let flags: Set<String> = ["--json"]

    /// The arguments with the global options written before the subcommand moved right after
    /// it, in their order; anything else (an unknown option first, `--help`, no subcommand)
    /// is left as it is, for the parser to judge.
    public static func reorder(_ arguments: [String]) -> [String] {
        var moved: [String] = []
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            if flags.contains(a) || valued.contains(where: { a.hasPrefix($0 + "=") }) {
                moved.append(a)
                i += 1
            } else if valued.contains(a), i + 1 < arguments.count {
                moved += [a, arguments[i + 1]]
                i += 2
            } else {
                break
            }
        }
        guard !moved.isEmpty, i < arguments.count, !arguments[i].hasPrefix("-") else { return arguments }
        return [arguments[i]] + moved + arguments[(i + 1)...]
    }
}
