/// Calendar dates as recorded on discs, converted to POSIX times.
enum CivilTime {
    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    static func daysSinceEpoch(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let shiftedMonth = month > 2 ? month - 3 : month + 9
        let dayOfYear = (153 * shiftedMonth + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// POSIX seconds for a local date-time at `offsetMinutes` east of UTC; `nil` for nonsense
    /// fields (month 0, day 40...), which discs use to mean "not recorded".
    static func seconds(year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64,
                        second: Int64, offsetMinutes: Int64) -> Int64? {
        guard (1...12).contains(month), (1...31).contains(day), (0...23).contains(hour),
              (0...59).contains(minute), (0...60).contains(second) else { return nil }
        let days = daysSinceEpoch(year: year, month: month, day: day)
        return days * 86_400 + hour * 3600 + minute * 60 + second - offsetMinutes * 60
    }

    /// ECMA-119 9.1.5: 7 bytes (years since 1900, month, day, hour, minute, second, GMT offset
    /// in 15-minute steps).
    static func iso7(_ b: [UInt8], at o: Int) -> Timespec {
        let offset = Int64(Int8(bitPattern: b.u8(o + 6)))
        guard let s = seconds(year: 1900 + Int64(b.u8(o)), month: Int64(b.u8(o + 1)), day: Int64(b.u8(o + 2)),
                              hour: Int64(b.u8(o + 3)), minute: Int64(b.u8(o + 4)), second: Int64(b.u8(o + 5)),
                              offsetMinutes: (-48...52).contains(offset) ? offset * 15 : 0) else { return .zero }
        return Timespec(seconds: s)
    }

    /// ECMA-119 8.4.26.1: 17 bytes, "YYYYMMDDHHMMSScc" in ASCII digits plus the GMT offset byte.
    static func iso17(_ b: [UInt8], at o: Int) -> Timespec {
        func number(_ from: Int, _ digits: Int) -> Int64? {
            var value: Int64 = 0
            for i in 0..<digits {
                let c = b.u8(o + from + i)
                guard c >= 0x30 && c <= 0x39 else { return nil }
                value = value * 10 + Int64(c - 0x30)
            }
            return value
        }
        guard let year = number(0, 4), let month = number(4, 2), let day = number(6, 2),
              let hour = number(8, 2), let minute = number(10, 2), let second = number(12, 2),
              let centis = number(14, 2) else { return .zero }
        let offset = Int64(Int8(bitPattern: b.u8(o + 16)))
        guard year > 0, let s = seconds(year: year, month: month, day: day, hour: hour, minute: minute, second: second,
                                        offsetMinutes: (-48...52).contains(offset) ? offset * 15 : 0) else { return .zero }
        return Timespec(seconds: s, nanoseconds: Int32(centis) * 10_000_000)
    }

    /// ECMA-167 1/7.3 timestamp (12 bytes): type and time zone, year, month, day, hour, minute,
    /// second, centiseconds, hundreds of microseconds, microseconds.
    static func udf(_ b: [UInt8], at o: Int) -> Timespec {
        let typeAndZone = b.le16(o)
        var zone = Int64(typeAndZone & 0x0FFF)
        if zone >= 0x800 { zone -= 0x1000 }          // 12-bit two's complement minutes
        if zone == -2047 || zone < -1440 || zone > 1440 { zone = 0 }  // -2047: not specified
        let year = Int64(Int16(bitPattern: b.le16(o + 2)))
        guard year != 0, let s = seconds(year: year, month: Int64(b.u8(o + 4)), day: Int64(b.u8(o + 5)),
                                         hour: Int64(b.u8(o + 6)), minute: Int64(b.u8(o + 7)), second: Int64(b.u8(o + 8)),
                                         offsetMinutes: zone) else { return .zero }
        let micros = Int64(min(b.u8(o + 9), 99)) * 10_000 + Int64(min(b.u8(o + 10), 99)) * 100 + Int64(min(b.u8(o + 11), 99))
        return Timespec(seconds: s, nanoseconds: Int32(micros * 1000))
    }
}
