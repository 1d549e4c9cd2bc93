import CStratosCollation

#if canImport(Glibc)
import Glibc
#endif

/// A MongoDB collation: how strings compare (locale, strength, case and numeric ordering, …),
/// through ICU, the library MongoDB's collation uses.
///
/// A command's collation (or its collection's default) is active on the thread that runs the
/// command (`with`), and `BSONComparison` compares strings through it, so filters, sorts,
/// `$group`, `distinct` and every expression that compares see the same order. An index built
/// with a collation keys strings by their ICU sort key; the planner uses such keys only for a
/// query with the same collation.
public struct Collation: Sendable, Hashable {
    public let locale: String
    /// 1 (base letters) to 5 (identical), as MongoDB numbers ICU's strengths.
    public let strength: Int
    public let caseLevel: Bool
    /// "upper", "lower" or "off".
    public let caseFirst: String
    public let numericOrdering: Bool
    /// "non-ignorable" or "shifted".
    public let alternate: String
    /// "punct" or "space".
    public let maxVariable: String
    public let backwards: Bool
    public let normalization: Bool

    static let fields: Set<String> = [
        "locale", "strength", "caseLevel", "caseFirst", "numericOrdering", "alternate", "maxVariable", "backwards",
        "normalization", "version",
    ]

    /// Parses a `collation` document: nil for none, or `{locale: "simple"}` (binary order).
    public static func parse(_ value: BSONValue?, checkingLocale: Bool = true) throws(QueryError) -> Collation? {
        guard let value else { return nil }
        guard case .document(let spec) = value else {
            throw QueryError(.typeMismatch, "collation must be an object, not \(value.typeAlias)")
        }
        for key in spec.keys where !fields.contains(key) {
            throw QueryError(.location(40415), "BSON field 'collation.\(key)' is an unknown field.")
        }
        guard case .string(let locale)? = spec["locale"] else {
            throw QueryError(.location(40414), "BSON field 'collation.locale' is missing but a required field")
        }
        if locale == "simple" {
            guard spec.count == 1 || (spec.count == 2 && spec["version"] != nil) else {
                throw QueryError(.badValue, "If locale is set to 'simple', the other collation fields must be left out")
            }
            return nil
        }
        func flag(_ name: String, _ fallback: Bool) throws(QueryError) -> Bool {
            guard let given = spec[name] else { return fallback }
            guard case .bool(let value) = given else { throw QueryError(.typeMismatch, "collation.\(name) must be a boolean") }
            return value
        }
        func choice(_ name: String, _ allowed: [String], _ fallback: String) throws(QueryError) -> String {
            guard let given = spec[name] else { return fallback }
            guard case .string(let value) = given, allowed.contains(value) else {
                throw QueryError(.badValue, "collation.\(name) must be one of \(allowed.map { "'\($0)'" }.joined(separator: ", "))")
            }
            return value
        }
        var strength = 3
        if let given = spec["strength"] {
            guard given.isNumber, let value = given.int64Value, (1...5).contains(value) else {
                throw QueryError(.badValue, "collation.strength must be an integer from 1 to 5")
            }
            strength = Int(value)
        }
        let collation = Collation(
            locale: locale, strength: strength, caseLevel: try flag("caseLevel", false),
            caseFirst: try choice("caseFirst", ["upper", "lower", "off"], "off"), numericOrdering: try flag("numericOrdering", false),
            alternate: try choice("alternate", ["non-ignorable", "shifted"], "non-ignorable"),
            maxVariable: try choice("maxVariable", ["punct", "space"], "punct"), backwards: try flag("backwards", false),
            normalization: try flag("normalization", false))
        // ICU opens any name, falling back to its root collation for locales it has no data for:
        // that is an error here, as in MongoDB.
        if !checkingLocale { return collation }
        guard locale.utf8.count <= 64, locale.utf8.allSatisfy({ $0 == 0x5F || $0 == 0x2D || $0 == 0x40 || $0 == 0x3D || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }),
            locale == "root" || stratos_locale_known(locale) != 0, Self.opens(collation)
        else {
            throw QueryError(.badValue, "Field 'locale' is invalid in: { locale: \"\(locale.prefix(64))\" }")
        }
        return collation
    }

    /// The collation as MongoDB reports it (`listIndexes`, collection options): every field.
    public var document: BSONDocument {
        [
            "locale": .string(locale), "caseLevel": .bool(caseLevel), "caseFirst": .string(caseFirst), "strength": .int32(Int32(strength)),
            "numericOrdering": .bool(numericOrdering), "alternate": .string(alternate), "maxVariable": .string(maxVariable),
            "normalization": .bool(normalization), "backwards": .bool(backwards), "version": .string("57.1"),
        ]
    }

    // MARK: - Comparing

