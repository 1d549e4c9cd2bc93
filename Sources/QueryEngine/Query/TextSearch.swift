import Foundation

/// Text search (`$text` with a text index), as MongoDB's text index version 3 answers it.
///
/// A text index is an FTS5 table (`x<id>`, rowid = the document's row id) holding, for each
/// document, the distinct terms of its indexed strings as `TextAnalyzer` reads them in the
/// document's language (case-folded, without diacritics, stop words dropped, stemmed by
/// Snowball). `$text` asks FTS5 for the documents holding any searched term; each is then
/// checked for the search's phrases, negations and case or diacritic sensitivity against its
/// own text, and scored with MongoDB's relevance formula (`TextIndexSpec.score`).
public struct TextIndexSpec: Sendable, Hashable {
    /// Indexed fields and their weights (empty with `wildcard`).
    public let fields: [FieldPath]
    public let weights: [Double]
    /// `$**`: every string in the document.
    public let wildcard: Bool
    /// The index's default language.
    public let language: TextLanguage
    /// The field a document names its own language in (`language_override`, default `language`).
    public let languageOverride: String
    /// A compound text index's ordinary fields before the text fields: a `$text` search must
    /// give each an equality, as MongoDB requires.
    public let prefixFields: [FieldPath]

    /// Parses a text index's specification (some `key` value `"text"`), or nil for another kind.
    static func parse(_ specification: BSONDocument, key: BSONDocument) throws(QueryError) -> TextIndexSpec? {
        guard key.elements.contains(where: { $0.value == .string("text") }) else { return nil }
        var fields: [FieldPath] = []
        var prefixFields: [FieldPath] = []
        var wildcard = false
        var section = 0  // 0: prefix, 1: text fields, 2: suffix
        for element in key.elements {
            if element.value == .string("text") {
                guard section < 2 else { throw QueryError(.cannotCreateIndex, "the text fields of a text index must be next to each other") }
                section = 1
                if element.key == "$**" { wildcard = true } else { fields.append(try FieldPath(element.key)) }
                continue
            }
            guard element.value.isNumber, let direction = element.value.doubleValue, direction == 1 || direction == -1 else {
                throw QueryError(.cannotCreateIndex, "a compound text index's other fields must be 1 or -1")
            }
            if section == 0 { prefixFields.append(try FieldPath(element.key)) } else { section = 2 }
        }
        guard !(wildcard && !fields.isEmpty) else {
            throw QueryError(.cannotCreateIndex, "a text index on $** cannot name other fields")
        }
        var weights = Array(repeating: 1.0, count: fields.count)
        if let given = specification["weights"] {
            guard case .document(let spec) = given else { throw QueryError(.cannotCreateIndex, "text index option 'weights' must be an object") }
            for element in spec.elements {
                guard element.value.isNumber, let weight = element.value.doubleValue, weight >= 1, weight < 100_000, weight == weight.rounded() else {
                    throw QueryError(.cannotCreateIndex, "text index weights must be whole numbers from 1 to 99999")
                }
                if let position = fields.firstIndex(where: { $0.dotted == element.key }) {
                    weights[position] = weight
                } else if !wildcard || element.key != "$**" {
                    throw QueryError(.cannotCreateIndex, "text index weight for '\(element.key)', a field the index does not hold")
                }
            }
        }
        var language = TextLanguage.english
        if let given = specification["default_language"] {
            guard case .string(let name) = given, let chosen = TextLanguage(name) else {
                throw QueryError(.cannotCreateIndex, "unsupported default_language for a text index")
            }
            language = chosen
        }
        // Checked when an index is created (`checkLanguageOverride`); an index stored before
        // that was checked reads as the default field name rather than failing to load.
        var languageOverride = "language"
        if case .string(let name)? = specification["language_override"], Self.isFieldName(name) { languageOverride = name }
        return TextIndexSpec(
            fields: fields, weights: weights, wildcard: wildcard, language: language, languageOverride: languageOverride,
            prefixFields: prefixFields)
    }

    private static func isFieldName(_ name: String) -> Bool { !name.isEmpty && !name.hasPrefix("$") && !name.contains(".") }

