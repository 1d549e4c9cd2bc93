/// String operators: substrings by code point or byte, searching, splitting, replacing, and
/// regular expression matches with captures (PCRE2, as `$regex` in queries).
extension ExpressionOperators {
    static func applyString(_ op: ExpressionOperator, _ values: [BSONValue?]) throws(QueryError) -> BSONValue? {
        let name = op.rawValue
        switch op {
        case .substr, .substrBytes:
            guard values.count == 3 else { throw arity(name, 3) }
            let text = try stringArgument(values[0], name)
            let bytes = Array(text.utf8)
            guard let startValue = values[1], startValue.isNumber, let lengthValue = values[2], lengthValue.isNumber else {
                throw QueryError(.location(16034), "\(name): starting index and length must be numeric types")
            }
            let start = Int(clamping: Int64(exactly: (startValue.doubleValue ?? 0).rounded(.towardZero)) ?? 0)
            guard start >= 0 else { return .string("") }
            guard start < bytes.count else { return .string("") }
            let length = Int(clamping: Int64(exactly: (lengthValue.doubleValue ?? 0).rounded(.towardZero)) ?? -1)
            let end = length < 0 || length >= bytes.count - start ? bytes.count : start + length
            guard !isContinuationByte(bytes, at: start) else {
                throw QueryError(.location(28656), "\(name): Invalid range, starting index is a UTF-8 continuation byte.")
            }
            guard !isContinuationByte(bytes, at: end) else {
                throw QueryError(.location(28657), "\(name): Invalid range, ending index is in the middle of a UTF-8 character.")
            }
            return .string(String(decoding: bytes[start..<end], as: UTF8.self))
        case .substrCP:
            guard values.count == 3 else { throw arity(name, 3) }
            let text = try stringArgument(values[0], name)
            guard let startValue = values[1], startValue.isNumber else {
                throw QueryError(.location(34450), "$substrCP: starting index must be a numeric type (is BSON type \(typeName(values[1])))")
            }
            guard let start = integral32(startValue) else {
                throw QueryError(.location(34451), "$substrCP: starting index cannot be represented as a 32-bit integral value")
            }
            guard let lengthValue = values[2], lengthValue.isNumber else {
                throw QueryError(.location(34452), "$substrCP: length must be a numeric type (is BSON type \(typeName(values[2])))")
            }
            guard let length = integral32(lengthValue) else {
                throw QueryError(.location(34453), "$substrCP: length cannot be represented as a 32-bit integral value")
            }
            guard start >= 0 else { throw QueryError(.location(34455), "$substrCP: the starting index must be nonnegative integer.") }
            guard length >= 0 else { throw QueryError(.location(34454), "$substrCP: length must be a nonnegative integer.") }
            let scalars = Array(text.unicodeScalars)
            guard start < scalars.count else { return .string("") }
            var out = String.UnicodeScalarView()
            out.append(contentsOf: scalars[start..<min(scalars.count, start + length)])
            return .string(String(out))
        case .split:
            guard values.count == 2 else { throw arity(name, 2) }
            if isNullish(values[0]) || isNullish(values[1]) { return .null }
            guard case .string(let text)? = values[0] else {
                throw QueryError(.location(40085), "$split requires an expression that evaluates to a string as a first argument, found: \(typeName(values[0]))")
            }
            guard case .string(let separator)? = values[1] else {
                throw QueryError(.location(40086), "$split requires an expression that evaluates to a string as a second argument, found: \(typeName(values[1]))")
            }
            guard !separator.isEmpty else { throw QueryError(.location(40087), "$split requires a non-empty separator") }
            return .array(split(Array(text.utf8), by: Array(separator.utf8)).map { .string(String(decoding: $0, as: UTF8.self)) })
        case .indexOfBytes, .indexOfCP:
            guard (2...4).contains(values.count) else {
                throw QueryError(.location(28667), "Expression \(name) takes at least 2 arguments, and at most 4, but \(values.count) were passed in.")
            }
            if isNullish(values[0]) { return .null }
            let codePoints = op == .indexOfCP
            guard case .string(let text)? = values[0] else {
                throw QueryError(.location(codePoints ? 40093 : 40091), "\(name) requires a string as the first argument, found: \(typeName(values[0]))")
            }
            guard case .string(let needle)? = values[1] else {
                throw QueryError(.location(codePoints ? 40094 : 40092), "\(name) requires a string as the second argument, found: \(typeName(values[1]))")
            }
            let units = codePoints ? text.unicodeScalars.map(\.value) : text.utf8.map(UInt32.init)
            let pattern = codePoints ? needle.unicodeScalars.map(\.value) : needle.utf8.map(UInt32.init)
            let start = values.count > 2 ? try indexArgument(values[2], name, "starting") : 0
            let end = values.count > 3 ? try indexArgument(values[3], name, "ending") : units.count
            return .int32(Int32(firstIndex(of: pattern, in: units, from: start, to: end)))
        case .regexFind, .regexFindAll:
            return try regexFind(op, values)
        case .replaceOne, .replaceAll:
            guard case .document(let spec)? = values.first ?? nil else {
                throw QueryError(.location(51751), "\(name) requires an object as an argument, found: \(typeName(values.first ?? nil))")
            }
            for key in spec.keys where !["input", "find", "replacement"].contains(key) {
                throw QueryError(.location(51750), "\(name) found an unknown argument: \(key)")
            }
            var parts: [String] = []
            for field in ["input", "find", "replacement"] {
                let value = spec[field]
                if isNullish(value) { return .null }
                guard case .string(let text)? = value else {
                    throw QueryError(.location(51746), "\(name) requires that '\(field)' be a string, found: \(typeName(value))")
                }
                parts.append(text)
            }
            let input = Array(parts[0].utf8), find = Array(parts[1].utf8), replacement = Array(parts[2].utf8)
            // The most the result can grow: one replacement per input byte (and one more).
            let worst = input.count + (input.count + 1) * replacement.count
            if worst > QueryEngineLimits.documentSizeBytesMax, find.count < replacement.count {
                let occurrences = find.isEmpty ? input.count + 1 : max(0, input.count / max(find.count, 1))
                guard input.count + occurrences * (replacement.count - find.count) <= QueryEngineLimits.documentSizeBytesMax else {
                    throw QueryError(.exceededMemoryLimit, "\(name) would build a string larger than the 16 MB document limit")
                }
            }
            return .string(replace(input, find, replacement, all: op == .replaceAll))
        default:
            throw QueryError(.invalidPipelineOperator, "Unrecognized expression '\(name)'")
        }
    }

