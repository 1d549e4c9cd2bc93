import Foundation

/// An aggregation expression (`$add`, `"$field"`, `{$cond: …}`, literals, …), parsed once.
public indirect enum Expression: Sendable {
    case literal(BSONValue)
    case fieldPath(FieldPath)
    case variable(String, FieldPath?)
    case object([(String, Expression)])
    case array([Expression])
    case call(ExpressionOperator, [Expression])
    /// `$map`, `$filter` and `$let` bind a variable over an inner expression.
    case bind(operator: ExpressionOperator, input: Expression, variable: String, body: Expression, extra: Expression?)

    /// Parses an expression from its BSON form.
    public init(_ value: BSONValue) throws(QueryError) {
        switch value {
        case .string(let text) where text.hasPrefix("$$"):
            let parts = text.dropFirst(2).split(separator: ".", maxSplits: 1).map(String.init)
            guard let name = parts.first, !name.isEmpty else { throw QueryError(.failedToParse, "empty variable name") }
            self = .variable(name, parts.count > 1 ? try FieldPath(parts[1]) : nil)
        case .string(let text) where text.hasPrefix("$"):
            self = .fieldPath(try FieldPath(String(text.dropFirst())))
        case .array(let items):
            var parsed: [Expression] = []
            for item in items { parsed.append(try Expression(item)) }
            self = .array(parsed)
        case .document(let document):
            if document.count == 1, let name = document.firstKey, name.hasPrefix("$") {
                self = try Expression.parseOperator(name, document[0].value)
            } else {
                var fields: [(String, Expression)] = []
                for element in document.elements {
                    if element.key.hasPrefix("$") {
                        throw QueryError(
                            .location(16410), "FieldPath field names may not start with '$'. Consider using $getField or $setField.")
                    }
                    fields.append((element.key, try Expression(element.value)))
                }
                self = .object(fields)
            }
        default:
            self = .literal(value)
        }
    }

    private static func parseOperator(_ name: String, _ argument: BSONValue) throws(QueryError) -> Expression {
        switch name {
        case "$literal": return .literal(argument)
        case "$meta":
            // A text search's relevance, carried by each of its matches (`TextQuery.scoreField`).
            guard argument == .string("textScore") else {
                throw QueryError(.location(17308), "Unsupported argument to $meta: only \"textScore\" is supported by StratosDB")
            }
            return .variable("ROOT", FieldPath(components: [TextQuery.scoreField]))
        case "$map", "$filter":
            guard case .document(let spec) = argument, let input = spec["input"] else {
                throw QueryError(.failedToParse, "\(name) requires an 'input' field")
            }
            let variable = spec["as"]?.stringValue ?? "this"
            guard let body = spec[name == "$map" ? "in" : "cond"] else {
                throw QueryError(.failedToParse, "\(name) requires '\(name == "$map" ? "in" : "cond")'")
            }
            return .bind(
                operator: name == "$map" ? .map : .filter, input: try Expression(input), variable: variable, body: try Expression(body),
                extra: try spec["limit"].map { value throws(QueryError) in try Expression(value) })
        case "$reduce":
            guard case .document(let spec) = argument else {
                throw QueryError(.location(40075), "$reduce only supports an object as its argument")
            }
            for key in spec.keys where !["input", "initialValue", "in"].contains(key) {
                throw QueryError(.location(40076), "$reduce found an unknown argument: \(key)")
            }
            guard let input = spec["input"] else { throw QueryError(.location(40077), "$reduce requires 'input' to be specified") }
            guard let initial = spec["initialValue"] else { throw QueryError(.location(40078), "$reduce requires 'initialValue' to be specified") }
            guard let body = spec["in"] else { throw QueryError(.location(40079), "$reduce requires 'in' to be specified") }
            return .bind(operator: .reduce, input: try Expression(input), variable: "", body: try Expression(body), extra: try Expression(initial))
        case "$getField", "$setField", "$unsetField":
            return try ExpressionOperators.parseFieldOperator(ExpressionOperator(rawValue: name)!, argument)
        case "$let":
            guard case .document(let spec) = argument, case .document(let vars)? = spec["vars"], let body = spec["in"] else {
                throw QueryError(.failedToParse, "$let requires 'vars' and 'in'")
            }
            var bindings: [(String, Expression)] = []
            for element in vars.elements { bindings.append((element.key, try Expression(element.value))) }
            return .bind(operator: .`let`, input: .object(bindings), variable: "", body: try Expression(body), extra: nil)
        case "$cond":
            if case .document(let spec) = argument {
                guard let condition = spec["if"], let then = spec["then"], let otherwise = spec["else"] else {
                    throw QueryError(.location(17080), "Missing 'if', 'then' or 'else' parameter to $cond")
                }
                return .call(.cond, [try Expression(condition), try Expression(then), try Expression(otherwise)])
            }
        case "$dateFromString":
            // Checked here: once evaluated, a `dateString` that names a missing field is absent too.
            if case .document(let spec) = argument, !spec.keys.contains("dateString") {
                throw QueryError(.location(40542), "Missing 'dateString' parameter to $dateFromString")
            }
        case "$switch":
            guard case .document(let spec) = argument, case .array(let branches)? = spec["branches"] else {
                throw QueryError(.location(40060), "$switch requires at least one branch")
            }
            var arguments: [Expression] = []
            for branch in branches {
                guard case .document(let pair) = branch, let caseValue = pair["case"], let then = pair["then"] else {
                    throw QueryError(.location(40061), "$switch requires each branch to have 'case' and 'then'")
                }
                arguments.append(try Expression(caseValue))
                arguments.append(try Expression(then))
            }
            if let fallback = spec["default"] { arguments.append(try Expression(fallback)) }
            return .call(.switch, arguments)
        default: break
        }
        guard let op = ExpressionOperator(rawValue: name), op.family != .binding else {
            throw QueryError(.invalidPipelineOperator, "Unrecognized expression '\(name)'")
        }
        if case .array(let items) = argument {
            var parsed: [Expression] = []
            for item in items { parsed.append(try Expression(item)) }
            return .call(op, parsed)
        }
        return .call(op, [try Expression(argument)])
    }
}