    /// Refuses a new text index whose `language_override` is not a plain field name.
    static func checkLanguageOverride(_ specification: BSONDocument) throws(QueryError) {
        guard let given = specification["language_override"] else { return }
        guard case .string(let name) = given, isFieldName(name) else {
            throw QueryError(.cannotCreateIndex, "language_override must be a field name (a string, not empty, without '$' or '.')")
        }
    }

    /// The FTS5 table of the index: one column of space-separated terms, without positions
    /// (phrases are checked against the documents themselves).
    func createStatement(table: String) -> String {
        "CREATE VIRTUAL TABLE \(table) USING fts5(\(Self.termsColumn), tokenize='ascii', detail='none')"
    }

    /// The column name that tells a current text index table from one written before terms
    /// were analyzed (`DatabaseStore.rebuildOutdatedTextIndexes`).
    static let termsColumn = "terms"
}

/// A `$text` query: `{$search, $language, $caseSensitive, $diacriticSensitive}`, as written.
/// Its words become terms only against an index (`TextSearch`), whose default language applies
/// when the query names none.
public struct TextQuery: Sendable {
    /// Text whose words are searched for (the words of phrases included), split at white space.
    public let words: [String]
    public let phrases: [String]
    /// Text whose words must not appear.
    public let negatedWords: [String]
    public let negatedPhrases: [String]
    public let language: TextLanguage?
    public let caseSensitive: Bool
    public let diacriticSensitive: Bool

    /// The document field a text search's matches carry their score in while they move through
    /// a query (`{$meta: "textScore"}` reads it; results leave without it).
    public static let scoreField = "$__stratos_textScore"

    init(_ value: BSONValue) throws(QueryError) {
        guard case .document(let spec) = value else { throw QueryError(.badValue, "$text expects an object") }
        for key in spec.keys where !["$search", "$language", "$caseSensitive", "$diacriticSensitive"].contains(key) {
            throw QueryError(.badValue, "$text has an unknown field: \(key)")
        }
        guard case .string(let search)? = spec["$search"] else { throw QueryError(.typeMismatch, "$search requires a string value") }
        func flag(_ name: String) throws(QueryError) -> Bool {
            guard let given = spec[name] else { return false }
            guard case .bool(let value) = given else { throw QueryError(.typeMismatch, "\(name) requires a boolean value") }
            return value
        }
        caseSensitive = try flag("$caseSensitive")
        diacriticSensitive = try flag("$diacriticSensitive")
        if let given = spec["$language"] {
            guard case .string(let name) = given else { throw QueryError(.typeMismatch, "$language requires a string value") }
            guard let chosen = TextLanguage(name) else { throw QueryError(.badValue, "unsupported language: \"\(name)\" for $language") }
            language = chosen
        } else {
            language = nil
        }
        var words: [String] = []
        var phrases: [String] = []
        var negatedWords: [String] = []
        var negatedPhrases: [String] = []
        // As MongoDB reads a search: quoted phrases (a `-` just before the quote, at the start or
        // after white space, negates one), whose words are also searched; an unclosed quote
        // makes no phrase; `-text` negates the words of its text. Words are split later, in the
        // search's language (`TextSearch`). NUL counts as a space.
        let text = search.replacingOccurrences(of: "\u{0}", with: " ")
        let parts = text.split(separator: "\"", omittingEmptySubsequences: false)
        func addWords(_ part: Substring) {
            for chunk in part.split(whereSeparator: \.isWhitespace) {
                if chunk.hasPrefix("-") {
                    if chunk.count > 1 { negatedWords.append(String(chunk.dropFirst())) }
                } else {
                    words.append(String(chunk))
                }
            }
        }
        for (index, part) in parts.enumerated() {
            guard index % 2 == 1, index < parts.count - 1 else {
                // Outside quotes, or after a quote that is never closed.
                addWords(part)
                continue
            }
            guard part.contains(where: { !$0.isWhitespace }) else { continue }
            let previous = parts[index - 1]
            let negated = previous.hasSuffix("-") && (previous.count == 1 ? index == 1 : previous.dropLast().last?.isWhitespace == true)
            if negated {
                negatedPhrases.append(String(part))
            } else {
                phrases.append(String(part))
                words.append(String(part))
            }
        }
        func unique(_ list: [String]) -> [String] {
            var seen: Set<String> = []
            return list.filter { seen.insert($0).inserted }
        }
        self.words = unique(words)
        self.phrases = unique(phrases)
        self.negatedWords = unique(negatedWords)
        self.negatedPhrases = unique(negatedPhrases)
        // FTS5's query parser is quadratic in the number of terms: a bound keeps one query short.
        guard self.words.count + self.phrases.count + self.negatedWords.count + self.negatedPhrases.count <= Self.termsMax else {
            throw QueryError(.badValue, "$text: a search holds at most \(Self.termsMax) distinct terms and phrases")
        }
    }

