/// `$densify`: fills the gaps of a numeric or date sequence, per partition, with documents that
/// hold only the sequence field and the partition fields.
///
/// The grid starts at the range's lower bound and moves by `step` (in `unit`s for dates).
/// Existing documents are kept as they are, on the grid or not; a grid value that an existing
/// document already holds is not generated again. Bounds: `"full"` (the lowest to the highest
/// value of all partitions, in every partition), `"partition"` (each partition's own), or
/// `[lower, upper]` (upper excluded; documents outside pass through). Documents without the
/// field pass through first. Output: by partition, then by the field.
struct DensifySpecification: Sendable {
    enum Bounds: Sendable {
        case full, partition
        case explicit(BSONValue, BSONValue)
    }

    let field: FieldPath
    let partitionFields: [FieldPath]
    let step: BSONValue
    let unit: DateArithmetic.Unit?
    let bounds: Bounds

    /// MongoDB's `internalQueryMaxAllowedDensifyDocs`.
    static let generatedDocumentsMax = 500_000

    init(_ argument: BSONValue) throws(QueryError) {
        guard case .document(let spec) = argument else { throw QueryError(.failedToParse, "$densify must be an object") }
        for key in spec.keys where !["field", "partitionByFields", "range"].contains(key) {
            throw QueryError(.location(40415), "BSON field '$densify.\(key)' is an unknown field.")
        }
        guard case .string(let name)? = spec["field"], !name.hasPrefix("$") else {
            throw QueryError(.location(5733400), "$densify 'field' must be a field name (not an expression) string")
        }
        field = try FieldPath(name)
        var partitions: [FieldPath] = []
        if let given = spec["partitionByFields"] {
            guard case .array(let names) = given else { throw QueryError(.typeMismatch, "$densify 'partitionByFields' must be an array of field names") }
            for case .string(let partition) in names {
                guard !partition.hasPrefix("$") else { throw QueryError(.location(8993000), "$densify partition fields are field names, not expressions") }
                partitions.append(try FieldPath(partition))
            }
            guard partitions.count == names.count else { throw QueryError(.typeMismatch, "$densify 'partitionByFields' must be an array of field names") }
            let densified = try FieldPath(name)
            guard !partitions.contains(where: { $0.isPrefix(of: densified) || densified.isPrefix(of: $0) }) else {
                throw QueryError(.location(8993000), "$densify 'field' cannot be a partition field or share a prefix with one")
            }
        }
        partitionFields = partitions
        guard case .document(let range)? = spec["range"] else { throw QueryError(.location(40414), "$densify requires 'range', an object") }
        for key in range.keys where !["step", "unit", "bounds"].contains(key) {
            throw QueryError(.location(40415), "BSON field '$densify.range.\(key)' is an unknown field.")
        }
        guard let step = range["step"], step.isNumber, let size = step.doubleValue, size > 0, size.isFinite else {
            throw QueryError(.location(5733401), "the step in a $densify range must be a positive number")
        }
        unit = try range["unit"].map { value throws(QueryError) in try DateArithmetic.unit(value, "$densify") }
        if unit != nil {
            guard let whole = step.int64Value, Double(whole) == size else {
                throw QueryError(.location(6586400), "the step in a $densify range over dates must be a whole number")
            }
            self.step = .int64(whole)
        } else {
            self.step = step
        }
        switch range["bounds"] {
        case .string("full")?: bounds = .full
        case .string("partition")?: bounds = .partition
        case .array(let pair)? where pair.count == 2:
            let (lower, upper) = (pair[0], pair[1])
            let dates = unit != nil
            guard dates ? (lower.typeAlias == "date" && upper.typeAlias == "date") : (lower.isNumber && upper.isNumber && Self.isFinite(lower) && Self.isFinite(upper)) else {
                throw QueryError(.location(5733402), dates ? "$densify bounds with a 'unit' must be dates" : "$densify bounds must be numbers (or dates with a 'unit')")
            }
            guard BSONComparison.compare(lower, upper) <= 0 else {
                throw QueryError(.location(5733403), "the lower bound of a $densify range must not be above the upper bound")
            }
            bounds = .explicit(lower, upper)
        default:
            throw QueryError(.location(5946802), "$densify 'bounds' must be \"full\", \"partition\" or an array of two values")
        }
    }

