/// MongoDB's `$jsonSchema`: JSON Schema draft 4 with `bsonType`, parsed once, evaluated per
/// document. A failure reports the rules a document broke in the shape MongoDB 5.0+ gives in
/// `errInfo.details.schemaRulesNotSatisfied` (types and names, never the values themselves).
public indirect enum JSONSchema: Sendable {
    case schema([Keyword])

    /// One keyword of a schema object.
    public enum Keyword: Sendable {
        case bsonType([String])
        case type([String])
        case required([String])
        case properties([(String, JSONSchema)])
        case patternProperties([(CompiledRegex, String, JSONSchema)])
        case additionalProperties(Bool)
        case additionalPropertiesSchema(JSONSchema)
        case minProperties(Int)
        case maxProperties(Int)
        case enumeration([BSONValue])
        case minimum(BSONValue, exclusive: Bool)
        case maximum(BSONValue, exclusive: Bool)
        case multipleOf(Double)
        case minLength(Int)
        case maxLength(Int)
        case pattern(CompiledRegex, String)
        case items(JSONSchema)
        case itemsList([JSONSchema], additional: JSONSchema?, additionalAllowed: Bool)
        case minItems(Int)
        case maxItems(Int)
        case uniqueItems
        case allOf([JSONSchema])
        case anyOf([JSONSchema])
        case oneOf([JSONSchema])
        case not(JSONSchema)
        case dependencies([(String, [String]?, JSONSchema?)])
    }

    static let bsonTypes: Set<String> = [
        "double", "string", "object", "array", "binData", "undefined", "objectId", "bool", "date", "null", "regex", "dbPointer",
        "javascript", "symbol", "javascriptWithScope", "int", "timestamp", "long", "decimal", "minKey", "maxKey", "number",
    ]
    static let jsonTypes: Set<String> = ["object", "array", "number", "boolean", "string", "null"]
    static let ignored: Set<String> = ["title", "description", "$schema", "$comment"]

    /// Parses a `$jsonSchema` object; unknown or malformed keywords fail with MongoDB's codes.
    public init(_ document: BSONDocument, depth: Int = 0) throws(QueryError) {
        guard depth < 64 else { throw QueryError(.badValue, "$jsonSchema is nested too deeply") }
        var keywords: [Keyword] = []
        func strings(_ value: BSONValue, _ keyword: String) throws(QueryError) -> [String] {
            switch value {
            case .string(let text): return [text]
            case .array(let items) where !items.isEmpty:
                var out: [String] = []
                for item in items {
                    guard case .string(let text) = item else { throw QueryError(.typeMismatch, "$jsonSchema keyword '\(keyword)' must be a string or an array of strings") }
                    out.append(text)
                }
                return out
            default: throw QueryError(.typeMismatch, "$jsonSchema keyword '\(keyword)' must be a string or an array of strings")
            }
        }
        func count(_ value: BSONValue, _ keyword: String) throws(QueryError) -> Int {
            guard value.isNumber, let number = value.int64Value, number >= 0 else {
                throw QueryError(.failedToParse, "$jsonSchema keyword '\(keyword)' must be a representable nonnegative integer")
            }
            return Int(clamping: number)
        }
        func subschema(_ value: BSONValue, _ keyword: String) throws(QueryError) -> JSONSchema {
            guard case .document(let inner) = value else { throw QueryError(.typeMismatch, "$jsonSchema keyword '\(keyword)' must be an object") }
            return try JSONSchema(inner, depth: depth + 1)
        }
        func subschemas(_ value: BSONValue, _ keyword: String) throws(QueryError) -> [JSONSchema] {
            guard case .array(let items) = value, !items.isEmpty else {
                throw QueryError(.badValue, "$jsonSchema keyword '\(keyword)' must be a nonempty array")
            }
            var out: [JSONSchema] = []
            for item in items { out.append(try subschema(item, keyword)) }
            return out
        }
        let exclusiveMinimum = document["exclusiveMinimum"]?.isTruthy ?? false
        let exclusiveMaximum = document["exclusiveMaximum"]?.isTruthy ?? false
        for element in document.elements {
            let value = element.value
            switch element.key {
            case "bsonType":
                let names = try strings(value, "bsonType")
                for name in names where !Self.bsonTypes.contains(name) { throw QueryError(.badValue, "Unknown type name alias: \(name)") }
                keywords.append(.bsonType(names))
            case "type":
                let names = try strings(value, "type")
                for name in names where !Self.jsonTypes.contains(name) {
                    throw QueryError(.badValue, name == "integer" ? "$jsonSchema type 'integer' is not currently supported." : "Unknown $jsonSchema type: \(name)")
                }
                keywords.append(.type(names))
            case "required":
                guard case .array(let items) = value, !items.isEmpty else {
                    throw QueryError(.badValue, "$jsonSchema keyword 'required' cannot be an empty array")
                }
                keywords.append(.required(try strings(value, "required")))
            case "properties":
                guard case .document(let properties) = value else { throw QueryError(.typeMismatch, "$jsonSchema keyword 'properties' must be an object") }
                var parsed: [(String, JSONSchema)] = []
                for property in properties.elements { parsed.append((property.key, try subschema(property.value, "properties"))) }
                keywords.append(.properties(parsed))
            case "patternProperties":
                guard case .document(let patterns) = value else { throw QueryError(.typeMismatch, "$jsonSchema keyword 'patternProperties' must be an object") }
                var parsed: [(CompiledRegex, String, JSONSchema)] = []
                for pattern in patterns.elements {
                    parsed.append((try CompiledRegex(BSONRegex(pattern: pattern.key, options: "")), pattern.key, try subschema(pattern.value, "patternProperties")))
                }
                keywords.append(.patternProperties(parsed))
            case "additionalProperties":
                switch value {
                case .bool(let allowed): keywords.append(.additionalProperties(allowed))
                case .document: keywords.append(.additionalPropertiesSchema(try subschema(value, "additionalProperties")))
                default: throw QueryError(.typeMismatch, "$jsonSchema keyword 'additionalProperties' must be either an object or a boolean")
                }
            case "minProperties": keywords.append(.minProperties(try count(value, "minProperties")))
            case "maxProperties": keywords.append(.maxProperties(try count(value, "maxProperties")))
            case "enum":
                guard case .array(let items) = value, !items.isEmpty else { throw QueryError(.badValue, "$jsonSchema keyword 'enum' cannot be an empty array") }
                keywords.append(.enumeration(items))
            case "minimum", "maximum":
                guard value.isNumber else { throw QueryError(.typeMismatch, "$jsonSchema keyword '\(element.key)' must be a number") }
                keywords.append(element.key == "minimum" ? .minimum(value, exclusive: exclusiveMinimum) : .maximum(value, exclusive: exclusiveMaximum))
            case "exclusiveMinimum", "exclusiveMaximum":
                guard case .bool = value else { throw QueryError(.typeMismatch, "$jsonSchema keyword '\(element.key)' must be a boolean") }
                guard document[element.key == "exclusiveMinimum" ? "minimum" : "maximum"] != nil else {
                    throw QueryError(.failedToParse, "$jsonSchema keyword '\(element.key == "exclusiveMinimum" ? "minimum" : "maximum")' must be a present if \(element.key) is present")
                }
            case "multipleOf":
                guard value.isNumber, let divisor = value.doubleValue, divisor > 0 else {
                    throw QueryError(.failedToParse, "$jsonSchema keyword 'multipleOf' must have a positive value")
                }
                keywords.append(.multipleOf(divisor))
            case "minLength": keywords.append(.minLength(try count(value, "minLength")))
            case "maxLength": keywords.append(.maxLength(try count(value, "maxLength")))
            case "pattern":
                guard case .string(let pattern) = value else { throw QueryError(.typeMismatch, "$jsonSchema keyword 'pattern' must be a string") }
                keywords.append(.pattern(try CompiledRegex(BSONRegex(pattern: pattern, options: "")), pattern))
            case "items":
                switch value {
                case .document: keywords.append(.items(try subschema(value, "items")))
                case .array:
                    var additional: JSONSchema?
                    var allowed = true
                    switch document["additionalItems"] {
                    case .bool(let flag)?: allowed = flag
                    case .document?: additional = try subschema(document["additionalItems"]!, "additionalItems")
                    case nil: break
                    default: throw QueryError(.typeMismatch, "$jsonSchema keyword 'additionalItems' must be either an object or a boolean")
                    }
                    keywords.append(.itemsList(try subschemas(value, "items"), additional: additional, additionalAllowed: allowed))
                default: throw QueryError(.typeMismatch, "$jsonSchema keyword 'items' must be an array or an object")
                }
            case "additionalItems": continue  // Read with `items`.
            case "minItems": keywords.append(.minItems(try count(value, "minItems")))
            case "maxItems": keywords.append(.maxItems(try count(value, "maxItems")))
            case "uniqueItems":
                guard case .bool(let unique) = value else { throw QueryError(.typeMismatch, "$jsonSchema keyword 'uniqueItems' must be a boolean") }
                if unique { keywords.append(.uniqueItems) }
            case "allOf": keywords.append(.allOf(try subschemas(value, "allOf")))
            case "anyOf": keywords.append(.anyOf(try subschemas(value, "anyOf")))
            case "oneOf": keywords.append(.oneOf(try subschemas(value, "oneOf")))
            case "not": keywords.append(.not(try subschema(value, "not")))
            case "dependencies":
                guard case .document(let dependencies) = value else { throw QueryError(.typeMismatch, "$jsonSchema keyword 'dependencies' must be an object") }
                var parsed: [(String, [String]?, JSONSchema?)] = []
                for dependency in dependencies.elements {
                    if case .document = dependency.value {
                        parsed.append((dependency.key, nil, try subschema(dependency.value, "dependencies")))
                    } else {
                        parsed.append((dependency.key, try strings(dependency.value, "dependencies"), nil))
                    }
                }
                keywords.append(.dependencies(parsed))
            default:
                if Self.ignored.contains(element.key) { continue }
                if ["$ref", "$id", "default", "definitions", "format", "id"].contains(element.key) {
                    throw QueryError(.failedToParse, "$jsonSchema keyword '\(element.key)' is not currently supported")
                }
                throw QueryError(.failedToParse, "Unknown $jsonSchema keyword: \(element.key)")
            }
        }
        self = .schema(keywords)
    }

    /// The rules `value` breaks (empty when it satisfies the schema).
    public func violations(_ value: BSONValue) -> [BSONDocument] {
        guard case .schema(let keywords) = self else { return [] }
        var failed: [BSONDocument] = []
        for keyword in keywords {
            if let failure = Self.check(keyword, value) { failed.append(failure) }
        }
        if let failure = additionalViolation(value) { failed.append(failure) }
        return failed
    }

    public func accepts(_ value: BSONValue) -> Bool { violations(value).isEmpty }

    // swiftlint:disable:next cyclomatic_complexity function_body_length
    private static func check(_ keyword: Keyword, _ value: BSONValue) -> BSONDocument? {
        let type = BSONValue.string(value.typeAlias)
        switch keyword {
        case .bsonType(let names):
            let matches = names.contains { $0 == value.typeAlias || ($0 == "number" && value.isNumber) }
            return matches ? nil : ["operatorName": .string("bsonType"), "specifiedAs": .document(["bsonType": names.count == 1 ? .string(names[0]) : .array(names.map { .string($0) })]), "reason": .string("type did not match"), "consideredType": type]
        case .type(let names):
            let jsonType: String = switch value {
            case .document: "object"
            case .array: "array"
            case .string: "string"
            case .bool: "boolean"
            case .null: "null"
            default: value.isNumber ? "number" : value.typeAlias
            }
            return names.contains(jsonType) ? nil : ["operatorName": .string("type"), "reason": .string("type did not match"), "consideredType": type]
        default: break
        }
        // The other keywords constrain only values of their kind (JSON Schema's rule).
        switch (keyword, value) {
        case (.required(let names), .document(let document)):
            let missing = names.filter { document[$0] == nil }
            return missing.isEmpty ? nil : ["operatorName": .string("required"), "specifiedAs": .document(["required": .array(names.map { .string($0) })]), "missingProperties": .array(missing.map { .string($0) })]
        case (.properties(let properties), .document(let document)):
            var failing: [BSONValue] = []
            for (name, schema) in properties {
                guard let field = document[name] else { continue }
                let details = schema.violations(field)
                if !details.isEmpty { failing.append(.document(["propertyName": .string(name), "details": .array(details.map { .document($0) })])) }
            }
            return failing.isEmpty ? nil : ["operatorName": .string("properties"), "propertiesNotSatisfied": .array(failing)]
        case (.patternProperties(let patterns), .document(let document)):
            var failing: [BSONValue] = []
            for element in document.elements {
                for (regex, source, schema) in patterns where regex.matches(element.key) {
                    let details = schema.violations(element.value)
                    if !details.isEmpty {
                        failing.append(.document(["propertyName": .string(element.key), "regexMatched": .string(source), "details": .array(details.map { .document($0) })]))
                    }
                }
            }
            return failing.isEmpty ? nil : ["operatorName": .string("patternProperties"), "propertiesNotSatisfied": .array(failing)]
        case (.additionalProperties, .document), (.additionalPropertiesSchema, .document):
            return nil  // Checked by `additional(_:_:)`, which knows the sibling keywords.
        case (.minProperties(let minimum), .document(let document)):
            return document.count >= minimum ? nil : ["operatorName": .string("minProperties"), "specifiedAs": .document(["minProperties": .int64(Int64(minimum))]), "reason": .string("specified number of properties was not satisfied"), "numberOfProperties": .int64(Int64(document.count))]
        case (.maxProperties(let maximum), .document(let document)):
            return document.count <= maximum ? nil : ["operatorName": .string("maxProperties"), "specifiedAs": .document(["maxProperties": .int64(Int64(maximum))]), "reason": .string("specified number of properties was not satisfied"), "numberOfProperties": .int64(Int64(document.count))]
        case (.enumeration(let allowed), _):
            // Compared without collation, as MongoDB's `enum` does (a query's collation does not apply).
            let found = Collation.with(nil) { () -> Bool in allowed.contains { BSONComparison.equal($0, value) && $0.canonicalRank == value.canonicalRank } }
            return found ? nil : ["operatorName": .string("enum"), "reason": .string("value was not found in enum"), "consideredType": type]
        case (.minimum(let bound, let exclusive), _) where value.isNumber:
            let order = BSONComparison.compare(value, bound)
            return (exclusive ? order > 0 : order >= 0) ? nil : ["operatorName": .string("minimum"), "specifiedAs": .document(["minimum": bound]), "reason": .string("comparison failed"), "consideredType": type]
        case (.maximum(let bound, let exclusive), _) where value.isNumber:
            let order = BSONComparison.compare(value, bound)
            return (exclusive ? order < 0 : order <= 0) ? nil : ["operatorName": .string("maximum"), "specifiedAs": .document(["maximum": bound]), "reason": .string("comparison failed"), "consideredType": type]
        case (.multipleOf(let divisor), _) where value.isNumber:
            let number = value.doubleValue ?? 0
            return number.truncatingRemainder(dividingBy: divisor) == 0 ? nil : ["operatorName": .string("multipleOf"), "specifiedAs": .document(["multipleOf": .double(divisor)]), "reason": .string("considered value was not a multiple of specified value"), "consideredType": type]
        case (.minLength(let minimum), .string(let text)):
            return text.unicodeScalars.count >= minimum ? nil : ["operatorName": .string("minLength"), "specifiedAs": .document(["minLength": .int64(Int64(minimum))]), "reason": .string("specified string length was not satisfied")]
        case (.maxLength(let maximum), .string(let text)):
            return text.unicodeScalars.count <= maximum ? nil : ["operatorName": .string("maxLength"), "specifiedAs": .document(["maxLength": .int64(Int64(maximum))]), "reason": .string("specified string length was not satisfied")]
        case (.pattern(let regex, let source), .string(let text)):
            return regex.matches(text) ? nil : ["operatorName": .string("pattern"), "specifiedAs": .document(["pattern": .string(source)]), "reason": .string("regular expression did not match")]
        case (.items(let schema), .array(let items)):
            for (index, item) in items.enumerated() {
                let details = schema.violations(item)
                if !details.isEmpty {
                    return ["operatorName": .string("items"), "reason": .string("At least one item did not match the sub-schema"), "itemIndex": .int64(Int64(index)), "details": .array(details.map { .document($0) })]
                }
            }
            return nil
        case (.itemsList(let schemas, let additional, let allowed), .array(let items)):
            for (index, item) in items.enumerated() {
                if index < schemas.count {
                    if !schemas[index].accepts(item) { return ["operatorName": .string("items"), "reason": .string("At least one item did not match the sub-schema"), "itemIndex": .int64(Int64(index))] }
                } else if !allowed {
                    return ["operatorName": .string("additionalItems"), "reason": .string("found additional items")]
                } else if let additional, !additional.accepts(item) {
                    return ["operatorName": .string("additionalItems"), "reason": .string("At least one additional item did not match the sub-schema"), "itemIndex": .int64(Int64(index))]
                }
            }
            return nil
        case (.minItems(let minimum), .array(let items)):
            return items.count >= minimum ? nil : ["operatorName": .string("minItems"), "specifiedAs": .document(["minItems": .int64(Int64(minimum))]), "reason": .string("array did not match specified length"), "numberOfItems": .int64(Int64(items.count))]
        case (.maxItems(let maximum), .array(let items)):
            return items.count <= maximum ? nil : ["operatorName": .string("maxItems"), "specifiedAs": .document(["maxItems": .int64(Int64(maximum))]), "reason": .string("array did not match specified length"), "numberOfItems": .int64(Int64(items.count))]
        case (.uniqueItems, .array(let items)):
            // Equal values (1 and 1.0 too) have equal index keys: one pass with a set. The rare
            // numbers whose keys are not exact are compared when their keys meet.
            var seen: [[UInt8]: [BSONValue]] = [:]
            for item in items {
                let key = IndexKey.encode(item)
                if let earlier = seen[key], earlier.contains(where: { BSONComparison.equal($0, item) }) {
                    return ["operatorName": .string("uniqueItems"), "reason": .string("found a duplicate item")]
                }
                seen[key, default: []].append(item)
            }
            return nil
        case (.allOf(let schemas), _):
            return schemas.allSatisfy { $0.accepts(value) } ? nil : ["operatorName": .string("allOf"), "reason": .string("at least one of the subschemas failed")]
        case (.anyOf(let schemas), _):
            return schemas.contains { $0.accepts(value) } ? nil : ["operatorName": .string("anyOf"), "reason": .string("no subschema matched")]
        case (.oneOf(let schemas), _):
            return schemas.count { $0.accepts(value) } == 1 ? nil : ["operatorName": .string("oneOf"), "reason": .string("not exactly one subschema matched")]
        case (.not(let schema), _):
            return schema.accepts(value) ? ["operatorName": .string("not"), "reason": .string("child expression matched")] : nil
        case (.dependencies(let dependencies), .document(let document)):
            for (name, required, schema) in dependencies where document[name] != nil {
                if let required, let missing = required.first(where: { document[$0] == nil }) {
                    return ["operatorName": .string("dependencies"), "failingDependencies": .array([.document(["conditionalProperty": .string(name), "missingProperties": .array([.string(missing)])])])]
                }
                if let schema, !schema.accepts(value) {
                    return ["operatorName": .string("dependencies"), "failingDependencies": .array([.document(["conditionalProperty": .string(name), "reason": .string("subschema did not match")])])]
                }
            }
            return nil
        default:
            return nil
        }
    }
}

