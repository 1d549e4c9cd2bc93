import QueryEngine
import Testing

@Suite struct LimitsTests {
    @Test func documentCapMatchesMongoDB() { #expect(QueryEngineLimits.documentSizeBytesMax == 16_777_216) }
}
