/// `$dateFromString`: a date and time read from text, with MongoDB's `format` specifiers or,
/// without one, the ISO 8601 forms MongoDB reads (`2017-02-08`, `2017-02-08T12:10:40.787`,
/// `2017-02-08 12:10:40`, with `Z` or a `+05:30`, `+0530`, `+05` offset).
enum DateParsing {
    /// Fields read from the text; the ISO week fields replace year, month and day.
    private struct Fields {
        var year: Int64?
        var month: Int64 = 1
        var day: Int64 = 1
        var dayOfYear: Int64?
        var isoYear: Int64?
        var isoWeek: Int64 = 1
        var isoDay: Int64 = 1
        var hour: Int64 = 0
        var minute: Int64 = 0
        var second: Int64 = 0
        var millisecond: Int64 = 0
        /// The offset the text names (milliseconds east of UTC), if it names one.
        var offset: Int64?
    }

    /// A conversion failure, which `onError` catches. The text is left out of the message, as
    /// StratosDB keeps document contents out of errors and logs.
    private static func failure(_ reason: String) -> QueryError {
        QueryError(.conversionFailure, "Error parsing date string: \(reason)")
    }

    /// The local time (milliseconds from the epoch, as if in UTC) the text names, and the
    /// offset it names if any.
    static func parse(_ text: String, format: String?) throws(QueryError) -> (local: Int64, offset: Int64?) {
        var reader = Reader(Array(text.utf8))
        var fields = Fields()
        if let format {
            try read(&reader, format: format, into: &fields)
        } else {
            try readISO(&reader, into: &fields)
        }
        guard reader.atEnd else { throw failure("trailing data") }
        return (try localTime(fields), fields.offset)
    }

    private static func localTime(_ fields: Fields) throws(QueryError) -> Int64 {
        guard (0...23).contains(fields.hour), (0...59).contains(fields.minute), (0...59).contains(fields.second) else {
            throw failure("the time is out of range")
        }
        let dayNumber: Int64
        if let isoYear = fields.isoYear {
            guard (1...53).contains(fields.isoWeek), (1...7).contains(fields.isoDay) else { throw failure("the ISO week date is out of range") }
            dayNumber = DateArithmetic.days(isoYear: isoYear, week: fields.isoWeek, isoDay: fields.isoDay)
        } else {
            guard let year = fields.year else { throw failure("no year") }
            if let dayOfYear = fields.dayOfYear {
                guard (1...(DateArithmetic.isLeap(year) ? 366 : 365)).contains(dayOfYear) else { throw failure("the day of the year is out of range") }
                dayNumber = DateArithmetic.days(year: year, month: 1, day: 1) + dayOfYear - 1
            } else {
                guard (1...12).contains(fields.month), (1...DateArithmetic.daysInMonth(year: year, month: fields.month)).contains(fields.day) else {
                    throw failure("the date is out of range")
                }
                dayNumber = DateArithmetic.days(year: year, month: fields.month, day: fields.day)
            }
        }
        return dayNumber * DateArithmetic.millisecondsPerDay + fields.hour * 3_600_000 + fields.minute * 60_000 + fields.second * 1000
            + fields.millisecond
    }

    /// `YYYY-MM-DD`, then optionally `T` or a space and `HH:MM[:SS[.fraction]]`, then
    /// optionally a zone.
    private static func readISO(_ reader: inout Reader, into fields: inout Fields) throws(QueryError) {
        fields.year = try reader.number(digits: 4...4, "year")
        let separator = reader.peek
        guard separator == UInt8(ascii: "-") || separator == UInt8(ascii: "/") else { throw failure("expected a date as YYYY-MM-DD") }
        reader.skip()
        fields.month = try reader.number(digits: 1...2, "month")
        guard reader.take(separator!) else { throw failure("expected a date as YYYY-MM-DD") }
        fields.day = try reader.number(digits: 1...2, "day")
        if reader.atEnd { return }
        if reader.take(UInt8(ascii: "T")) || reader.take(UInt8(ascii: " ")) {
            fields.hour = try reader.number(digits: 1...2, "hour")
            guard reader.take(UInt8(ascii: ":")) else { throw failure("expected a time as HH:MM") }
            fields.minute = try reader.number(digits: 1...2, "minute")
            if reader.take(UInt8(ascii: ":")) {
                fields.second = try reader.number(digits: 1...2, "second")
                if reader.take(UInt8(ascii: ".")) { fields.millisecond = try reader.fraction() }
            }
        }
        _ = reader.take(UInt8(ascii: " "))
        if !reader.atEnd { fields.offset = try reader.zone() }
    }

