/// Date operators, with MongoDB's `timezone` argument (an Olson name or a UTC offset).
extension ExpressionOperators {
    static func applyDate(_ op: ExpressionOperator, _ values: [BSONValue?]) throws(QueryError) -> BSONValue? {
        let name = op.rawValue
        if op.isDatePart { return try datePart(op, values) }
        guard case .document(let spec)? = values.first ?? nil, values.count == 1 else {
            throw QueryError(.location(op == .dateToString ? 18629 : 5439007), "\(name) only supports an object as its argument")
        }
        switch op {
        case .dateToString:
            for key in spec.keys where !["date", "format", "timezone", "onNull"].contains(key) {
                throw QueryError(.location(18534), "Unrecognized argument to $dateToString: \(key)")
            }
            if isNullish(spec["date"]) { return spec.keys.contains("onNull") ? spec["onNull"] : .null }
            guard let utc = Conversions.dateMilliseconds(spec["date"]) else {
                throw QueryError(.location(16006), "can't convert from BSON type \(typeName(spec["date"])) to Date")
            }
            guard let zone = try DateArithmetic.zone(spec["timezone"], name) else { return .null }
            let format: String
            switch spec["format"] {
            case nil: format = zone.fixedOffsetMilliseconds == 0 && zone.zone == nil ? "%Y-%m-%dT%H:%M:%S.%LZ" : "%Y-%m-%dT%H:%M:%S.%L"
            case .string(let text)?: format = text
            case .null?, .undefined?: return .null
            default: throw QueryError(.location(18533), "$dateToString requires that 'format' be a string, found: \(typeName(spec["format"]))")
            }
            return .string(try formatDate(utc, format: format, zone: zone))
        case .dateAdd, .dateSubtract:
            for key in spec.keys where !["startDate", "unit", "amount", "timezone"].contains(key) {
                throw QueryError(.location(5166401), "Unrecognized argument to \(name): \(key). Expected arguments are startDate, unit, amount, and optionally timezone.")
            }
            guard spec.keys.contains("startDate"), spec.keys.contains("unit"), spec.keys.contains("amount") else {
                throw QueryError(.location(5166402), "\(name) requires startDate, unit, and amount to be present")
            }
            if isNullish(spec["startDate"]) || isNullish(spec["unit"]) || isNullish(spec["amount"]) { return .null }
            guard let start = Conversions.dateMilliseconds(spec["startDate"]) else {
                throw QueryError(.location(5166403), "\(name) requires startDate to be convertible to a date")
            }
            let unit = try DateArithmetic.unit(spec["unit"], name)
            guard let amountValue = spec["amount"], amountValue.isNumber, let amount = amountValue.int64Value, amount != Int64.min else {
                throw QueryError(.location(5166405), "\(name) expects integer amount of time units")
            }
            guard let zone = try DateArithmetic.zone(spec["timezone"], name) else { return .null }
            guard let result = DateArithmetic.add(start, unit, op == .dateAdd ? amount : -amount, zone: zone) else {
                throw QueryError(.location(5166406), "\(name) overflowed")
            }
            return .datetime(result)
        case .dateDiff:
            for key in spec.keys where !["startDate", "endDate", "unit", "timezone", "startOfWeek"].contains(key) {
                throw QueryError(.location(5166300), "Unrecognized argument to $dateDiff: \(key)")
            }
            guard spec.keys.contains("startDate"), spec.keys.contains("endDate"), spec.keys.contains("unit") else {
                throw QueryError(.location(5166301), "Missing 'startDate', 'endDate' or 'unit' parameter to $dateDiff")
            }
            if isNullish(spec["startDate"]) || isNullish(spec["endDate"]) || isNullish(spec["unit"]) { return .null }
            guard let start = Conversions.dateMilliseconds(spec["startDate"]) else {
                throw QueryError(.location(5166307), "$dateDiff requires 'startDate' to be a date, but got \(typeName(spec["startDate"]))")
            }
            guard let end = Conversions.dateMilliseconds(spec["endDate"]) else {
                throw QueryError(.location(5166307), "$dateDiff requires 'endDate' to be a date, but got \(typeName(spec["endDate"]))")
            }
            let unit = try DateArithmetic.unit(spec["unit"], name)
            guard let zone = try DateArithmetic.zone(spec["timezone"], name) else { return .null }
            let startOfWeek = unit == .week ? try DateArithmetic.startOfWeek(spec["startOfWeek"], name) : 0
            guard unit == .millisecond || (DateArithmetic.isCalendarRange(start) && DateArithmetic.isCalendarRange(end)) else {
                throw QueryError(.overflow, "$dateDiff: a date is outside the range it can compute in")
            }
            if unit == .millisecond {
                let (difference, overflow) = end.subtractingReportingOverflow(start)
                guard !overflow else { throw QueryError(.overflow, "$dateDiff overflowed") }
                return .int64(difference)
            }
            return .int64(DateArithmetic.difference(from: start, to: end, unit, zone: zone, startOfWeek: startOfWeek))
        case .dateTrunc:
            for key in spec.keys where !["date", "unit", "binSize", "timezone", "startOfWeek"].contains(key) {
                throw QueryError(.location(5439007), "Unrecognized argument to $dateTrunc: \(key)")
            }
            if isNullish(spec["date"]) || isNullish(spec["unit"]) { return .null }
            guard let date = Conversions.dateMilliseconds(spec["date"]) else {
                throw QueryError(.location(5439012), "$dateTrunc requires 'date' to be a date, but got \(typeName(spec["date"]))")
            }
            guard DateArithmetic.isCalendarRange(date) else { throw QueryError(.overflow, "$dateTrunc: the date is outside the range it can truncate") }
            let unit = try DateArithmetic.unit(spec["unit"], name)
            var binSize: Int64 = 1
            if let value = spec["binSize"] {
                if isNullish(value) { return .null }
                guard value.isNumber, let size = value.int64Value, size > 0 else {
                    throw QueryError(.location(5439017), "$dateTrunc requires 'binSize' to be a 64-bit integer greater than zero")
                }
                binSize = size
            }
            guard let zone = try DateArithmetic.zone(spec["timezone"], name) else { return .null }
            let startOfWeek = unit == .week ? try DateArithmetic.startOfWeek(spec["startOfWeek"] ?? .string("sunday"), name) : 0
            guard let truncated = DateArithmetic.truncate(date, unit, binSize: binSize, zone: zone, startOfWeek: startOfWeek) else {
                throw QueryError(.location(5439017), "$dateTrunc: binSize \(binSize) is too large for unit '\(unit.rawValue)'")
            }
            return .datetime(truncated)
        case .dateFromParts:
            return try dateFromParts(spec)
        case .dateFromString:
            return try dateFromString(spec)
        case .dateToParts:
            for key in spec.keys where !["date", "timezone", "iso8601"].contains(key) {
                throw QueryError(.location(40520), "Unrecognized argument to $dateToParts: \(key)")
            }
            if isNullish(spec["date"]) { return .null }
            guard let utc = Conversions.dateMilliseconds(spec["date"]) else {
                throw QueryError(.location(16006), "can't convert from BSON type \(typeName(spec["date"])) to Date")
            }
            guard let zone = try DateArithmetic.zone(spec["timezone"], name) else { return .null }
            let local = zone.local(utc)
            let parts = DateArithmetic.parts(local: local)
            let time: BSONDocument = [
                "hour": .int32(Int32(parts.hour)), "minute": .int32(Int32(parts.minute)), "second": .int32(Int32(parts.second)),
                "millisecond": .int32(Int32(parts.millisecond)),
            ]
            var output: BSONDocument
            if spec["iso8601"]?.isTruthy == true {
                let iso = DateArithmetic.isoWeek(local: local)
                output = ["isoWeekYear": .int32(Int32(iso.year)), "isoWeek": .int32(Int32(iso.week)), "isoDayOfWeek": .int32(Int32(iso.day))]
            } else {
                output = ["year": .int32(Int32(parts.year)), "month": .int32(Int32(parts.month)), "day": .int32(Int32(parts.day))]
            }
            for element in time.elements { output[element.key] = element.value }
            return .document(output)
        default:
            throw QueryError(.invalidPipelineOperator, "Unrecognized expression '\(name)'")
        }
    }