extension JSONSchema {
    /// `additionalProperties`: fields not named by `properties` nor matched by
    /// `patternProperties` are refused (false) or must satisfy a schema.
    func additionalViolation(_ value: BSONValue) -> BSONDocument? {
        guard case .schema(let keywords) = self, case .document(let document) = value else { return nil }
        var named = Set<String>()
        var patterns: [CompiledRegex] = []
        var rule: (allowed: Bool, schema: JSONSchema?)?
        for keyword in keywords {
            switch keyword {
            case .properties(let properties): named.formUnion(properties.map(\.0))
            case .patternProperties(let list): patterns += list.map(\.0)
            case .additionalProperties(let allowed): rule = (allowed, nil)
            case .additionalPropertiesSchema(let schema): rule = (true, schema)
            default: break
            }
        }
        guard let rule else { return nil }
        let extra = document.elements.filter { element in !named.contains(element.key) && !patterns.contains { $0.matches(element.key) } }
        if !rule.allowed, !extra.isEmpty {
            return ["operatorName": .string("additionalProperties"), "specifiedAs": .document(["additionalProperties": .bool(false)]), "additionalProperties": .array(extra.map { .string($0.key) })]
        }
        if let schema = rule.schema, let failing = extra.first(where: { !schema.accepts($0.value) }) {
            return ["operatorName": .string("additionalProperties"), "reason": .string("at least one additional property did not match the subschema"), "failingProperty": .string(failing.key)]
        }
        return nil
    }
}