    static let termsMax = 1_000

    /// `document` without the score field, at any depth.
    static func strippingScore(_ document: BSONDocument) -> BSONDocument {
        func strip(_ value: BSONValue) -> BSONValue {
            switch value {
            case .document(let inner): .document(strippingScore(inner))
            case .array(let elements): .array(elements.map(strip))
            default: value
            }
        }
        var output = BSONDocument()
        for element in document.elements where element.key != scoreField { output.append(element.key, strip(element.value)) }
        return output
    }
}

/// A `$text` query read against one text index: its terms in the search's language.
struct TextSearch {
    let index: TextIndexSpec
    /// The searched terms as the index holds them (case-folded, without diacritics): what FTS5
    /// looks up and what the score counts.
    let terms: Set<String>
    /// Terms, negated terms and phrases as the search compares them (sensitive to case or
    /// diacritics when it asks to be).
    private let sensitiveTerms: Set<String>
    private let negatedTerms: Set<String>
    private let negatedIndexTerms: Set<String>
    private let phrases: [String]
    private let negatedPhrases: [String]
    private let isSensitive: Bool
    private let analyzer: TextAnalyzer

    init(_ query: TextQuery, index: TextIndexSpec) {
        self.index = index
        let language = query.language ?? index.language
        let plain = TextAnalyzer(language: language)
        let sensitive = TextAnalyzer(language: language, caseSensitive: query.caseSensitive, diacriticSensitive: query.diacriticSensitive)
        analyzer = sensitive
        isSensitive = query.caseSensitive || query.diacriticSensitive
        let words = query.words.flatMap { plain.words($0) }
        let negatedWords = query.negatedWords.flatMap { plain.words($0) }
        terms = Set(words.compactMap { plain.term($0) })
        sensitiveTerms = Set(words.compactMap { sensitive.term($0) })
        negatedTerms = Set(negatedWords.compactMap { sensitive.term($0) })
        negatedIndexTerms = Set(negatedWords.compactMap { plain.term($0) })
        phrases = query.phrases.map { sensitive.fold($0) }
        negatedPhrases = query.negatedPhrases.map { sensitive.fold($0) }
    }