    /// `$year` … `$isoDayOfWeek`: the argument is a date, `[date]`, or `{date, timezone}`.
    private static func datePart(_ op: ExpressionOperator, _ values: [BSONValue?]) throws(QueryError) -> BSONValue? {
        let name = op.rawValue
        guard values.count == 1 else { throw arity(name, 1) }
        var date = values[0]
        var zone = DateArithmetic.Zone.utc
        if case .document(let spec)? = date {
            for key in spec.keys where key != "date" && key != "timezone" {
                throw QueryError(.location(40535), "unrecognized option to \(name): \"\(key)\"")
            }
            guard spec.keys.contains("date") else { throw QueryError(.location(40539), "missing 'date' argument to \(name), provided: \(spec)") }
            date = spec["date"]
            guard let parsed = try DateArithmetic.zone(spec["timezone"], name) else { return .null }
            zone = parsed
        }
        if isNullish(date) { return .null }
        guard let utc = Conversions.dateMilliseconds(date) else {
            throw QueryError(.location(16006), "can't convert from BSON type \(typeName(date)) to Date")
        }
        let local = zone.local(utc)
        let parts = DateArithmetic.parts(local: local)
        let value: Int64
        switch op {
        case .year: value = parts.year
        case .month: value = parts.month
        case .dayOfMonth: value = parts.day
        case .hour: value = parts.hour
        case .minute: value = parts.minute
        case .second: value = parts.second
        case .millisecond: value = parts.millisecond
        case .dayOfWeek: value = parts.dayOfWeek
        case .dayOfYear: value = parts.dayOfYear
        case .week: value = DateArithmetic.sundayWeek(parts)
        case .isoWeek: value = DateArithmetic.isoWeek(local: local).week
        case .isoWeekYear: return .int64(DateArithmetic.isoWeek(local: local).year)
        default: value = DateArithmetic.isoWeek(local: local).day
        }
        return .int32(Int32(truncatingIfNeeded: value))
    }