    static func typeName(_ value: BSONValue?) -> String { value?.typeAlias ?? "missing" }

    static func stringArgument(_ value: BSONValue?, _ name: String) throws(QueryError) -> String {
        switch value {
        case nil, .null?, .undefined?: return ""
        case .string(let text)?: return text
        case .int32(let number)?: return String(number)
        case .int64(let number)?: return String(number)
        case .double(let number)?: return Conversions.formatDouble(number)
        default: throw QueryError(.location(16007), "\(name) requires a string argument, found: \(value?.typeAlias ?? "missing")")
        }
    }

    /// A numeric value with an exact 32-bit integral value.
    static func integral32(_ value: BSONValue) -> Int? {
        guard let double = value.doubleValue, double == double.rounded(), let exact = Int32(exactly: double) else { return nil }
        return Int(exact)
    }

    /// The optional start/end index of `$indexOfBytes`, `$indexOfCP` and `$indexOfArray`.
    static func indexArgument(_ value: BSONValue?, _ name: String, _ which: String) throws(QueryError) -> Int {
        guard let value, value.isNumber, let index = integral32(value) else {
            throw QueryError(
                .location(40096), "\(name) requires an integral \(which) index, found a value of type: \(typeName(value))")
        }
        guard index >= 0 else { throw QueryError(.location(40097), "\(name) requires a nonnegative \(which) index, found: \(index)") }
        return index
    }

    /// The first position in `start..<end` where `pattern` occurs entirely before `end`; -1 if none.
    static func firstIndex<Element: Equatable>(of pattern: [Element], in items: [Element], from start: Int, to end: Int) -> Int {
        let end = min(end, items.count)
        guard start <= end, start <= items.count else { return -1 }
        guard !pattern.isEmpty else { return start }
        guard end - start >= pattern.count else { return -1 }
        for position in start...(end - pattern.count) where items[position] == pattern[0] {
            if items[position..<position + pattern.count].elementsEqual(pattern) { return position }
        }
        return -1
    }

    private static func isContinuationByte(_ bytes: [UInt8], at index: Int) -> Bool {
        index < bytes.count && bytes[index] & 0xC0 == 0x80
    }

