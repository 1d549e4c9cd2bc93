import Foundation

/// Text search (`$text` with a text index) on SQLite's FTS5.
///
/// A text index is an FTS5 table (`x<id>`, rowid = the document's row id) with one column per
/// indexed field (one for `$**`), tokenized by `unicode61` with diacritics removed, and by
/// the Porter stemmer for English (the default language). `$text` searches it: any of the
/// terms, every quoted phrase, none of the `-negated` terms, English stop words dropped. The
/// relevance (`{$meta: "textScore"}`) is FTS5's BM25 with the index's field weights.
public struct TextIndexSpec: Sendable, Hashable {
    /// Indexed fields and their weights (empty with `wildcard`).
    public let fields: [FieldPath]
    public let weights: [Double]
    /// `$**`: every string in the document.
    public let wildcard: Bool
    public let language: String

    /// MongoDB's languages with stemming in MongoDB; here English gets the Porter stemmer and
    /// the others are tokenized without stemming ("none").
    static let languages: Set<String> = [
        "none", "danish", "dutch", "english", "finnish", "french", "german", "hungarian", "italian", "norwegian", "portuguese",
        "romanian", "russian", "spanish", "swedish", "turkish", "da", "nl", "en", "fi", "fr", "de", "hu", "it", "nb", "pt", "ro", "ru",
        "es", "sv", "tr",
    ]

    /// Parses a text index's specification (`key` values all `"text"`), or nil for another kind.
    static func parse(_ specification: BSONDocument, key: BSONDocument) throws(QueryError) -> TextIndexSpec? {
        guard key.elements.contains(where: { $0.value == .string("text") }) else { return nil }
        var fields: [FieldPath] = []
        var wildcard = false
        for element in key.elements {
            guard element.value == .string("text") else {
                throw QueryError(.cannotCreateIndex, "compound text indexes (text and other fields) are not supported by StratosDB yet")
            }
            if element.key == "$**" { wildcard = true } else { fields.append(try FieldPath(element.key)) }
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
        var language = "english"
        if let given = specification["default_language"] {
            guard case .string(let name) = given, languages.contains(name) else {
                throw QueryError(.cannotCreateIndex, "unsupported default_language for a text index")
            }
            language = name
        }
        return TextIndexSpec(fields: fields, weights: weights, wildcard: wildcard, language: language)
    }

    var stems: Bool { language == "english" || language == "en" }

    /// The FTS5 table of the index.
    func createStatement(table: String) -> String {
        let columns = wildcard ? ["c0"] : fields.indices.map { "c\($0)" }
        let tokenizer = stems ? "porter unicode61 remove_diacritics 2" : "unicode61 remove_diacritics 2"
        return "CREATE VIRTUAL TABLE \(table) USING fts5(\(columns.joined(separator: ", ")), tokenize='\(tokenizer)')"
    }

    /// The text of each column for `document`: the strings at each field (array elements
    /// included), or every string of the document for `$**`.
    func columns(for document: BSONDocument) -> [String] {
        if wildcard {
            var strings: [String] = []
            func collect(_ value: BSONValue) {
                switch value {
                case .string(let text): strings.append(text.replacingOccurrences(of: "\u{0}", with: " "))
                case .document(let inner): for element in inner.elements where element.key != "_id" { collect(element.value) }
                case .array(let elements): elements.forEach(collect)
                default: break
                }
            }
            collect(.document(document))
            return [strings.joined(separator: " ")]
        }
        return fields.map { path in
            path.leafValues(in: document).compactMap { value -> String? in
                if case .string(let text)? = value { return text.replacingOccurrences(of: "\u{0}", with: " ") }
                return nil
            }.joined(separator: " ")
        }
    }

    /// The BM25 column weights, for `bm25(table, …)`.
    var bm25Weights: String { (wildcard ? [1.0] : weights).map { String(Int($0)) }.joined(separator: ", ") }
}

/// A `$text` query: `{$search, $language, $caseSensitive, $diacriticSensitive}`.
public struct TextQuery: Sendable {
    public let terms: [String]
    public let phrases: [String]
    public let negated: [String]

