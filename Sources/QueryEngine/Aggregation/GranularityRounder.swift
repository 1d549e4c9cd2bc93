import Foundation

/// `$bucketAuto`'s `granularity`: bucket boundaries rounded to a preferred number series
/// (Renard's R5–R80, `1-2-5`, the E series E6–E192) scaled by powers of ten, or to powers of two.
/// `roundUp` gives the smallest series number strictly above a value, `roundDown` the largest
/// strictly below it; zero stays zero. Values must be numbers, not NaN and not negative.
struct GranularityRounder: Sendable {
    /// One decade of the series in hundredths (`125` is 1.25), or nil for powers of two.
    private let series: [Int]?

    init(_ name: String) throws(QueryError) {
        if name == "POWERSOF2" {
            series = nil
            return
        }
        guard let found = Self.series(named: name) else {
            throw QueryError(.location(40257), "Unknown rounding granularity '\(name)'")
        }
        series = found
    }

    /// Checks a value a rounder may round.
    static func check(_ value: BSONValue) throws(QueryError) {
        guard value.isNumber, let number = value.doubleValue else {
            throw QueryError(.location(40258), "$bucketAuto can specify a 'granularity' with numeric boundaries only, but found a value with type: \(value.typeAlias)")
        }
        guard !number.isNaN else { throw QueryError(.location(40259), "A granularity rounder cannot round NaN") }
        guard number >= 0 else { throw QueryError(.location(40260), "A granularity rounder cannot round a negative number") }
    }

    func roundUp(_ value: BSONValue) -> BSONValue { round(value, up: true) }

    func roundDown(_ value: BSONValue) -> BSONValue { round(value, up: false) }

    private func round(_ value: BSONValue, up: Bool) -> BSONValue {
        guard let number = value.doubleValue, number > 0, number.isFinite else { return value }
        guard let series else { return powerOfTwo(value, number, up: up) }
        // Candidates from the decade below to the decade above the value's; hundredths times a
        // power of ten, divided once, so 1.12 × 10 reads 11.2 rather than 11.200000000000001.
        let exponent = Int(floor(log10(number)))
        var best: Double?
        for decade in (exponent - 1)...(exponent + 1) {
            for hundredths in series {
                let candidate = decade >= 2
                    ? Double(hundredths) * pow(10, Double(decade - 2))
                    : Double(hundredths) / pow(10, Double(2 - decade))
                if up ? candidate > number && (best == nil || candidate < best!) : candidate < number && (best == nil || candidate > best!) {
                    best = candidate
                }
            }
        }
        return .double(best ?? number)
    }

    /// The next power of two above (or below) a value; integers stay integers.
    private func powerOfTwo(_ value: BSONValue, _ number: Double, up: Bool) -> BSONValue {
        switch value {
        case .int32(let integer) where integer > 0:
            let rounded = up ? Int64(1) << (64 - Int64(integer).leadingZeroBitCount) : Int64(1) << (63 - Int64(integer - 1).leadingZeroBitCount)
            return integer == 1 && !up ? .double(0.5) : Int32(exactly: rounded).map(BSONValue.int32) ?? .int64(rounded)
        case .int64(let integer) where integer > 0 && integer < Int64(1) << 62:
            if integer == 1 && !up { return .double(0.5) }
            return .int64(up ? Int64(1) << (64 - integer.leadingZeroBitCount) : Int64(1) << (63 - (integer - 1).leadingZeroBitCount))
        default:
            var exponent = floor(log2(number))
            if up {
                exponent += 1
            } else if pow(2, exponent) >= number {
                exponent -= 1
            }
            return .double(pow(2, exponent))
        }
    }

    /// The series in hundredths, one decade from 1 (R80 runs on to 10.3, as MongoDB's does).
    private static func series(named name: String) -> [Int]? {
        switch name {
        case "R5": [100, 160, 250, 400, 630]
        case "R10": [100, 125, 160, 200, 250, 315, 400, 500, 630, 800]
        case "R20": [100, 112, 125, 140, 160, 180, 200, 224, 250, 280, 315, 355, 400, 450, 500, 560, 630, 710, 800, 900]
        case "R40":
            [100, 106, 112, 118, 125, 132, 140, 150, 160, 170, 180, 190, 200, 212, 224, 236, 250, 265, 280, 300, 315, 335, 355, 375, 400,
             425, 450, 475, 500, 530, 560, 600, 630, 670, 710, 750, 800, 850, 900, 950]
        case "R80":
            [100, 103, 106, 109, 112, 115, 118, 122, 125, 128, 132, 136, 140, 145, 150, 155, 160, 165, 170, 175, 180, 185, 190, 195, 200,
             206, 212, 218, 224, 230, 236, 243, 250, 258, 265, 272, 280, 290, 300, 307, 315, 325, 335, 345, 355, 365, 375, 387, 400, 412,
             425, 437, 450, 462, 475, 487, 500, 515, 530, 545, 560, 580, 600, 615, 630, 650, 670, 690, 710, 730, 750, 775, 800, 825, 850,
             875, 900, 925, 950, 975, 1000, 1030]
        case "1-2-5": [100, 200, 500]
        case "E6": [100, 150, 220, 330, 470, 680]
        case "E12": [100, 120, 150, 180, 220, 270, 330, 390, 470, 560, 680, 820]
        case "E24": [100, 110, 120, 130, 150, 160, 180, 200, 220, 240, 270, 300, 330, 360, 390, 430, 470, 510, 560, 620, 680, 750, 820, 910]
        case "E48": computed(48)
        case "E96": computed(96)
        case "E192": computed(192)
        default: nil
        }
    }

    /// E48, E96 and E192: 10^(i/n) to three significant digits (E192 has 9.20 where the
    /// formula gives 9.19, as the IEC 60063 table does).
    private static func computed(_ steps: Int) -> [Int] {
        (0..<steps).map { step in
            let value = Int((pow(10, Double(step) / Double(steps)) * 100).rounded())
            return steps == 192 && value == 919 ? 920 : value
        }
    }
}
