import CStemmer
import Foundation
import Synchronization

/// A language of text search: MongoDB's fifteen languages with stemming, and `"none"`.
///
/// A language is given by name or by code (`"english"`, `"en"`), in any case; its words are
/// stemmed by Snowball's stemmer for it (Debian's libstemmer, the stemmers MongoDB uses).
public struct TextLanguage: Sendable, Hashable {
    /// The language's name (`"english"`, …, or `"none"`).
    public let name: String

    private static let codes: [String: String] = [
        "da": "danish", "nl": "dutch", "en": "english", "fi": "finnish", "fr": "french", "de": "german", "hu": "hungarian",
        "it": "italian", "nb": "norwegian", "pt": "portuguese", "ro": "romanian", "ru": "russian", "es": "spanish", "sv": "swedish",
        "tr": "turkish",
    ]
    private static let names = Set(codes.values).union(["none"])

    public static let english = TextLanguage(checked: "english")
    public static let none = TextLanguage(checked: "none")

    private init(checked name: String) { self.name = name }

    /// The language with this name or code, or nil for one text search does not know.
    public init?(_ given: String) {
        let lowered = given.lowercased()
        guard let name = Self.codes[lowered] ?? (Self.names.contains(lowered) ? lowered : nil) else { return nil }
        self.name = name
    }

    /// Words that take no part in a search or a score, folded as searches compare words
    /// (lowercase, without diacritics): MongoDB's list for English, Snowball's for the others
    /// (`StopWords.swift`); none for Romanian (Snowball has no list) or `"none"`.
    var stopWords: Set<String> { Self.stopWordSets[name] ?? [] }

    private static let stopWordSets: [String: Set<String>] = {
        var sets = ["english": TextAnalyzer.englishStopWords]
        for (name, words) in snowballStopWords {
            let folder = TextAnalyzer(language: TextLanguage(checked: name))
            sets[name] = Set(words.split(whereSeparator: \.isWhitespace).map { folder.fold($0) })
        }
        return sets
    }()
}

/// Snowball's stemmers, made when first needed and kept for the process. A stemmer keeps state
/// between calls, so each is used by one thread at a time: a thread takes one from its
/// language's pool (or makes one), stems without a lock, and gives it back.
enum Snowball {
    /// A stemmer handle. Safe to send: a handle is in the pool or with the one thread using it.
    struct Stemmer: @unchecked Sendable {
        fileprivate let handle: OpaquePointer?

        /// The stem of `word` (lowercase UTF-8 bytes); the word itself without a stemmer.
        func stem(_ word: UnsafeBufferPointer<UInt8>) -> String {
            guard let handle, let count = Int32(exactly: word.count), count > 0, let stem = sb_stemmer_stem(handle, word.baseAddress, count) else {
                return String(decoding: word, as: UTF8.self)
            }
            return String(decoding: UnsafeBufferPointer(start: stem, count: Int(sb_stemmer_length(handle))), as: UTF8.self)
        }

        func stem(_ word: String) -> String {
            var copy = word
            return copy.withUTF8 { stem($0) }
        }
    }

    private static let pools = Mutex<[String: [Stemmer]]>([:])

    /// Runs `body` with a stemmer for `language` of its own (none for `"none"`).
    static func withStemmer<T>(_ language: TextLanguage, _ body: (Stemmer) throws -> T) rethrows -> T {
        guard language != .none else { return try body(Stemmer(handle: nil)) }
        let taken = pools.withLock { pools in pools[language.name]?.popLast() }
        guard let stemmer = taken ?? sb_stemmer_new(language.name, "UTF_8").map({ Stemmer(handle: $0) }) else {
            return try body(Stemmer(handle: nil))
        }
        defer { pools.withLock { pools in pools[language.name, default: []].append(stemmer) } }
        return try body(stemmer)
    }
}

/// How text search reads a text, as MongoDB's text index version 3 does: words are the runs of
/// letters and digits; each is case-folded and stripped of diacritics (unless the search is
/// case- or diacritic-sensitive); stop words are dropped; the rest are stemmed.
struct TextAnalyzer {
    let language: TextLanguage
    var caseSensitive = false
    var diacriticSensitive = false

    /// The words of `text`, split where MongoDB's text tokenizer splits: at white space,
    /// dashes, quotation marks, terminal punctuation and pattern syntax characters
    /// (ASCII punctuation but `_`, and symbols such as `©` or `×`), and at NUL. Everything else
    /// belongs to a word: letters, digits, `_`, symbols and emoji; in English also `'` (so
    /// `don't` is one word).
    func words(_ text: some StringProtocol) -> [Substring] {
        let keepsApostrophe = language == .english
        return String(text).split(whereSeparator: { (character: Character) -> Bool in
            character.unicodeScalars.contains { (scalar: Unicode.Scalar) -> Bool in Self.separates(scalar, keepingApostrophe: keepsApostrophe) }
        })
    }

