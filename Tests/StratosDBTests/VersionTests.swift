import StratosDB
import Testing

@Suite struct VersionTests {
    @Test func reportsMongoDB70Compatibility() {
        #expect(StratosVersion.mongoCompatible.hasPrefix("7.0"))
    }
}