    /// -1, 0 or 1.
    public func compare(_ a: String, _ b: String) -> Int {
        guard let collator = Self.collator(for: self) else { return BSONComparison.compareUTF8(a, b) }
        var a = a
        var b = b
        let empty: CChar = 0
        return withUnsafePointer(to: empty) { nothing in
            a.withUTF8 { left in
                b.withUTF8 { right in
                    let l = left.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) } ?? nothing
                    let r = right.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) } ?? nothing
                    return Int(stratos_collator_compare(collator, l, Int32(left.count), r, Int32(right.count)))
                }
            }
        }
    }

    /// ICU's sort key: two strings have the same key exactly when they compare equal, and keys
    /// order as the strings do (for index keys and hashing).
    public func sortKey(_ text: String) -> [UInt8] {
        guard let collator = Self.collator(for: self) else { return Array(text.utf8) }
        let units = Array(text.utf16)
        var key = [UInt8](repeating: 0, count: max(16, units.count * 4 + 16))
        var needed = units.withUnsafeBufferPointer { buffer in
            stratos_collator_sort_key(collator, buffer.baseAddress, Int32(buffer.count), &key, Int32(key.count))
        }
        if Int(needed) > key.count {
            key = [UInt8](repeating: 0, count: Int(needed))
            needed = units.withUnsafeBufferPointer { buffer in
                stratos_collator_sort_key(collator, buffer.baseAddress, Int32(buffer.count), &key, Int32(key.count))
            }
        }
        // The key ends with a NUL that is not part of it.
        return Array(key.prefix(max(0, Int(needed) - 1)))
    }

    // MARK: - The active collation

    /// Runs `body` with the collation `request` names for `store`: the command's own, or else
    /// its collection's default.
    public static func with<T, E: Error>(_ request: CollationRequest?, in store: DatabaseStore, _ body: () throws(E) -> T) throws(E) -> T {
        guard let request else { return try body() }
        return try with(request.explicit ?? store.collection(request.collection)?.defaultCollation, body)
    }

    private final class Box {
        let collation: Collation
        init(_ collation: Collation) { self.collation = collation }
    }

    private static let activeKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// The collation of the command running on this thread (nil: binary order).
    public static var active: Collation? {
        guard let pointer = pthread_getspecific(activeKey) else { return nil }
        return Unmanaged<Box>.fromOpaque(pointer).takeUnretainedValue().collation
    }

    /// Runs `body` with `collation` active on this thread (nil: binary order).
    public static func with<T, E: Error>(_ collation: Collation?, _ body: () throws(E) -> T) throws(E) -> T {
        let previous = pthread_getspecific(activeKey)
        let box = collation.map { Unmanaged.passRetained(Box($0)) }
        pthread_setspecific(activeKey, box?.toOpaque())
        defer {
            pthread_setspecific(activeKey, previous)
            box?.release()
        }
        return try body()
    }

    // MARK: - ICU collators, one per thread and collation (a UCollator is not thread-safe)

    private final class Collators {
        var open: [Collation: OpaquePointer] = [:]
        deinit { for collator in open.values { stratos_collator_close(collator) } }
    }

    private static let collatorsKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { pointer in
            if let pointer { Unmanaged<AnyObject>.fromOpaque(pointer).release() }
        }
        return key
    }()

    private static func collator(for collation: Collation) -> OpaquePointer? {
        let cache: Collators
        if let pointer = pthread_getspecific(collatorsKey) {
            cache = Unmanaged<AnyObject>.fromOpaque(pointer).takeUnretainedValue() as! Collators
        } else {
            cache = Collators()
            pthread_setspecific(collatorsKey, Unmanaged<AnyObject>.passRetained(cache as AnyObject).toOpaque())
        }
        if let open = cache.open[collation] { return open }
        guard let made = makeCollator(collation) else { return nil }
        if cache.open.count >= 64 {
            // Bounded: pointers are used only synchronously on this thread, so closing is safe.
            for collator in cache.open.values { stratos_collator_close(collator) }
            cache.open.removeAll()
        }
        cache.open[collation] = made
        return made
    }

    /// Whether ICU opens a collator for `collation`.
    private static func opens(_ collation: Collation) -> Bool {
        guard let collator = makeCollator(collation) else { return false }
        stratos_collator_close(collator)
        return true
    }

    private static func makeCollator(_ collation: Collation) -> OpaquePointer? {
        var options = stratos_collation_options(
            strength: Int32(collation.strength), case_level: collation.caseLevel ? 1 : 0,
            case_first: collation.caseFirst == "upper" ? 1 : collation.caseFirst == "lower" ? 2 : 0,
            numeric_ordering: collation.numericOrdering ? 1 : 0, shifted: collation.alternate == "shifted" ? 1 : 0,
            max_variable_space: collation.maxVariable == "space" ? 1 : 0, backwards: collation.backwards ? 1 : 0,
            normalization: collation.normalization ? 1 : 0)
        var fellBack: Int32 = 0
        return stratos_collator_open(collation.locale, &options, &fellBack)
    }
}

/// A command's `collation` and the collection it names: `explicit` is nil when the command
/// gave none (the collection's default applies), `.some(nil)` for `{locale: "simple"}`.
public struct CollationRequest: Sendable {
    public let explicit: Collation??
    public let collection: String

    public init(explicit: Collation??, collection: String) {
        self.explicit = explicit
        self.collection = collection
    }
}