    /// Whether MongoDB's tokenizer splits words at `scalar`.
    fileprivate static func separates(_ scalar: Unicode.Scalar, keepingApostrophe: Bool) -> Bool {
        if keepingApostrophe && scalar == "'" { return false }
        if scalar.value == 0 { return true }
        let properties = scalar.properties
        return properties.isWhitespace || properties.isDash || properties.isQuotationMark
            || properties.isTerminalPunctuation || properties.isPatternSyntax || properties.isPatternWhitespace
    }

    /// `text` folded as the search compares it.
    func fold(_ text: some StringProtocol) -> String {
        var folded = String(text)
        if !caseSensitive {
            // Turkish has a dotted and a dotless i; other languages fold `I` to `i`.
            if language.name == "turkish" {
                folded = folded.replacingOccurrences(of: "I", with: "ı").replacingOccurrences(of: "İ", with: "i")
            }
            folded = folded.lowercased()
        }
        return diacriticSensitive ? folded : Self.strippingDiacritics(folded)
    }

    /// `text` without its combining marks (`é` reads as `e`).
    static func strippingDiacritics(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text }
        var scalars = String.UnicodeScalarView()
        for scalar in text.decomposedStringWithCanonicalMapping.unicodeScalars where scalar.properties.generalCategory != .nonspacingMark {
            scalars.append(scalar)
        }
        return String(scalars).precomposedStringWithCanonicalMapping
    }

    /// The term a word stands for, or nil for a stop word.
    func term(_ word: some StringProtocol) -> String? {
        Snowball.withStemmer(language) { term(word, stemmer: $0) }
    }

    private func term(_ word: some StringProtocol, stemmer: Snowball.Stemmer) -> String? {
        let folded = fold(word)
        let plain = caseSensitive || diacriticSensitive ? TextAnalyzer(language: language).fold(word) : folded
        if language.stopWords.contains(plain) { return nil }
        return stemmer.stem(folded)
    }

    /// The terms of `text`, in order, repeats included (stop words left out).
    func terms(of text: String) -> [String] {
        Snowball.withStemmer(language) { stemmer in
            // ASCII text (most text) is read byte by byte; the rest word by word.
            if language.name != "turkish", text.utf8.allSatisfy({ $0 < 0x80 }) { return asciiTerms(of: text, stemmer: stemmer) }
            return words(text).compactMap { term($0, stemmer: stemmer) }
        }
    }

    /// Whether each ASCII character belongs to words (`separates` for the rest of Unicode).
    private static let asciiWordCharacters: [Bool] = (0..<128).map { !separates(Unicode.Scalar(UInt8($0)), keepingApostrophe: false) }

    /// `terms(of:)` for ASCII text: the same words, folds, stop words and stems.
    private func asciiTerms(of text: String, stemmer: Snowball.Stemmer) -> [String] {
        var terms: [String] = []
        var copy = text
        let keepsApostrophe = language == .english
        let stopWords = language.stopWords
        copy.withUTF8 { bytes in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: bytes.count) { word in
                var length = 0
                func finish() {
                    guard length > 0 else { return }
                    defer { length = 0 }
                    let folded = UnsafeBufferPointer(rebasing: word[0..<length])
                    if !stopWords.isEmpty {
                        let plain = caseSensitive ? String(decoding: folded, as: UTF8.self).lowercased() : String(decoding: folded, as: UTF8.self)
                        if stopWords.contains(plain) { return }
                    }
                    terms.append(stemmer.stem(folded))
                }
                for byte in bytes {
                    if Self.asciiWordCharacters[Int(byte)] || (keepsApostrophe && byte == 0x27) {
                        word[length] = !caseSensitive && byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
                        length += 1
                    } else {
                        finish()
                    }
                }
                finish()
            }
        }
        return terms
    }

    /// A term as the FTS5 table holds it. The table's `ascii` tokenizer splits at ASCII
    /// characters other than letters and digits, and a term may hold some (`_`, `'`): each is
    /// written as a private-use character instead, on both the index's side and the search's.
    static func ftsToken(_ term: String) -> String {
        guard term.utf8.contains(where: { $0 < 0x80 && !(($0 | 0x20) >= 0x61 && ($0 | 0x20) <= 0x7a) && !($0 >= 0x30 && $0 <= 0x39) }) else {
            return term
        }
        var scalars = String.UnicodeScalarView()
        for scalar in term.unicodeScalars {
            let value = scalar.value
            let plain = value >= 0x80 || (value >= 0x30 && value <= 0x39) || ((value | 0x20) >= 0x61 && (value | 0x20) <= 0x7a)
            scalars.append(plain ? scalar : Unicode.Scalar(0xF0000 + value)!)
        }
        return String(scalars)
    }

    /// English stop words, as MongoDB drops them from documents and searches.
    static let englishStopWords: Set<String> = [
        "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been",
        "before", "being", "below", "between", "both", "but", "by", "cannot", "could", "did", "do", "does", "doing", "down", "during", "each", "few",
        "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how",
        "i", "if", "in", "into", "is", "it", "its", "itself", "me", "more", "most", "my", "myself", "no", "nor", "not", "of",
        "off", "on", "once", "only", "or", "other", "ought", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some",
        "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those",
        "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who",
        "whom", "why", "with", "would", "you", "your", "yours", "yourself", "yourselves",
    ]
}

