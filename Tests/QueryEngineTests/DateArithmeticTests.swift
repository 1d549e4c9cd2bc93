import Foundation
import Testing

@testable import QueryEngine

/// The calendar arithmetic behind the date operators, checked against Foundation's Gregorian
/// calendar (which it replaces on the hot path) and against fixed ISO-week facts.
@Suite struct DateArithmeticTests {
    @Test func civilDatesRoundTripAndMatchFoundation() {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        // Every 97th day from 1600 to 2400: leap centuries, negative day numbers, the epoch.
        let first = DateArithmetic.days(year: 1600, month: 1, day: 1)
        let last = DateArithmetic.days(year: 2400, month: 12, day: 31)
        for day in stride(from: first, through: last, by: 97) {
            let civil = DateArithmetic.civil(day)
            #expect(DateArithmetic.days(year: civil.year, month: civil.month, day: civil.day) == day)
            let parts = calendar.dateComponents([.year, .month, .day], from: Date(timeIntervalSince1970: Double(day) * 86_400))
            #expect(Int64(parts.year!) == civil.year && Int64(parts.month!) == civil.month && Int64(parts.day!) == civil.day)
        }
        #expect(DateArithmetic.days(year: 1970, month: 1, day: 1) == 0)
        // Months outside 1...12 carry into the year, as $dateFromParts requires.
        #expect(DateArithmetic.days(year: 2024, month: 14, day: 1) == DateArithmetic.days(year: 2025, month: 2, day: 1))
        #expect(DateArithmetic.days(year: 2024, month: 0, day: 1) == DateArithmetic.days(year: 2023, month: 12, day: 1))
    }

    @Test(arguments: [
        // (y, m, d) → ISO year, week, day
        ((2021, 1, 1), (2020, 53, 5)),
        ((2024, 1, 1), (2024, 1, 1)),
        ((2024, 12, 30), (2025, 1, 1)),
        ((2026, 12, 6), (2026, 49, 7)),
        ((2005, 1, 2), (2004, 53, 7)),
    ])
    func isoWeeks(date: (Int64, Int64, Int64), expected: (Int64, Int64, Int64)) {
        let day = DateArithmetic.days(year: date.0, month: date.1, day: date.2)
        let iso = DateArithmetic.isoWeek(local: day * DateArithmetic.millisecondsPerDay + 1234)
        #expect(iso.year == expected.0 && iso.week == expected.1 && iso.day == expected.2)
        #expect(DateArithmetic.days(isoYear: iso.year, week: iso.week, isoDay: iso.day) == day)
    }

    @Test func monthArithmeticClampsToTheMonthsLastDay() {
        let january31 = DateArithmetic.days(year: 2023, month: 1, day: 31) * DateArithmetic.millisecondsPerDay
        let added = DateArithmetic.add(january31, .month, 1, zone: .utc)!
        #expect(DateArithmetic.civil(added / DateArithmetic.millisecondsPerDay) == (2023, 2, 28))
        #expect(DateArithmetic.add(Int64.max - 10, .millisecond, 100, zone: .utc) == nil)
        #expect(DateArithmetic.difference(from: january31, to: added, .month, zone: .utc, startOfWeek: 0) == 1)
    }

    @Test func timeZonesParseOffsetsAndOlsonNames() throws {
        #expect(try DateArithmetic.Zone("+05:30").offset(atUTC: 0) == 19_800_000)
        #expect(try DateArithmetic.Zone("-0800").offset(atUTC: 0) == -28_800_000)
        #expect(try DateArithmetic.Zone("+03").offset(atUTC: 0) == 10_800_000)
        // New York: -5 h in January, -4 h in July.
        let york = try DateArithmetic.Zone("America/New_York")
        #expect(york.offset(atUTC: 1_704_067_200_000) == -18_000_000)
        #expect(york.offset(atUTC: 1_719_792_000_000) == -14_400_000)
        for bad in ["Mars/Olympus", "+25:00", "5", "EST5EDT+"] {
            #expect(throws: QueryError.self) { try DateArithmetic.Zone(bad) }
        }
    }
}
