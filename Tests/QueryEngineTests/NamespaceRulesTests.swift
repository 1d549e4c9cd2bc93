import QueryEngine
import Testing

@Suite struct NamespaceRulesTests {
    @Test(arguments: ["a/b", "a\\b", "a.b", "a b", "a\"b", "a$b", "a\0b", "", String(repeating: "x", count: 64)])
    func badDatabaseNamesAreRefused(_ name: String) {
        #expect(throws: QueryError.self) { try NamespaceRules.validateDatabase(name) }
    }

    @Test(arguments: ["profile", "s47qppudznzsnmgft76sfxdb3c4", "données", "名前", "a-b_c", String(repeating: "x", count: 63)])
    func goodDatabaseNamesPass(_ name: String) throws {
        try NamespaceRules.validateDatabase(name)
    }
}
