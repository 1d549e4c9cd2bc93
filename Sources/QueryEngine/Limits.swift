/// Every bound the query engine enforces, with the reason for it.
///
/// Limits follow MongoDB 7.0 where a driver can observe them, so applications behave the same.
public enum QueryEngineLimits {
    /// The largest BSON document accepted or stored: 16 MiB, MongoDB's `maxBsonObjectSize`.
    /// Drivers read this from `hello` and refuse larger documents client-side.
    public static let documentSizeBytesMax = 16 * 1024 * 1024

    /// Nesting depth accepted while decoding untrusted BSON (commands included). Deep nesting is
    /// the cheapest way to exhaust a recursive decoder's stack; MongoDB stops at a similar depth.
    public static let decodeDepthMax = 180

    /// Nesting depth of a stored document; MongoDB rejects deeper documents on insert.
    public static let storedDocumentDepthMax = 100

    /// Memory an in-memory sort may use before failing, as MongoDB's
    /// `internalQueryMaxBlockingSortMemoryUsageBytes` (100 MiB) does.
    public static let blockingSortBytesMax = 100 * 1024 * 1024

    /// Memory a `$group` or other blocking aggregation stage may hold.
    public static let aggregationStageBytesMax = 100 * 1024 * 1024

    /// Documents all running operations may hold in memory at once (sort buffers, aggregation
    /// inputs, `$lookup` results): past it, an operation fails with 146 instead of the node
    /// growing until the kernel kills it. `serve --max-query-memory` changes it.
    public static let queryMemoryBytesMaxDefault = 1024 * 1024 * 1024

    /// Stages in one pipeline (MongoDB's `internalPipelineLengthLimit`, error 7749501).
    public static let pipelineStagesMax = 1_000

    /// The longest regular expression pattern (MongoDB's limit is 16 KiB too).
    public static let regexPatternBytesMax = 16 * 1024
    /// PCRE2 backtracking steps one match may take: enough for any sane pattern on a 16 MiB
    /// string, small enough that a catastrophic pattern gives up in tens of milliseconds.
    public static let regexMatchStepsMax: UInt32 = 1_000_000
    /// PCRE2 backtracking depth (nested groups in flight) of one match.
    public static let regexDepthMax: UInt32 = 10_000
    /// Heap PCRE2 may use for one match's backtracking, in KiB.
    public static let regexHeapKibibytesMax: UInt32 = 64 * 1024
}
