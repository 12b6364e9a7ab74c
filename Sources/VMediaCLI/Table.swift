/// A plain text table: a header row in capitals, columns separated by two spaces, the last
/// column unpadded, so that `awk '{print $2}'` and `column -t` both work.
public struct Table: Sendable {
    public var header: [String]
    public var rows: [[String]] = []

    public init(_ header: String...) { self.header = header }

    public mutating func add(_ row: [String]) { rows.append(row) }

    public func rendered() -> String {
        let all = [header] + rows
        var widths = [Int](repeating: 0, count: header.count)
        for row in all {
            for (i, cell) in row.enumerated() where i < widths.count {
                widths[i] = max(widths[i], cell.count)
            }
        }
        var out = ""
        for row in all {
            var line = ""
            for (i, cell) in row.enumerated() {
                if i == row.count - 1 {
                    line += cell
                } else {
                    line += cell + String(repeating: " ", count: widths[i] - cell.count + 2)
                }
            }
            out += line + "\n"
        }
        return out
    }
}

public enum SizeFormat {
    /// Bytes in binary units as `ls -h` prints them: `2048` → `2.0K`, `734003200` → `700M`.
    public static func human(_ bytes: Int64) -> String {
        let units = ["B", "K", "M", "G", "T", "P"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(bytes)B" }
        if value < 10 {
            let tenths = (value * 10).rounded(.up) / 10
            if tenths < 10 {
                let whole = Int(tenths)
                let fraction = Int((tenths * 10).rounded()) % 10
                return "\(whole).\(fraction)\(units[unit])"
            }
        }
        return "\(Int(value.rounded(.up)))\(units[unit])"
    }
}