    /// MongoDB's `$dateFromString` format specifiers: `%Y %m %d %H %M %S %L %j %G %V %u %z %Z %%`.
    private static func read(_ reader: inout Reader, format: String, into fields: inout Fields) throws(QueryError) {
        var iterator = Array(format.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                guard reader.take(byte) else { throw failure("the text does not match the format") }
                continue
            }
            guard let code = iterator.next() else { throw QueryError(.location(18535), "Unmatched '%' at end of format string") }
            switch code {
            case UInt8(ascii: "Y"): fields.year = try reader.number(digits: 4...4, "year")
            case UInt8(ascii: "m"): fields.month = try reader.number(digits: 1...2, "month")
            case UInt8(ascii: "d"): fields.day = try reader.number(digits: 1...2, "day")
            case UInt8(ascii: "H"): fields.hour = try reader.number(digits: 1...2, "hour")
            case UInt8(ascii: "M"): fields.minute = try reader.number(digits: 1...2, "minute")
            case UInt8(ascii: "S"): fields.second = try reader.number(digits: 1...2, "second")
            case UInt8(ascii: "L"): fields.millisecond = try reader.fraction()
            case UInt8(ascii: "j"): fields.dayOfYear = try reader.number(digits: 1...3, "day of the year")
            case UInt8(ascii: "G"): fields.isoYear = try reader.number(digits: 4...4, "ISO year")
            case UInt8(ascii: "V"): fields.isoWeek = try reader.number(digits: 1...2, "ISO week")
            case UInt8(ascii: "u"): fields.isoDay = try reader.number(digits: 1...1, "ISO day of the week")
            case UInt8(ascii: "z"): fields.offset = try reader.zone()
            case UInt8(ascii: "Z"):
                let negative = reader.take(UInt8(ascii: "-"))
                if !negative { _ = reader.take(UInt8(ascii: "+")) }
                let minutes = try reader.number(digits: 1...4, "offset in minutes")
                fields.offset = (negative ? -minutes : minutes) * 60_000
            case UInt8(ascii: "%"):
                guard reader.take(UInt8(ascii: "%")) else { throw failure("the text does not match the format") }
            default:
                throw QueryError(.location(18536), "Invalid format character '%\(Character(Unicode.Scalar(code)))' in format string")
            }
        }
    }

    /// A cursor over the text's bytes.
    private struct Reader {
        let bytes: [UInt8]
        var position = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { position == bytes.count }
        var peek: UInt8? { atEnd ? nil : bytes[position] }
        mutating func skip() { position += 1 }

        mutating func take(_ byte: UInt8) -> Bool {
            guard peek == byte else { return false }
            position += 1
            return true
        }

        mutating func number(digits: ClosedRange<Int>, _ what: String) throws(QueryError) -> Int64 {
            var value: Int64 = 0
            var count = 0
            while count < digits.upperBound, let byte = peek, (48...57).contains(byte) {
                value = value * 10 + Int64(byte - 48)
                count += 1
                position += 1
            }
            guard count >= digits.lowerBound else { throw DateParsing.failure("expected the \(what)") }
            return value
        }

        /// Digits after a decimal point, as milliseconds (more than three are read and dropped).
        mutating func fraction() throws(QueryError) -> Int64 {
            var milliseconds: Int64 = 0
            var count = 0
            while let byte = peek, (48...57).contains(byte) {
                if count < 3 { milliseconds = milliseconds * 10 + Int64(byte - 48) }
                count += 1
                position += 1
            }
            guard count > 0 else { throw DateParsing.failure("expected the fraction of a second") }
            if count < 3 { for _ in count..<3 { milliseconds *= 10 } }
            return milliseconds
        }

        /// `Z`, `UTC`, `GMT`, or `+HH`, `+HHMM`, `+HH:MM` (or `-`).
        mutating func zone() throws(QueryError) -> Int64 {
            if take(UInt8(ascii: "Z")) || take(UInt8(ascii: "z")) { return 0 }
            for name in ["UTC", "GMT"] where bytes[position...].starts(with: name.utf8) {
                position += 3
                return 0
            }
            let negative = take(UInt8(ascii: "-"))
            guard negative || take(UInt8(ascii: "+")) else { throw DateParsing.failure("expected a time zone offset") }
            let hours = try number(digits: 2...2, "offset's hours")
            _ = take(UInt8(ascii: ":"))
            let minutes = peek.map { (48...57).contains($0) } == true ? try number(digits: 2...2, "offset's minutes") : 0
            guard hours <= 23, minutes <= 59 else { throw DateParsing.failure("the offset is out of range") }
            return (negative ? -1 : 1) * (hours * 3_600_000 + minutes * 60_000)
        }
    }
}