    /// The document field a text search's matches carry their score in while they move through
    /// a query (`{$meta: "textScore"}` reads it; results leave without it).
    public static let scoreField = "$__stratos_textScore"

    init(_ value: BSONValue) throws(QueryError) {
        guard case .document(let spec) = value else { throw QueryError(.badValue, "$text expects an object") }
        for key in spec.keys where !["$search", "$language", "$caseSensitive", "$diacriticSensitive"].contains(key) {
            throw QueryError(.badValue, "$text has an unknown field: \(key)")
        }
        guard case .string(let search)? = spec["$search"] else { throw QueryError(.badValue, "$text requires a $search string") }
        for flag in ["$caseSensitive", "$diacriticSensitive"] where spec[flag]?.isTruthy == true {
            throw QueryError(.badValue, "\(flag): true is not supported by StratosDB yet (text search ignores case and diacritics)")
        }
        if let language = spec["$language"] {
            guard case .string(let name) = language, TextIndexSpec.languages.contains(name) else {
                throw QueryError(.badValue, "$text: unsupported $language")
            }
        }
        var terms: [String] = []
        var phrases: [String] = []
        var negated: [String] = []
        var negatedPhrases: [String] = []
        // As MongoDB reads a search: quoted phrases (a `-` just before the quote negates one),
        // and words split at every character that is not a letter or digit; `-word` negates
        // the word's pieces; English stop words take no part. NUL counts as a space.
        let text = search.replacingOccurrences(of: "\u{0}", with: " ")
        let parts = text.split(separator: "\"", omittingEmptySubsequences: false)
        for (index, part) in parts.enumerated() {
            if index % 2 == 1 {
                let pieces = Self.pieces(of: part)
                guard !pieces.isEmpty else { continue }
                let phrase = pieces.joined(separator: " ")
                let previous = parts[index - 1]
                if previous.hasSuffix("-") && (previous.count == 1 || previous.dropLast().last?.isWhitespace == true) {
                    negatedPhrases.append(phrase)
                } else {
                    phrases.append(phrase)
                }
                continue
            }
            for word in part.split(whereSeparator: \.isWhitespace) {
                let negative = word.hasPrefix("-")
                for piece in Self.pieces(of: negative ? word.dropFirst() : word[...]) where !Self.stopWords.contains(piece.lowercased()) {
                    if negative { negated.append(piece) } else { terms.append(piece) }
                }
            }
        }
        func unique(_ list: [String]) -> [String] {
            var seen: Set<String> = []
            return list.filter { seen.insert($0.lowercased()).inserted }
        }
        self.terms = unique(terms)
        self.phrases = unique(phrases)
        self.negated = unique(negated) + unique(negatedPhrases)
        // FTS5's query parser is quadratic in the number of terms: a bound keeps one query short.
        guard self.terms.count + self.phrases.count + self.negated.count <= Self.termsMax else {
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

    /// The runs of letters and digits of `text`.
    static func pieces(of text: Substring) -> [String] {
        text.split(whereSeparator: { !($0.isLetter || $0.isNumber) }).map(String.init)
    }

    /// The FTS5 MATCH expression; nil when nothing can match (no positive term).
    var matchExpression: String? {
        func quoted(_ text: String) -> String { "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        // With phrases, every phrase must be there (the terms then only add to the score).
        let positive = phrases.isEmpty ? terms.map(quoted).joined(separator: " OR ") : phrases.map(quoted).joined(separator: " AND ")
        guard !positive.isEmpty else { return nil }
        guard !negated.isEmpty else { return positive }
        return "(\(positive)) NOT (\(negated.map(quoted).joined(separator: " OR ")))"
    }

    /// English stop words that do not take part in a search (as MongoDB drops them).
    static let stopWords: Set<String> = [
        "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been",
        "before", "being", "below", "between", "both", "but", "by", "can", "did", "do", "does", "doing", "down", "during", "each", "few",
        "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how",
        "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of",
        "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some",
        "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those",
        "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who",
        "whom", "why", "will", "with", "you", "your", "yours", "yourself", "yourselves",
    ]
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