    func apply(_ documents: [BSONDocument]) throws(QueryError) -> [BSONDocument] {
        var passThrough: [BSONDocument] = []
        var order: [GroupKey] = []
        var partitions: [GroupKey: (values: [BSONValue], documents: [(BSONValue, BSONDocument)])] = [:]
        var lowest: BSONValue?
        var highest: BSONValue?
        for document in documents {
            guard let value = field.value(in: document), value != .null, value != .undefined else {
                passThrough.append(document)
                continue
            }
            guard unit == nil ? value.isNumber && Self.isFinite(value) : value.typeAlias == "date" else {
                throw QueryError(
                    .location(unit == nil ? 5733201 : 5733500),
                    unit == nil ? "$densify needs finite numbers (or dates with a 'unit'), found \(value.isNumber ? "NaN or infinity" : value.typeAlias)" : "$densify with a 'unit' found a \(value.typeAlias) where it needs a date")
            }
            let partitionValues = partitionFields.map { $0.value(in: document) ?? .null }
            let key = GroupKey(.array(partitionValues))
            if partitions[key] == nil {
                order.append(key)
                partitions[key] = (partitionValues, [])
            }
            partitions[key]?.documents.append((value, document))
            if lowest.map({ BSONComparison.compare(value, $0) < 0 }) ?? true { lowest = value }
            if highest.map({ BSONComparison.compare(value, $0) > 0 }) ?? true { highest = value }
        }
        var output = passThrough
        var generated = 0
        for key in order.sorted(by: { BSONComparison.compare($0.value, $1.value) < 0 }) {
            guard var partition = partitions[key] else { continue }
            try OperationContext.checkpoint()
            partition.documents.sort { BSONComparison.compare($0.0, $1.0) < 0 }
            let range: (lower: BSONValue, upper: BSONValue, inclusive: Bool)
            switch bounds {
            case .full: range = (lowest!, highest!, true)
            case .partition: range = (partition.documents.first!.0, partition.documents.last!.0, true)
            case .explicit(let lower, let upper): range = (lower, upper, false)
            }
            var next: BSONValue? = range.lower
            var index = 0
            func emitExisting(below limit: BSONValue?) {
                while index < partition.documents.count, limit.map({ BSONComparison.compare(partition.documents[index].0, $0) < 0 }) ?? true {
                    output.append(partition.documents[index].1)
                    index += 1
                }
            }
            while let value = next {
                let beyond = BSONComparison.compare(value, range.upper)
                guard beyond < 0 || (range.inclusive && beyond == 0) else { break }
                emitExisting(below: value)
                if index < partition.documents.count, BSONComparison.compare(partition.documents[index].0, value) == 0 {
                    // Already there: keep the existing document(s) at this value.
                } else {
                    generated += 1
                    guard generated <= Self.generatedDocumentsMax else {
                        throw QueryError(.location(5897900), "$densify would generate more than \(Self.generatedDocumentsMax) documents")
                    }
                    if generated % 1024 == 0 { try OperationContext.checkpoint() }
                    let made = try document(at: value, partition.values)
                    try OperationContext.reserveMemory(made.encodedSize)
                    output.append(made)
                }
                next = try advance(value)
            }
            emitExisting(below: nil)
        }
        return output
    }

    /// A generated document: the partition fields and the sequence field.
    private func document(at value: BSONValue, _ partitionValues: [BSONValue]) throws(QueryError) -> BSONDocument {
        var root = BSONValue.document([:])
        for (path, partitionValue) in zip(partitionFields, partitionValues) where partitionValue != .null {
            try UpdatePaths.set(path.components, partitionValue, in: &root)
        }
        try UpdatePaths.set(field.components, value, in: &root)
        return root.documentValue ?? [:]
    }

    /// The next grid value after `value`, or nil past the end of what can be represented.
    private func advance(_ value: BSONValue) throws(QueryError) -> BSONValue? {
        if let unit, case .datetime(let milliseconds) = value {
            return DateArithmetic.add(milliseconds, unit, step.int64Value ?? 1, zone: .utc).map { .datetime($0) }
        }
        let next = try Arithmetic.add(value, step)
        // A step too small to move a large double would leave the gap unfilled: say so.
        guard BSONComparison.compare(next, value) > 0 else {
            throw QueryError(.location(5733300), "$densify's step is too small to move past \(value.doubleValue.map(Conversions.formatDouble) ?? "a value") in double precision")
        }
        return next
    }