extension TextIndexSpec {
    /// One string the index holds: its field's weight, and the language it is read in.
    struct IndexedString {
        let text: String
        let weight: Double
        let language: TextLanguage
    }

    /// Each string the index holds of `document` (every element of an array on its own), in the
    /// language of the nearest document around it that names one in its `language_override`
    /// field (by default `language`), else the index's default language. `strict` refuses a
    /// language field naming no language (17262), as MongoDB refuses such a write; otherwise
    /// such a field is passed over.
    func strings(of document: BSONDocument, strict: Bool = false) throws(QueryError) -> [IndexedString] {
        var found: [IndexedString] = []
        func language(of inner: BSONDocument, around: TextLanguage) throws(QueryError) -> TextLanguage {
            guard let given = inner[languageOverride] else { return around }
            if case .string(let name) = given, let chosen = TextLanguage(name) { return chosen }
            guard !strict else {
                guard case .string = given else {
                    throw QueryError(.location(17261), "found language override field in document with non-string type (field '\(languageOverride)')")
                }
                throw QueryError(.location(17262), "language override unsupported for a text index (field '\(languageOverride)')")
            }
            return around
        }
        func walk(_ value: BSONValue, _ rest: ArraySlice<String>, _ around: TextLanguage, _ weight: Double) throws(QueryError) {
            switch value {
            case .string(let text) where rest.isEmpty: found.append(IndexedString(text: text, weight: weight, language: around))
            case .document(let inner) where !rest.isEmpty:
                guard let next = inner[rest.first!] else { return }
                try walk(next, rest.dropFirst(), try language(of: inner, around: around), weight)
            case .array(let elements): for element in elements { try walk(element, rest, around, weight) }
            default: break
            }
        }
        func collect(_ value: BSONValue, _ around: TextLanguage) throws(QueryError) {
            switch value {
            case .string(let text): found.append(IndexedString(text: text, weight: 1, language: around))
            case .document(let inner):
                let chosen = try language(of: inner, around: around)
                for element in inner.elements where element.key != "_id" && element.key != languageOverride { try collect(element.value, chosen) }
            case .array(let elements): for element in elements { try collect(element, around) }
            default: break
            }
        }
        if wildcard {
            try collect(.document(document), self.language)
            return found
        }
        let top = try language(of: document, around: self.language)
        for (path, weight) in zip(fields, weights) {
            guard let first = document[path.components[0]] else { continue }
            try walk(first, path.components.dropFirst(), top, weight)
        }
        return found
    }

    /// The distinct terms the index holds for `document` (its FTS5 row), each string read in
    /// its language, case-folded and without diacritics.
    func indexedTerms(of document: BSONDocument, strict: Bool = true) throws(QueryError) -> [String] {
        var seen: Set<String> = []
        var terms: [String] = []
        for string in try strings(of: document, strict: strict) {
            let analyzer = TextAnalyzer(language: string.language)
            for term in analyzer.terms(of: string.text) where seen.insert(term).inserted { terms.append(term) }
        }
        return terms
    }

    /// MongoDB's relevance of `document` for a search's `terms`.
    ///
    /// Each string scores each of its terms: `weight × frequency × (0.5 + 0.5 × count / words)`,
    /// where a term's `count`-th occurrence adds `1 / 2^(count-1)` to its frequency and `words`
    /// counts the string's words that are not stop words; a term that is the whole string scores
    /// 1.1 times that. The document's score is the sum over the searched terms.
    func score(of strings: [IndexedString], terms: Set<String>) -> Double {
        var total = 0.0
        for string in strings {
            let analyzer = TextAnalyzer(language: string.language)
            var found: [String: (count: Int, frequency: Double)] = [:]
            let all = analyzer.terms(of: string.text)
            let words = all.count
            for term in all where terms.contains(term) {
                let seen = found[term] ?? (0, 0)
                found[term] = (seen.count + 1, seen.frequency + 1 / Double(1 << min(seen.count, 62)))
            }
            for (term, seen) in found {
                let coefficient = 0.5 * Double(seen.count) / Double(words) + 0.5
                let whole = string.text.utf8.count == term.utf8.count && string.text.lowercased() == term
                total += string.weight * seen.frequency * coefficient * (whole ? 1.1 : 1)
            }
        }
        return total
    }
}