    private static func split(_ bytes: [UInt8], by separator: [UInt8]) -> [ArraySlice<UInt8>] {
        var parts: [ArraySlice<UInt8>] = []
        var start = 0
        var position = 0
        while position + separator.count <= bytes.count {
            if bytes[position..<position + separator.count].elementsEqual(separator) {
                parts.append(bytes[start..<position])
                position += separator.count
                start = position
            } else {
                position += 1
            }
        }
        parts.append(bytes[start...])
        return parts
    }

    private static func replace(_ input: [UInt8], _ find: [UInt8], _ replacement: [UInt8], all: Bool) -> String {
        var output: [UInt8] = []
        var position = 0
        var replaced = false
        if find.isEmpty {
            // An empty string is found before every character and at the end.
            guard all else { return String(decoding: replacement + input, as: UTF8.self) }
            for scalar in String(decoding: input, as: UTF8.self).unicodeScalars {
                output += replacement
                output += Array(String(scalar).utf8)
            }
            return String(decoding: output + replacement, as: UTF8.self)
        }
        while position < input.count {
            if (all || !replaced), position + find.count <= input.count, input[position..<position + find.count].elementsEqual(find) {
                output += replacement
                position += find.count
                replaced = true
            } else {
                output.append(input[position])
                position += 1
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    private static func regexFind(_ op: ExpressionOperator, _ values: [BSONValue?]) throws(QueryError) -> BSONValue? {
        let name = op.rawValue
        guard case .document(let spec)? = values.first ?? nil else {
            throw QueryError(.location(51103), "\(name) expects an object of named arguments but found: \(typeName(values.first ?? nil))")
        }
        for key in spec.keys where !["input", "regex", "options"].contains(key) {
            throw QueryError(.location(31024), "\(name) found an unknown argument: \(key)")
        }
        let all = op == .regexFindAll
        let regex: BSONRegex
        switch spec["regex"] {
        case .string(let pattern)?:
            regex = BSONRegex(pattern: pattern, options: spec["options"]?.stringValue ?? "")
        case .regex(let value)?:
            if let options = spec["options"]?.stringValue, !options.isEmpty, !value.options.isEmpty {
                throw QueryError(.location(51107), "\(name) found regex option(s) specified in both 'regex' and 'option' fields")
            }
            regex = BSONRegex(pattern: value.pattern, options: value.options.isEmpty ? spec["options"]?.stringValue ?? "" : value.options)
        case nil, .null?, .undefined?:
            return all ? .array([]) : .null
        default:
            throw QueryError(.location(51105), "\(name) needs 'regex' to be of type string or regex")
        }
        if let options = spec["options"], !isNullish(options), options.stringValue == nil {
            throw QueryError(.location(51106), "\(name) needs 'options' to be of type string")
        }
        let input: String
        switch spec["input"] {
        case .string(let text)?: input = text
        case nil, .null?, .undefined?: return all ? .array([]) : .null
        default: throw QueryError(.location(51104), "\(name) needs 'input' to be of type string")
        }
        let compiled = try CompiledRegex(regex)
        let bytes = Array(input.utf8)
        var results: [BSONValue] = []
        var offset = 0
        var codePoints = 0  // Code points before `counted`.
        var counted = 0
        var bytesUsed = 0
        RegexFailure.reset()
        while offset <= bytes.count, let match = compiled.firstMatch(in: bytes, from: offset) {
            let captures: [BSONValue] = match.captures.map { range in
                range.map { .string(String(decoding: bytes[$0], as: UTF8.self)) } ?? .null
            }
            // Code points counted incrementally: matches come in order, so the whole scan is linear.
            codePoints += bytes[counted..<match.range.lowerBound].count { $0 & 0xC0 != 0x80 }
            counted = match.range.lowerBound
            let index = codePoints
            bytesUsed += 64 + match.range.count * (1 + captures.count)
            guard bytesUsed <= QueryEngineLimits.documentSizeBytesMax else {
                throw QueryError(.exceededMemoryLimit, "\(name) would build a result larger than the 16 MB document limit")
            }
            results.append(.document([
                "match": .string(String(decoding: bytes[match.range], as: UTF8.self)), "idx": .int32(Int32(index)),
                "captures": .array(captures),
            ]))
            guard all else { break }
            try OperationContext.checkpoint()
            if match.range.isEmpty {
                // An empty match: move on by one character.
                offset = match.range.upperBound + 1
                while offset < bytes.count, bytes[offset] & 0xC0 == 0x80 { offset += 1 }
            } else {
                offset = match.range.upperBound
            }
        }
        try RegexFailure.check()
        if all { return .array(results) }
        return results.first ?? .null
    }
}