    /// The FTS5 MATCH expression; nil when nothing can match (no term to find).
    var matchExpression: String? {
        func quoted(_ term: String) -> String { "\"" + TextAnalyzer.ftsToken(term).replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        guard !terms.isEmpty else { return nil }
        let positive = terms.sorted().map(quoted).joined(separator: " OR ")
        // Without case or diacritic sensitivity, the index's terms decide negations exactly.
        guard !isSensitive, !negatedIndexTerms.isEmpty else { return positive }
        return "(\(positive)) NOT (\(negatedIndexTerms.sorted().map(quoted).joined(separator: " OR ")))"
    }

    /// Whether a document the index found matches the whole search, given its indexed strings:
    /// some term (as sensitive as asked), no negated term, every phrase and no negated phrase in
    /// one of its strings.
    /// Whether deciding a match reads the document's text (phrases, case or diacritic
    /// sensitivity); otherwise the index's answer is the whole answer.
    var readsText: Bool { isSensitive || !phrases.isEmpty || !negatedPhrases.isEmpty }

    func matches(_ indexed: [TextIndexSpec.IndexedString]) -> Bool {
        guard readsText else { return true }
        let strings = indexed.map(\.text)
        if isSensitive {
            var found = false
            for string in indexed {
                let reader = TextAnalyzer(
                    language: string.language, caseSensitive: analyzer.caseSensitive, diacriticSensitive: analyzer.diacriticSensitive)
                for term in reader.terms(of: string.text) {
                    if negatedTerms.contains(term) { return false }
                    if sensitiveTerms.contains(term) { found = true }
                }
            }
            guard found else { return false }
        }
        guard !phrases.isEmpty || !negatedPhrases.isEmpty else { return true }
        for phrase in phrases where !strings.contains(where: { contains($0, phrase) }) { return false }
        for phrase in negatedPhrases where strings.contains(where: { contains($0, phrase) }) { return false }
        return true
    }

    /// Whether `text`, folded as the search folds, holds `phrase` (already folded). ASCII text
    /// is compared byte by byte, lowercased on the fly, without making a folded copy.
    private func contains(_ text: String, _ phrase: String) -> Bool {
        guard text.utf8.allSatisfy({ $0 < 0x80 }), phrase.utf8.allSatisfy({ $0 < 0x80 }), analyzer.language.name != "turkish" else {
            return analyzer.fold(text).contains(phrase)
        }
        let lower = !analyzer.caseSensitive
        var haystack = text
        var needle = phrase
        return haystack.withUTF8 { h in
            needle.withUTF8 { n in
                guard !n.isEmpty else { return true }
                guard h.count >= n.count else { return false }
                func folded(_ byte: UInt8) -> UInt8 { lower && byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte }
                let first = n[0]
                for start in 0...(h.count - n.count) where folded(h[start]) == first {
                    var offset = 1
                    while offset < n.count && folded(h[start + offset]) == n[offset] { offset += 1 }
                    if offset == n.count { return true }
                }
                return false
            }
        }
    }

    /// MongoDB's relevance of a matching document, from its indexed strings.
    func score(of strings: [TextIndexSpec.IndexedString]) -> Double { index.score(of: strings, terms: terms) }
}

extension Filter {
    /// The `$text` query of a filter: a top-level clause (or one of a top-level `$and`).
    /// Anywhere else it is refused, as MongoDB refuses it.
    func textQuery() throws(QueryError) -> TextQuery? {
        var found: TextQuery?
        func visit(_ filter: Filter, topLevel: Bool) throws(QueryError) {
            switch filter {
            case .text(let query):
                guard topLevel else { throw QueryError(.badValue, "$text is allowed only at the top level of a query (or in a top-level $and)") }
                guard found == nil else { throw QueryError(.badValue, "Too many text expressions") }
                found = query
            case .and(let clauses): for clause in clauses { try visit(clause, topLevel: topLevel) }
            case .or(let clauses), .nor(let clauses): for clause in clauses { try visit(clause, topLevel: false) }
            default: break
            }
        }
        try visit(self, topLevel: true)
        return found
    }

    /// Whether the filter holds a `$text` clause anywhere.
    public var hasText: Bool {
        switch self {
        case .text: true
        case .and(let clauses), .or(let clauses), .nor(let clauses): clauses.contains { $0.hasText }
        default: false
        }
    }
}

extension DatabaseStore {
    /// `document` with the relevance a `$text` filter gives it (`TextQuery.scoreField`, which
    /// `{$meta: "textScore"}` reads), for a command that found it through a text search but
    /// returns it by another path (`findAndModify`). Unchanged without a `$text` filter or a
    /// text index.
    public func withTextScore(_ document: BSONDocument, filter: Filter, collection: String) throws(QueryError) -> BSONDocument {
        guard let query = try filter.textQuery(), let index = self.collection(collection)?.indexes.first(where: { $0.text != nil })?.text
        else { return document }
        let search = TextSearch(query, index: index)
        var scored = document
        scored[TextQuery.scoreField] = .double(search.score(of: (try? index.strings(of: document)) ?? []))
        return scored
    }
}
