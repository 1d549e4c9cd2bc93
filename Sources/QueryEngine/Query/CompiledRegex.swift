import CPCRE2
import Foundation

/// A regular expression compiled once per query with PCRE2 — the engine MongoDB uses, so
/// patterns mean what they mean there — and MongoDB's option letters (`i` case-insensitive,
/// `m` multi-line anchors, `s` dot matches newline, `x` extended), always in UTF-8 mode.
///
/// Every match runs under PCRE2's match and depth limits, so a pattern with catastrophic
/// backtracking (`(a|aa)+$` on a long run of `a`s) fails fast instead of taking the thread for
/// minutes. A failed match is reported through `RegexFailure` (the matcher does not throw),
/// and the query fails with MongoDB's error 51156.
public final class CompiledRegex: @unchecked Sendable {
    // Safe: a compiled pcre2 pattern is read-only while matching and may be shared by threads;
    // each match gets its own match data.
    private let code: OpaquePointer
    private let context: OpaquePointer
    /// The source value.
    public let source: BSONRegex

    /// Compiles `regex`, throwing MongoDB's error for an invalid pattern or option.
    public init(_ regex: BSONRegex) throws(QueryError) {
        var options: UInt32 = PCRE2_UTF
        for letter in regex.options {
            switch letter {
            case "i": options |= PCRE2_CASELESS
            case "m": options |= PCRE2_MULTILINE
            case "s": options |= PCRE2_DOTALL
            case "x": options |= PCRE2_EXTENDED
            case "u", "l": break
            default: throw QueryError(.location(51108), "invalid flag in regex options: \(letter)")
            }
        }
        guard regex.pattern.utf8.count <= QueryEngineLimits.regexPatternBytesMax else {
            throw QueryError(.invalidRegex, "Regular expression is invalid: pattern string is longer than the limit set by the application")
        }
        var errorCode: Int32 = 0
        var errorOffset = 0
        let pattern = Array(regex.pattern.utf8)
        let compiled = pattern.withUnsafeBufferPointer { buffer in
            pcre2_compile_8(buffer.baseAddress ?? UnsafePointer(bitPattern: 1), buffer.count, options, &errorCode, &errorOffset, nil)
        }
        guard let compiled else {
            var message = [UInt8](repeating: 0, count: 256)
            let length = pcre2_get_error_message_8(errorCode, &message, message.count)
            let text = length > 0 ? String(decoding: message.prefix(Int(length)), as: UTF8.self) : "error \(errorCode)"
            throw QueryError(.invalidRegex, "Regular expression is invalid: \(text)")
        }
        guard let context = pcre2_match_context_create_8(nil) else {
            pcre2_code_free_8(compiled)
            throw QueryError(.internalError, "cannot allocate a regular expression match context")
        }
        pcre2_set_match_limit_8(context, QueryEngineLimits.regexMatchStepsMax)
        pcre2_set_depth_limit_8(context, QueryEngineLimits.regexDepthMax)
        pcre2_set_heap_limit_8(context, QueryEngineLimits.regexHeapKibibytesMax)
        code = compiled
        self.context = context
        source = regex
    }

    deinit {
        pcre2_match_context_free_8(context)
        pcre2_code_free_8(code)
    }

    /// Whether the pattern matches anywhere in `text`. When PCRE2 gives up (a limit), the
    /// answer is false and `RegexFailure` holds the reason for the query to raise.
    public func matches(_ text: String) -> Bool {
        guard let data = pcre2_match_data_create_from_pattern_8(code, nil) else {
            RegexFailure.record(-48)
            return false
        }
        defer { pcre2_match_data_free_8(data) }
        var copy = text
        let result = copy.withUTF8 { buffer in
            pcre2_match_8(code, buffer.baseAddress ?? UnsafePointer(bitPattern: 1), buffer.count, 0, 0, data, context)
        }
        if result >= 0 { return true }
        if result != PCRE2_ERROR_NOMATCH { RegexFailure.record(result) }
        return false
    }
}

extension CompiledRegex {
    /// One match: the byte range of the whole match in the UTF-8 text, and of each capture
    /// group (nil for a group that did not take part).
    public struct Match: Sendable {
        public let range: Range<Int>
        public let captures: [Range<Int>?]
    }

    /// The first match at or after byte `offset` of `utf8`; nil when there is none or PCRE2
    /// gave up (then `RegexFailure` holds the reason, as for `matches`).
    public func firstMatch(in utf8: [UInt8], from offset: Int) -> Match? {
        guard let data = pcre2_match_data_create_from_pattern_8(code, nil) else {
            RegexFailure.record(-48)
            return nil
        }
        defer { pcre2_match_data_free_8(data) }
        let result = utf8.withUnsafeBufferPointer { buffer in
            pcre2_match_8(code, buffer.baseAddress ?? UnsafePointer(bitPattern: 1), buffer.count, offset, 0, data, context)
        }
        guard result >= 0 else {
            if result != PCRE2_ERROR_NOMATCH { RegexFailure.record(result) }
            return nil
        }
        var groups: UInt32 = 0
        pcre2_pattern_info_8(code, UInt32(PCRE2_INFO_CAPTURECOUNT), &groups)
        guard let vector = pcre2_get_ovector_pointer_8(data) else { return nil }
        let pairs = Int(pcre2_get_ovector_count_8(data))
        func range(_ index: Int) -> Range<Int>? {
            guard index < pairs else { return nil }
            let start = vector[2 * index], end = vector[2 * index + 1]
            let unset = Int.max &* 2 &+ 1  // PCRE2_UNSET: every bit set
            guard start != unset, end != unset, start <= end else { return nil }
            return Int(start)..<Int(end)
        }
        guard let whole = range(0) else { return nil }
        return Match(range: whole, captures: (0..<Int(groups)).map { range($0 + 1) })
    }
}

/// The reason a regular expression match gave up, per thread: the matcher is not throwing, so
/// the code that runs a filter clears this before and checks it after (`Filter.evaluate`).
public enum RegexFailure {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    static func record(_ code: Int32) {
        pthread_setspecific(key, UnsafeRawPointer(bitPattern: Int(code) == 0 ? -1 : Int(code)))
    }

    /// Clears the slot.
    public static func reset() { pthread_setspecific(key, nil) }

    /// Throws MongoDB's error if a match on this thread gave up since the last reset.
    public static func check() throws(QueryError) {
        guard let pointer = pthread_getspecific(key) else { return }
        pthread_setspecific(key, nil)
        let code = Int(bitPattern: pointer)
        throw QueryError(.location(51156), "Error occurred while executing the regular expression. Result code: \(code)")
    }
}
