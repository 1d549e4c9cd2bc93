import Foundation

/// Calendar arithmetic for the date operators, in whole milliseconds since the Unix epoch on the
/// proleptic Gregorian calendar (as MongoDB computes it): civil dates from day numbers and back
/// (Howard Hinnant's `days_from_civil`), ISO weeks, and time zones. Only the zone's offset at
/// an instant comes from Foundation's time zone database; the rest is integer arithmetic, so
/// results never depend on the host's locale or calendar settings.
enum DateArithmetic {
    static let millisecondsPerDay: Int64 = 86_400_000

    /// A local time broken into its fields.
    struct Parts: Equatable {
        var year: Int64
        var month: Int64
        var day: Int64
        var hour: Int64
        var minute: Int64
        var second: Int64
        var millisecond: Int64
        /// 1 (Sunday) … 7 (Saturday), as `$dayOfWeek`.
        var dayOfWeek: Int64
        /// 1 … 366.
        var dayOfYear: Int64
    }

    /// The day number (days since 1970-01-01) of a civil date; months outside 1…12 carry.
    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let totalMonths = year * 12 + (month - 1)
        let y0 = floorDivide(totalMonths, 12)
        let m = totalMonths - y0 * 12 + 1
        let y = m <= 2 ? y0 - 1 : y0
        let era = floorDivide(y, 400)
        let yearOfEra = y - era * 400
        let monthIndex = m > 2 ? m - 3 : m + 9
        let dayOfYear = (153 * monthIndex + 2) / 5 + 1 - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468 + (day - 1)
    }

    /// The civil date of a day number.
    static func civil(_ dayNumber: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = dayNumber + 719_468
        let era = floorDivide(z, 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Dates the calendar arithmetic accepts: ±100,000,000 days around 1970 (JavaScript's
    /// range), so no intermediate value can overflow 64 bits.
    static func isCalendarRange(_ milliseconds: Int64) -> Bool { milliseconds.magnitude <= 8_640_000_000_000_000 }

    static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let quotient = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? quotient - 1 : quotient
    }

    static func isLeap(_ year: Int64) -> Bool { (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 }

    static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// The fields of local time `local` (milliseconds since the epoch, shifted by the zone's offset).
    static func parts(local: Int64) -> Parts {
        let dayNumber = floorDivide(local, millisecondsPerDay)
        // Exact in wrapping arithmetic (the true value is in 0..<one day), and no trap at the
        // ends of the 64-bit range, where `dayNumber * millisecondsPerDay` itself overflows.
        let within = local &- dayNumber &* millisecondsPerDay
        let date = civil(dayNumber)
        return Parts(
            year: date.year, month: date.month, day: date.day, hour: within / 3_600_000, minute: within / 60_000 % 60,
            second: within / 1000 % 60, millisecond: within % 1000, dayOfWeek: weekday(dayNumber) + 1,
            dayOfYear: dayNumber - days(year: date.year, month: 1, day: 1) + 1)
    }

    /// 0 (Sunday) … 6 (Saturday) of a day number (1970-01-01 was a Thursday).
    static func weekday(_ dayNumber: Int64) -> Int64 { ((dayNumber + 4) % 7 + 7) % 7 }

    /// ISO 8601 week-numbering year, week (1…53) and day (1 Monday … 7 Sunday).
    static func isoWeek(local: Int64) -> (year: Int64, week: Int64, day: Int64) {
        let dayNumber = floorDivide(local, millisecondsPerDay)
        let isoDay = (weekday(dayNumber) + 6) % 7 + 1
        // The Thursday of this week decides the year.
        let thursday = dayNumber - isoDay + 4
        let year = civil(thursday).year
        let week = (thursday - days(year: year, month: 1, day: 1)) / 7 + 1
        return (year, week, isoDay)
    }

    /// The day number of day `isoDay` of ISO week `week` of `isoYear`.
    static func days(isoYear: Int64, week: Int64, isoDay: Int64) -> Int64 {
        let january4 = days(year: isoYear, month: 1, day: 4)
        let mondayOfWeek1 = january4 - ((weekday(january4) + 6) % 7)
        return mondayOfWeek1 + (week - 1) * 7 + (isoDay - 1)
    }

    /// `$week`: weeks starting on Sunday, days before the year's first Sunday in week 0.
    static func sundayWeek(_ parts: Parts) -> Int64 { (parts.dayOfYear - 1 + 7 - (parts.dayOfWeek - 1)) / 7 }

    // MARK: - Time zones

    /// A time zone argument: an Olson identifier or a fixed UTC offset.
    struct Zone: Sendable {
        let fixedOffsetMilliseconds: Int64?
        let zone: TimeZone?

        static let utc = Zone(fixedOffsetMilliseconds: 0, zone: nil)

        /// Parses "Europe/Paris", "UTC", "+05:30", "-0800" or "+03"; throws 40485 otherwise.
        init(_ text: String) throws(QueryError) {
            if let offset = Zone.parseOffset(text) {
                self.init(fixedOffsetMilliseconds: offset, zone: nil)
                return
            }
            guard text == "UTC" || text == "GMT" || text.contains("/"), let zone = TimeZone(identifier: text) else {
                throw QueryError(.location(40485), "unrecognized time zone identifier: \"\(text)\"")
            }
            self.init(fixedOffsetMilliseconds: nil, zone: zone)
        }

        private init(fixedOffsetMilliseconds: Int64?, zone: TimeZone?) {
            self.fixedOffsetMilliseconds = fixedOffsetMilliseconds
            self.zone = zone
        }

        private static func parseOffset(_ text: String) -> Int64? {
            let bytes = Array(text.utf8)
            guard let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") else { return nil }
            let digits = bytes.dropFirst().filter { $0 != UInt8(ascii: ":") }
            guard [2, 4].contains(digits.count), digits.allSatisfy({ (48...57).contains($0) }),
                bytes.count == 1 + digits.count || (bytes.count == 6 && bytes[3] == UInt8(ascii: ":"))
            else { return nil }
            let values = digits.map { Int64($0 - 48) }
            let hours = values[0] * 10 + values[1]
            let minutes = values.count == 4 ? values[2] * 10 + values[3] : 0
            guard hours <= 23, minutes <= 59 else { return nil }
            return (sign == UInt8(ascii: "-") ? -1 : 1) * (hours * 3_600_000 + minutes * 60_000)
        }

        /// The zone's offset from UTC at instant `utc`.
        func offset(atUTC utc: Int64) -> Int64 {
            if let fixedOffsetMilliseconds { return fixedOffsetMilliseconds }
            guard let zone else { return 0 }
            return Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(utc) / 1000))) * 1000
        }

        func local(_ utc: Int64) -> Int64 { utc &+ offset(atUTC: utc) }

        /// The instant whose local time is `local` (for a local time skipped or repeated by a
        /// daylight-saving change, the one found from the offset before it).
        func utc(fromLocal local: Int64) -> Int64 {
            let guess = local - offset(atUTC: local)
            return local - offset(atUTC: guess)
        }
    }

    /// The `timezone` of an operator's arguments (UTC when absent); nil when it is null.
    static func zone(_ value: BSONValue?, _ name: String) throws(QueryError) -> Zone? {
        switch value {
        case nil: return .utc
        case .null?, .undefined?: return nil
        case .string(let text)?: return try Zone(text)
        default: throw QueryError(.location(40517), "timezone must evaluate to a string, found \(value?.typeAlias ?? "missing")")
        }
    }

    // MARK: - Units

    enum Unit: String {
        case year, quarter, month, week, day, hour, minute, second, millisecond

        var fixedMilliseconds: Int64? {
            switch self {
            case .hour: 3_600_000
            case .minute: 60_000
            case .second: 1000
            case .millisecond: 1
            default: nil
            }
        }
    }

    static func unit(_ value: BSONValue?, _ name: String) throws(QueryError) -> Unit {
        guard case .string(let text)? = value else {
            throw QueryError(.location(5439013), "\(name) requires 'unit' to be a string, but got \(value?.typeAlias ?? "missing")")
        }
        guard let unit = Unit(rawValue: text) else { throw QueryError(.location(5439014), "\(name) parameter 'unit' value cannot be recognized as a time unit: \(text)") }
        return unit
    }

    /// 0 (Sunday) … 6 (Saturday) from a `startOfWeek` name ("monday", "mon", …; default Sunday).
    static func startOfWeek(_ value: BSONValue?, _ name: String) throws(QueryError) -> Int64 {
        guard let value, value != .null else { return 0 }
        guard case .string(let text) = value else {
            throw QueryError(.location(5439015), "\(name) requires 'startOfWeek' to be a string, but got \(value.typeAlias)")
        }
        let names = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
        let lowered = text.lowercased()
        guard let index = names.firstIndex(where: { $0 == lowered || $0.prefix(3) == lowered }) else {
            throw QueryError(.location(5439016), "\(name) parameter 'startOfWeek' value cannot be recognized as a day of a week: \(text)")
        }
        return Int64(index)
    }

    /// `startDate` plus `amount` units, in `zone` for calendar units; nil on overflow.
    static func add(_ utc: Int64, _ unit: Unit, _ amount: Int64, zone: Zone) -> Int64? {
        if let size = unit.fixedMilliseconds {
            let (delta, overflow) = amount.multipliedReportingOverflow(by: size)
            guard !overflow else { return nil }
            let (sum, overflowed) = utc.addingReportingOverflow(delta)
            return overflowed ? nil : sum
        }
        guard amount.magnitude < 1_000_000_000, isCalendarRange(utc) else { return nil }
        let local = zone.local(utc)
        let dayNumber = floorDivide(local, millisecondsPerDay)
        let timeOfDay = local - dayNumber * millisecondsPerDay
        var newDay: Int64
        switch unit {
        case .day: newDay = dayNumber + amount
        case .week: newDay = dayNumber + amount * 7
        default:
            let months = amount * (unit == .year ? 12 : unit == .quarter ? 3 : 1)
            let date = civil(dayNumber)
            let total = date.year * 12 + (date.month - 1) + months
            let year = floorDivide(total, 12)
            let month = total - year * 12 + 1
            // The last day of a shorter month: Jan 31 + 1 month is Feb 28 (or 29).
            newDay = days(year: year, month: month, day: min(date.day, daysInMonth(year: year, month: month)))
        }
        guard abs(newDay) < 100_000_000 else { return nil }
        return zone.utc(fromLocal: newDay * millisecondsPerDay + timeOfDay)
    }

    /// How many `unit` boundaries lie between two instants, counted in `zone` (`$dateDiff`).
    static func difference(from start: Int64, to end: Int64, _ unit: Unit, zone: Zone, startOfWeek: Int64) -> Int64 {
        if unit == .millisecond { return end &- start }
        let localStart = zone.local(start)
        let localEnd = zone.local(end)
        if let size = unit.fixedMilliseconds { return floorDivide(localEnd, size) - floorDivide(localStart, size) }
        let startDay = floorDivide(localStart, millisecondsPerDay)
        let endDay = floorDivide(localEnd, millisecondsPerDay)
        switch unit {
        case .day: return endDay - startDay
        case .week: return floorDivide(endDay + 4 - startOfWeek, 7) - floorDivide(startDay + 4 - startOfWeek, 7)
        default:
            let a = civil(startDay)
            let b = civil(endDay)
            switch unit {
            case .year: return b.year - a.year
            case .quarter: return (b.year * 4 + (b.month - 1) / 3) - (a.year * 4 + (a.month - 1) / 3)
            default: return (b.year * 12 + b.month) - (a.year * 12 + a.month)
            }
        }
    }

    /// The start of the `binSize`-unit bin holding `utc` (`$dateTrunc`); bins are counted from
    /// 2000-01-01T00:00 local time, as MongoDB counts them.
    static func truncate(_ utc: Int64, _ unit: Unit, binSize: Int64, zone: Zone, startOfWeek: Int64) -> Int64? {
        // A bin longer than the calendar range holds everything in one bin; refuse it instead of overflowing.
        let unitMilliseconds: Int64 = switch unit {
        case .year: 366 * millisecondsPerDay
        case .quarter: 92 * millisecondsPerDay
        case .month: 31 * millisecondsPerDay
        case .week: 7 * millisecondsPerDay
        case .day: millisecondsPerDay
        default: unit.fixedMilliseconds ?? 1
        }
        let (span, overflow) = binSize.multipliedReportingOverflow(by: unitMilliseconds)
        guard !overflow, span <= 2 * 8_640_000_000_000_000, isCalendarRange(utc) else { return nil }
        let local = zone.local(utc)
        let reference = days(year: 2000, month: 1, day: 1)
        switch unit {
        case .year, .quarter, .month:
            let date = civil(floorDivide(local, millisecondsPerDay))
            let months = (date.year - 2000) * 12 + (date.month - 1)
            let size = binSize * (unit == .year ? 12 : unit == .quarter ? 3 : 1)
            let start = floorDivide(months, size) * size
            let year = 2000 + floorDivide(start, 12)
            let month = start - floorDivide(start, 12) * 12 + 1
            return zone.utc(fromLocal: days(year: year, month: month, day: 1) * millisecondsPerDay)
        case .week:
            // The first `startOfWeek` day on or after 2000-01-01.
            let firstWeek = reference + ((startOfWeek - weekday(reference)) % 7 + 7) % 7
            let size = 7 * binSize * millisecondsPerDay
            let bin = floorDivide(local - firstWeek * millisecondsPerDay, size)
            return zone.utc(fromLocal: firstWeek * millisecondsPerDay + bin * size)
        case .day:
            let size = binSize * millisecondsPerDay
            let bin = floorDivide(local - reference * millisecondsPerDay, size)
            return zone.utc(fromLocal: reference * millisecondsPerDay + bin * size)
        default:
            let size = binSize * (unit.fixedMilliseconds ?? 1)
            if unit == .hour || unit == .minute {
                // Hours and minutes are bins of local clock time.
                let bin = floorDivide(local - reference * millisecondsPerDay, size)
                return zone.utc(fromLocal: reference * millisecondsPerDay + bin * size)
            }
            let origin = reference * millisecondsPerDay
            return utc - (((utc - origin) % size) + size) % size
        }
    }
}
