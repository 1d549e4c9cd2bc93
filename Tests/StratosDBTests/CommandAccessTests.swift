import SpaceOwnership
import Testing

@testable import StratosDB

@Suite struct CommandAccessTests {
    /// A handler without an access rule would fall to the owner-only default: safe, but a
    /// grantee could never use it. Every handler must be classified on purpose.
    @Test func everyHandlerHasAnAccessRule() {
        let unclassified = CommandRouter.handlers.keys.filter { !CommandAccess.hasRule($0) }.sorted()
        #expect(unclassified == [])
    }

    @Test func bothSpellingsOfFindAndModifyNeedReadAndWrite() {
        for name in ["findAndModify", "findandmodify"] {
            guard case .collection(let actions) = CommandAccess.of(name) else {
                Issue.record("\(name) is not collection-scoped")
                continue
            }
            #expect(actions == [.read, .write])
        }
        guard case .owner = CommandAccess.of("someFutureCommand") else {
            Issue.record("unknown commands must be owner-only")
            return
        }
    }
}