    /// `$dateFromString`: `onNull` for a null or missing string, `onError` (when given) for a
    /// string that is not a date or a value that is not a string.
    private static func dateFromString(_ spec: BSONDocument) throws(QueryError) -> BSONValue? {
        for key in spec.keys where !["dateString", "format", "timezone", "onError", "onNull"].contains(key) {
            throw QueryError(.location(40541), "Unrecognized argument to $dateFromString: \(key)")
        }
        let format: String?
        switch spec["format"] {
        case nil: format = nil
        case .string(let text)?: format = text
        case .null?, .undefined?: return .null
        default: throw QueryError(.location(40684), "$dateFromString requires that 'format' be a string, found: \(typeName(spec["format"]))")
        }
        guard let zone = try DateArithmetic.zone(spec["timezone"], "$dateFromString") else { return .null }
        if isNullish(spec["dateString"]) { return spec.keys.contains("onNull") ? spec["onNull"] : .null }
        do throws(QueryError) {
            guard case .string(let text)? = spec["dateString"] else {
                throw QueryError(.conversionFailure, "$dateFromString requires that 'dateString' be a string, found: \(typeName(spec["dateString"]))")
            }
            let parsed = try DateParsing.parse(text, format: format)
            if let offset = parsed.offset {
                guard spec["timezone"] == nil else {
                    throw QueryError(.conversionFailure, "you cannot pass in a date/time string with time zone information together with a timezone argument")
                }
                return .datetime(parsed.local - offset)
            }
            return .datetime(zone.utc(fromLocal: parsed.local))
        } catch let error where error.code == .conversionFailure && spec.keys.contains("onError") {
            return spec["onError"]
        }
    }

