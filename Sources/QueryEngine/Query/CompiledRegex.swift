import Foundation

/// A regular expression compiled once per query, with MongoDB's option letters
/// (`i` case-insensitive, `m` multi-line anchors, `s` dot matches newline, `x` extended).
///
/// MongoDB uses PCRE; Foundation's ICU engine accepts the same common syntax (classes,
/// quantifiers, groups, anchors, look-around). Differences are listed in docs/compatibility.md.
public final class CompiledRegex: @unchecked Sendable {
    // Safe: NSRegularExpression is immutable after creation and documented as thread-safe.
    private let expression: NSRegularExpression
    /// The source value.
    public let source: BSONRegex

    /// Compiles `regex`, throwing MongoDB's error for an invalid pattern or option.
    public init(_ regex: BSONRegex) throws(QueryError) {
        var options: NSRegularExpression.Options = []
        for letter in regex.options {
            switch letter {
            case "i": options.insert(.caseInsensitive)
            case "m": options.insert(.anchorsMatchLines)
            case "s": options.insert(.dotMatchesLineSeparators)
            case "x": options.insert(.allowCommentsAndWhitespace)
            case "u", "l": break
            default: throw QueryError(.location(51108), "invalid flag in regex options: \(letter)")
            }
        }
        do {
            expression = try NSRegularExpression(pattern: regex.pattern, options: options)
        } catch {
            throw QueryError(.invalidRegex, "Regular expression is invalid")
        }
        source = regex
    }

    /// Whether the pattern matches anywhere in `text`.
    public func matches(_ text: String) -> Bool {
        expression.firstMatch(in: text, options: [], range: NSRange(text.startIndex..., in: text)) != nil
    }
}