    /// Numbers other than NaN and ±infinity.
    static func isFinite(_ value: BSONValue) -> Bool {
        if case .decimal128(let decimal) = value { return !decimal.isNaN && !decimal.isInfinite }
        return value.doubleValue?.isFinite ?? false
    }
}

/// `$fill`: sets null and missing fields, per partition, to a value (`value`, an expression
/// evaluated on each document) or by a method over the `sortBy` order (`locf`: the last value
/// seen; `linear`: on the line between the known values around it). Desugared as MongoDB does:
/// methods into `$setWindowFields` (`$locf`, `$linearFill`), values into `$addFields` with
/// `$ifNull`.
enum FillStage {
    static func parse(_ argument: BSONValue) throws(QueryError) -> Pipeline.Stage {
        guard case .document(let spec) = argument else { throw QueryError(.failedToParse, "$fill must be an object") }
        for key in spec.keys where !["partitionBy", "partitionByFields", "sortBy", "output"].contains(key) {
            throw QueryError(.location(40415), "BSON field '$fill.\(key)' is an unknown field.")
        }
        guard spec["partitionBy"] == nil || spec["partitionByFields"] == nil else {
            throw QueryError(.location(6050204), "$fill takes 'partitionBy' or 'partitionByFields', not both")
        }
        guard case .document(let output)? = spec["output"], !output.isEmpty else {
            throw QueryError(.failedToParse, "$fill requires 'output', a non-empty object")
        }
        var partition: BSONValue? = spec["partitionBy"]
        if let fields = spec["partitionByFields"] {
            guard case .array(let names) = fields else { throw QueryError(.typeMismatch, "$fill 'partitionByFields' must be an array of field names") }
            var byField = BSONDocument()
            for case .string(let name) in names {
                guard !name.hasPrefix("$") else { throw QueryError(.location(6050204), "$fill partition fields are field names, not expressions") }
                byField[name] = .string("$" + name)
            }
            guard byField.elements.count == names.count else { throw QueryError(.typeMismatch, "$fill 'partitionByFields' must be an array of field names") }
            partition = .document(byField)
        }
        var methods: [(String, WindowFieldsSpecification.Function)] = []
        var values: [(String, Expression)] = []
        for element in output.elements {
            guard case .document(let how) = element.value, how.count == 1 else {
                throw QueryError(.location(6050203), "each $fill output needs exactly one of 'value' or 'method'")
            }
            let path = try Expression(.string("$" + element.key))
            if let value = how["value"] {
                values.append((element.key, try Expression(.document(["$ifNull": .array([.string("$" + element.key), value])]))))
            } else if case .string(let method)? = how["method"] {
                switch method {
                case "locf": methods.append((element.key, .locf(path)))
                case "linear": methods.append((element.key, .linearFill(path)))
                default: throw QueryError(.location(6050202), "$fill's method must be \"locf\" or \"linear\", not \"\(method)\"")
                }
            } else {
                throw QueryError(.location(6050203), "each $fill output needs exactly one of 'value' or 'method'")
            }
        }
        var sortBy: SortSpecification?
        if case .document(let sort)? = spec["sortBy"] { sortBy = try SortSpecification(sort) }
        if !methods.isEmpty {
            guard let sortBy else { throw QueryError(.location(6050205), "$fill with a 'method' requires 'sortBy'") }
            if methods.contains(where: { if case .linearFill = $0.1 { true } else { false } }), sortBy.keys.count != 1 {
                throw QueryError(.location(5371602), "$fill's linear method needs a sortBy with exactly one field")
            }
        }
        let partitionExpression = try partition.map { value throws(QueryError) in try Expression(value) }
        // Values first (on the input), then methods, in one window stage when there are methods.
        let coalesced = values.map { ($0.0, WindowFieldsSpecification.Function.coalesce($0.1)) }
        if methods.isEmpty && sortBy == nil { return .addFields(values) }
        return .setWindowFields(WindowFieldsSpecification(partitionBy: partitionExpression, sortBy: sortBy, outputs: coalesced + methods))
    }
}