/// The variables and the current document an expression is evaluated against.
public struct ExpressionContext: Sendable {
    /// `$$ROOT`.
    public var root: BSONDocument
    /// `$$CURRENT`, the document field paths resolve against.
    public var current: BSONValue
    /// User variables (`$let`, `$map`, `$filter`, `$lookup` `let`).
    public var variables: [String: BSONValue] = [:]
    /// `$$NOW`, fixed for one command.
    public var now: Int64 = 0

    /// Creates a context for one document.
    public init(root: BSONDocument) {
        self.root = root
        self.current = .document(root)
        if let scope = ExpressionScope.current {
            variables = scope.variables
            if let now = scope.now { self.now = now }
        }
    }
}

extension Expression {
    /// Evaluates the expression; `nil` means "missing" (MongoDB's absent value).
    public func evaluate(_ context: ExpressionContext) throws(QueryError) -> BSONValue? {
        switch self {
        case .literal(let value): return value
        case .fieldPath(let path): return Expression.resolve(path, in: context.current)
        case .variable(let name, let path):
            let base: BSONValue?
            switch name {
            case "ROOT": base = .document(context.root)
            case "CURRENT": base = context.current
            case "NOW": base = .datetime(context.now)
            case "REMOVE": return nil
            case "KEEP", "PRUNE", "DESCEND": return .string("$$" + name)
            default:
                guard let value = context.variables[name] else {
                    throw QueryError(.location(17276), "Use of undefined variable: \(name)")
                }
                base = value
            }
            guard let path else { return base }
            return base.flatMap { Expression.resolve(path, in: $0) }
        case .object(let fields):
            var document = BSONDocument()
            for (key, expression) in fields {
                if let value = try expression.evaluate(context) { document[key] = value }
            }
            return .document(document)
        case .array(let items):
            var values: [BSONValue] = []
            for item in items { values.append(try item.evaluate(context) ?? .null) }
            return .array(values)
        case .call(let name, let arguments):
            return try ExpressionOperators.call(name, arguments, context)
        case .bind(let name, let input, let variable, let body, let extra):
            return try ExpressionOperators.bind(name, input, variable, body, extra, context)
        }
    }

    /// Aggregation path semantics: arrays along the path map over their document elements.
    static func resolve(_ path: FieldPath, in value: BSONValue) -> BSONValue? {
        var current: BSONValue? = value
        for (offset, component) in path.components.enumerated() {
            switch current {
            case .document(let document)?:
                current = document[component]
            case .array(let elements)?:
                let rest = FieldPath(components: Array(path.components[offset...]))
                return .array(elements.compactMap { element -> BSONValue? in
                    guard case .document = element else { return nil }
                    return resolve(rest, in: element)
                })
            default:
                return nil
            }
        }
        return current
    }
}

