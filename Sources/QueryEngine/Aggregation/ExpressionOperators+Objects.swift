/// Field access by literal name (`$getField`, `$setField`, `$unsetField`: names with dots or
/// dollars), sizes (`$binarySize`, `$bsonSize`) and `$convert`.
extension ExpressionOperators {
    /// Parses `$getField`, `$setField` and `$unsetField` into positional arguments: the field
    /// name (a string constant), the input (`$$CURRENT` when omitted) and, for `$setField`, the value.
    static func parseFieldOperator(_ op: ExpressionOperator, _ argument: BSONValue) throws(QueryError) -> Expression {
        let name = op.rawValue
        let code: Int32 = op == .getField ? 3_041_702 : 4_161_102
        // The short form: `$getField: "name"`, or an expression for the name
        // (`$getField: {$literal: "$price"}`, as the manual writes it).
        var short = false
        if case .string = argument { short = true }
        if case .document(let spec) = argument, spec.firstKey?.hasPrefix("$") == true { short = true }
        if op == .getField, short {
            let fieldExpression = try Expression(argument)
            guard case .literal(.string) = fieldExpression else {
                throw QueryError(.location(5654602), "$getField requires 'field' to evaluate to a constant of type string, use $literal for a name starting with '$'")
            }
            return .call(op, [fieldExpression, .variable("CURRENT", nil)])
        }
        guard case .document(let spec) = argument else {
            throw QueryError(.location(code), "\(name) only supports an object as its argument")
        }
        let allowed = op == .setField ? ["field", "input", "value"] : ["field", "input"]
        for key in spec.keys where !allowed.contains(key) {
            throw QueryError(.location(code + 1), "\(name) found an unknown argument: \(key)")
        }
        guard let field = spec["field"] else { throw QueryError(.location(code + 2), "\(name) requires 'field' to be specified") }
        let fieldExpression = try Expression(field)
        guard case .literal(.string) = fieldExpression else {
            throw QueryError(.location(op == .getField ? 5654601 : 4161106), "\(name) requires 'field' to evaluate to a constant of type string")
        }
        var arguments = [fieldExpression, try spec["input"].map { value throws(QueryError) in try Expression(value) } ?? .variable("CURRENT", nil)]
        if op == .setField {
            guard let value = spec["value"] else { throw QueryError(.location(4161103), "$setField requires 'value' to be specified") }
            arguments.append(try Expression(value))
        }
        guard spec["input"] != nil || op == .getField else {
            throw QueryError(.location(4161104), "\(name) requires 'input' to be specified")
        }
        return .call(op, arguments)
    }

    static func applyObject(_ op: ExpressionOperator, _ values: [BSONValue?]) throws(QueryError) -> BSONValue? {
        let name = op.rawValue
        switch op {
        case .getField:
            guard values.count == 2, case .string(let field)? = values[0] else { throw arity(name, 2) }
            if isNullish(values[1]) { return values[1] == nil ? nil : .null }
            guard case .document(let input)? = values[1] else { return nil }
            return input[field]
        case .setField, .unsetField:
            guard values.count >= 2, case .string(let field)? = values[0] else { throw arity(name, 2) }
            if isNullish(values[1]) { return .null }
            guard case .document(var input)? = values[1] else {
                throw QueryError(.location(4161105), "\(name) requires 'input' to evaluate to type Object")
            }
            let value = op == .setField ? values[2] : nil
            if let value {
                if input[field] != nil {
                    input[field] = value
                } else {
                    input.append(field, value)
                }
            } else {
                _ = input.removeValue(forKey: field)
            }
            return .document(input)
        case .binarySize:
            guard values.count == 1 else { throw arity(name, 1) }
            switch values[0] {
            case nil, .null?, .undefined?: return .null
            case .string(let text)?: return .int32(Int32(clamping: text.utf8.count))
            case .binary(let binary)?: return .int32(Int32(clamping: binary.data.count))
            default: throw QueryError(.location(51276), "$binarySize requires a string or BinData argument, found: \(typeName(values[0]))")
            }
        case .bsonSize:
            guard values.count == 1 else { throw arity(name, 1) }
            switch values[0] {
            case nil, .null?, .undefined?: return .null
            case .document(let document)?: return .int32(Int32(clamping: document.encodedSize))
            default: throw QueryError(.location(31393), "$bsonSize requires a document input, found: \(typeName(values[0]))")
            }
        case .convert:
            guard values.count == 1, case .document(let spec)? = values[0] else {
                throw QueryError(.location(4_999_800), "$convert expects an object of named arguments but found: \(typeName(values.first ?? nil))")
            }
            for key in spec.keys where !["input", "to", "onError", "onNull"].contains(key) {
                throw QueryError(.location(4_999_801), "$convert found an unknown argument: \(key)")
            }
            guard spec.keys.contains("to") else { throw QueryError(.location(4_999_802), "Missing 'to' parameter to $convert") }
            if isNullish(spec["to"]) { return .null }
            let target = try conversionTarget(spec["to"])
            if isNullish(spec["input"]) { return spec.keys.contains("onNull") ? spec["onNull"] : .null }
            do {
                return try Conversions.convert(target, spec["input"])
            } catch {
                if spec.keys.contains("onError") { return spec["onError"] }
                throw QueryError(error.code, "Unsupported conversion from \(typeName(spec["input"])) to \(target.dropFirst(3).lowercased()) in $convert with no onError value")
            }
        default:
            throw QueryError(.invalidPipelineOperator, "Unrecognized expression '\(name)'")
        }
    }

    /// `$convert`'s `to`: a type name or a BSON type number, as the `$to…` operator it means.
    private static func conversionTarget(_ value: BSONValue?) throws(QueryError) -> String {
        let byName = ["double": "$toDouble", "string": "$toString", "objectId": "$toObjectId", "bool": "$toBool", "date": "$toDate",
            "int": "$toInt", "long": "$toLong", "decimal": "$toDecimal"]
        let byNumber: [Int64: String] = [1: "$toDouble", 2: "$toString", 7: "$toObjectId", 8: "$toBool", 9: "$toDate", 16: "$toInt",
            18: "$toLong", 19: "$toDecimal"]
        switch value {
        case .string(let text)?:
            if let target = byName[text] { return target }
            throw QueryError(.badValue, "Unknown type name: \(text)")
        case let number? where number.isNumber:
            if let code = number.int64Value, let target = byNumber[code] { return target }
            throw QueryError(.badValue, "In $convert, numeric 'to' argument is not a supported type: \(number)")
        default:
            throw QueryError(.location(4_999_803), "$convert's 'to' argument must be a string or number, but is \(typeName(value))")
        }
    }
}