    private static func dateFromParts(_ spec: BSONDocument) throws(QueryError) -> BSONValue? {
        let iso = spec.keys.contains("isoWeekYear")
        let dateFields = iso ? ["isoWeekYear", "isoWeek", "isoDayOfWeek"] : ["year", "month", "day"]
        let timeFields = ["hour", "minute", "second", "millisecond"]
        for key in spec.keys where !(dateFields + timeFields + ["timezone"]).contains(key) {
            if ["year", "month", "day", "isoWeekYear", "isoWeek", "isoDayOfWeek"].contains(key) {
                throw QueryError(.location(40489), "$dateFromParts does not allow mixing natural dates with ISO dates")
            }
            throw QueryError(.location(40518), "Unrecognized argument to $dateFromParts: \(key)")
        }
        guard spec.keys.contains(dateFields[0]) else {
            throw QueryError(.location(40516), "$dateFromParts requires either 'year' or 'isoWeekYear' to be present")
        }
        var numbers: [String: Int64] = [:]
        for field in dateFields + timeFields {
            guard let value = spec[field] else { continue }
            if isNullish(value) { return .null }
            guard value.isNumber, let integer = value.int64Value else {
                throw QueryError(.location(40515), "'\(field)' must evaluate to an integer, found \(value.typeAlias) with value \(value)")
            }
            if field == dateFields[0] {
                guard (1...9999).contains(integer) else {
                    throw QueryError(.location(40523), "'\(field)' must evaluate to an integer in the range 1 to 9999, found \(integer)")
                }
            } else if !(-32768...32767).contains(integer) {
                throw QueryError(.location(31034), "'\(field)' must evaluate to a value in the range [-32768, 32767]; value \(integer) is not in range")
            }
            numbers[field] = integer
        }
        guard let zone = try DateArithmetic.zone(spec["timezone"], "$dateFromParts") else { return .null }
        let dayNumber: Int64
        if iso {
            dayNumber = DateArithmetic.days(isoYear: numbers["isoWeekYear"]!, week: numbers["isoWeek"] ?? 1, isoDay: numbers["isoDayOfWeek"] ?? 1)
        } else {
            dayNumber = DateArithmetic.days(year: numbers["year"]!, month: numbers["month"] ?? 1, day: numbers["day"] ?? 1)
        }
        let local = dayNumber * DateArithmetic.millisecondsPerDay + (numbers["hour"] ?? 0) * 3_600_000 + (numbers["minute"] ?? 0) * 60_000
            + (numbers["second"] ?? 0) * 1000 + (numbers["millisecond"] ?? 0)
        return .datetime(zone.utc(fromLocal: local))
    }

    /// `$dateToString`'s format specifiers.
    static func formatDate(_ utc: Int64, format: String, zone: DateArithmetic.Zone) throws(QueryError) -> String {
        let offset = zone.offset(atUTC: utc)
        let local = utc &+ offset
        let parts = DateArithmetic.parts(local: local)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(abs(value))
            return (value < 0 ? "-" : "") + String(repeating: "0", count: max(0, width - text.count)) + text
        }
        var output = ""
        var iterator = format.makeIterator()
        while let character = iterator.next() {
            guard character == "%" else {
                output.append(character)
                continue
            }
            guard let code = iterator.next() else {
                throw QueryError(.location(18535), "Unmatched '%' at end of format string")
            }
            switch code {
            case "Y": output += pad(parts.year, 4)
            case "m": output += pad(parts.month, 2)
            case "d": output += pad(parts.day, 2)
            case "H": output += pad(parts.hour, 2)
            case "M": output += pad(parts.minute, 2)
            case "S": output += pad(parts.second, 2)
            case "L": output += pad(parts.millisecond, 3)
            case "j": output += pad(parts.dayOfYear, 3)
            case "w": output += String(parts.dayOfWeek)
            case "U": output += pad(DateArithmetic.sundayWeek(parts), 2)
            case "u": output += String(DateArithmetic.isoWeek(local: local).day)
            case "V": output += pad(DateArithmetic.isoWeek(local: local).week, 2)
            case "G": output += pad(DateArithmetic.isoWeek(local: local).year, 4)
            case "z":
                let minutes = offset / 60_000
                output += (minutes < 0 ? "-" : "+") + pad(abs(minutes) / 60, 2) + pad(abs(minutes) % 60, 2)
            case "Z": output += String(offset / 60_000)
            case "%": output += "%"
            default: throw QueryError(.location(18536), "Invalid format character '%\(code)' in format string")
            }
        }
        return output
    }
}