/// The variables every expression of one command sees on the thread evaluating it: the
/// command's `let`, a `$lookup` stage's `let` for its sub-pipeline, and `$$NOW`. A query's
/// `$expr` reads them too, so `{$match: {$expr: {$eq: ["$sku", "$$item"]}}}` inside a
/// `$lookup` pipeline sees `$$item`. Scopes nest; an inner scope's variables shadow the outer.
public enum ExpressionScope {
    final class Frame {
        let variables: [String: BSONValue]
        let now: Int64?
        init(variables: [String: BSONValue], now: Int64?) {
            self.variables = variables
            self.now = now
        }
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    static var current: Frame? {
        guard let pointer = pthread_getspecific(key) else { return nil }
        return Unmanaged<Frame>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// Runs `body` with `variables` (added to the enclosing scope's) and, when given, `now`.
    public static func with<T>(
        variables: [String: BSONValue], now: Int64? = nil, _ body: () throws(QueryError) -> T
    ) throws(QueryError) -> T {
        let previous = pthread_getspecific(key)
        let outer = current
        let frame = Frame(
            variables: (outer?.variables ?? [:]).merging(variables) { _, inner in inner }, now: now ?? outer?.now)
        let retained = Unmanaged.passRetained(frame)
        pthread_setspecific(key, retained.toOpaque())
        defer {
            pthread_setspecific(key, previous)
            retained.release()
        }
        return try body()
    }

    /// Checks the names of a `let` document (user variables start with a lowercase letter or a
    /// non-ASCII character) and evaluates its values against `context`.
    public static func evaluate(_ specification: BSONDocument, in context: ExpressionContext) throws(QueryError) -> [String: BSONValue] {
        var variables: [String: BSONValue] = [:]
        for element in specification.elements {
            try validateName(element.key)
            variables[element.key] = try Expression(element.value).evaluate(context) ?? .null
        }
        return variables
    }

    static func validateName(_ name: String) throws(QueryError) {
        guard let first = name.unicodeScalars.first, first.properties.isLowercase || first.value > 127,
            name.unicodeScalars.allSatisfy({ $0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0.value > 127 })
        else {
            throw QueryError(.failedToParse, "'\(name)' starts with an invalid character for a user variable name")
        }
    }
}

extension Expression {
    /// The expression with `variables` and `$$NOW` replaced by their values, for a query that
    /// is evaluated later (a cursor's next batch runs outside the command's scope). Variables
    /// bound inside (`$let`, `$map`, `$filter`, `$reduce`) shadow the outer ones.
    public func binding(_ variables: [String: BSONValue], now: Int64) -> Expression {
        switch self {
        case .literal, .fieldPath: return self
        case .variable(let name, let path):
            let value: BSONValue?
            if name == "NOW" { value = .datetime(now) } else { value = variables[name] }
            guard let value else { return self }
            guard let path else { return .literal(value) }
            // A path into a bound value: MongoDB's missing becomes `$$REMOVE`.
            return Expression.resolve(path, in: value).map { .literal($0) } ?? .variable("REMOVE", nil)
        case .object(let fields): return .object(fields.map { ($0.0, $0.1.binding(variables, now: now)) })
        case .array(let items): return .array(items.map { $0.binding(variables, now: now) })
        case .call(let name, let arguments): return .call(name, arguments.map { $0.binding(variables, now: now) })
        case .bind(let name, let input, let variable, let body, let extra):
            var inner = variables
            switch name {
            case .`let`:
                if case .object(let bindings) = input { for (key, _) in bindings { inner[key] = nil } }
            case .reduce:
                inner["value"] = nil
                inner["this"] = nil
            default:
                inner[variable] = nil
            }
            return .bind(
                operator: name, input: input.binding(variables, now: now), variable: variable, body: body.binding(inner, now: now),
                extra: extra?.binding(variables, now: now))
        }
    }
}

extension Filter {
    /// Whether the filter holds an `$expr` (only those can use variables).
    public var containsExpression: Bool {
        switch self {
        case .alwaysTrue, .text, .jsonSchema: return false
        case .and(let clauses), .or(let clauses), .nor(let clauses): return clauses.contains { $0.containsExpression }
        case .expression: return true
        case .field(_, let operators): return operators.contains { $0.containsExpression }
        }
    }

    /// The filter with every `$expr`'s variables and `$$NOW` bound (see `Expression.binding`).
    public func binding(_ variables: [String: BSONValue], now: Int64) -> Filter {
        switch self {
        case .alwaysTrue, .text, .jsonSchema: return self
        case .and(let clauses): return .and(clauses.map { $0.binding(variables, now: now) })
        case .or(let clauses): return .or(clauses.map { $0.binding(variables, now: now) })
        case .nor(let clauses): return .nor(clauses.map { $0.binding(variables, now: now) })
        case .expression(let expression): return .expression(expression.binding(variables, now: now))
        case .field(let path, let operators): return .field(path, operators.map { $0.binding(variables, now: now) })
        }
    }
}

extension Filter.FieldOperator {
    var containsExpression: Bool {
        switch self {
        case .not(let operators), .elemMatchValue(let operators): return operators.contains { $0.containsExpression }
        case .elemMatchDocument(let filter): return filter.containsExpression
        case .allElemMatch(let filters): return filters.contains { $0.containsExpression }
        default: return false
        }
    }

    func binding(_ variables: [String: BSONValue], now: Int64) -> Filter.FieldOperator {
        switch self {
        case .not(let operators): return .not(operators.map { $0.binding(variables, now: now) })
        case .elemMatchDocument(let filter): return .elemMatchDocument(filter.binding(variables, now: now))
        case .elemMatchValue(let operators): return .elemMatchValue(operators.map { $0.binding(variables, now: now) })
        case .allElemMatch(let filters): return .allElemMatch(filters.map { $0.binding(variables, now: now) })
        default: return self
        }
    }
}
