import Foundation
import QueryEngine
import SpaceOwnership
import StratosCore
import StratosTestSupport
import Testing

@testable import StratosDB

/// Commits per time window (`CommitLog`): write transactions wait in `stratos_pending`, in the
/// same SQLite transaction as their rows, and are sealed together into one signed commit.
@Suite struct CommitWindowTests {
    let node = SigningKey.generate()
    let space = SpaceID(owner: SigningKey.generate().did, name: "profile")
    /// Long enough that nothing in a test is sealed by the window passing.
    let window = Duration.seconds(60)

    func insert(_ ids: Range<Int>, with executor: DatabaseExecutor) async throws {
        for index in ids {
            _ = try await executor.write(durable: false) { store throws(QueryError) in
                try store.insert(["_id": .int32(Int32(index)), "v": .string("value \(index)")], into: "users")
            }
        }
    }

    func proof(_ executor: DatabaseExecutor, _ id: Int32) async throws -> RecordProof? {
        try await executor.read { store throws(QueryError) in
            do throws(StratosError) {
                return try SpaceState(storage: CommitLog.currentState(store.sqlite)).proof(collection: "users", idKey: IndexKey.idKey(.int32(id)))
            } catch {
                throw QueryError(.internalError, error.message)
            }
        }
    }

    @Test func writesWaitThenOneCommitSealsThemAll() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/\(space).sqlite"
        let executor = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock(), commitWindow: window)
        // The space's first commit is sealed at once (it fixes the state map's format).
        try await insert(0..<1, with: executor)
        try await insert(1..<10, with: executor)
        #expect(try scalar(path, "SELECT count(*) FROM stratos_commits") == 1)
        #expect(try scalar(path, "SELECT count(*) FROM stratos_pending") == 9)
        try await executor.sealPendingCommits()
        #expect(try scalar(path, "SELECT count(*) FROM stratos_commits") == 2)
        #expect(try scalar(path, "SELECT count(*) FROM stratos_pending") == 0)
        #expect(try await proof(executor, 9) != nil)
        // Sealing with nothing pending makes no commit.
        try await executor.sealPendingCommits()
        #expect(try scalar(path, "SELECT count(*) FROM stratos_commits") == 2)
        executor.shutdown()
    }

    @Test func aFailedWriteLeavesThePendingOperationsAsTheyWere() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/\(space).sqlite"
        let executor = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock(), commitWindow: window)
        try await insert(0..<3, with: executor)
        await #expect(throws: QueryError.self) { try await insert(1..<2, with: executor) }
        #expect(try scalar(path, "SELECT count(*) FROM stratos_pending") == 2)
        try await insert(3..<4, with: executor)
        try await executor.sealPendingCommits()
        #expect(try await proof(executor, 3) != nil)
        executor.shutdown()
        let reopened = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock())
        reopened.shutdown()
    }

    @Test func closingSealsAndACrashCopyIsSealedOnOpen() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/\(space).sqlite"
        let copy = directory.path + "/copy.sqlite"
        let executor = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock(), commitWindow: window)
        try await insert(0..<20, with: executor)
        try crashCopy(path, to: copy)
        executor.shutdown()
        // A clean close sealed what was pending.
        #expect(try scalar(path, "SELECT count(*) FROM stratos_pending") == 0)
        #expect(try scalar(path, "SELECT count(*) FROM stratos_commits") == 2)
        // The copy is what a crash leaves: 19 writes pending. Opening it seals them, without a window.
        #expect(try scalar(copy, "SELECT count(*) FROM stratos_pending") == 19)
        let reopened = try DatabaseExecutor(name: space.string, path: copy, signer: node, clock: MockWallClock())
        #expect(try scalar(copy, "SELECT count(*) FROM stratos_pending") == 0)
        #expect(try await proof(reopened, 19) != nil)
        reopened.shutdown()
        let commits = try CommitLog.lastCommits(try SQLiteConnection(path: copy), count: 10)
        #expect(commits.map(\.commit.seq) == [2, 1])
        #expect(commits[0].commit.prevHash == commits[1].hash)
    }

    @Test func theTimerSealsWhenNoWriteComes() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/\(space).sqlite"
        let executor = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock(), commitWindow: .milliseconds(20))
        try await insert(0..<5, with: executor)
        // The timer fires two windows after the oldest pending write; wait up to ten seconds.
        var pending: Int64 = -1
        for _ in 0..<1_000 {
            pending = try scalar(path, "SELECT count(*) FROM stratos_pending")
            if pending == 0 { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(pending == 0)
        #expect(try await proof(executor, 4) != nil)
        executor.shutdown()
    }

    @Test func aDurableWriteIsSealedInItsOwnTransaction() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/\(space).sqlite"
        let executor = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock(), commitWindow: window)
        try await insert(0..<3, with: executor)
        _ = try await executor.write(durable: true) { store throws(QueryError) in try store.insert(["_id": .int32(3)], into: "users") }
        #expect(try scalar(path, "SELECT count(*) FROM stratos_pending") == 0)
        #expect(try scalar(path, "SELECT count(*) FROM stratos_commits") == 2)
        executor.shutdown()
    }

    @Test(arguments: [
        "DELETE FROM stratos_pending WHERE id = (SELECT min(id) + 1 FROM stratos_pending)",
        "UPDATE stratos_pending SET payload = (SELECT payload FROM stratos_pending WHERE id = (SELECT max(id) FROM stratos_pending)) WHERE id = (SELECT min(id) FROM stratos_pending)",
        "UPDATE stratos_pending SET mac = zeroblob(32) WHERE id = (SELECT max(id) FROM stratos_pending)",
    ])
    func pendingOperationsThatDoNotFollowTheHeadAreRefused(damageSQL: String) async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/\(space).sqlite"
        let copy = directory.path + "/copy.sqlite"
        let executor = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock(), commitWindow: window)
        try await insert(0..<6, with: executor)
        try crashCopy(path, to: copy)
        executor.shutdown()
        try SQLiteConnection(path: copy).execute(damageSQL)
        // The node would sign whatever is pending: rows it did not write are refused instead.
        #expect(throws: QueryError.self) {
            let reopened = try DatabaseExecutor(name: space.string, path: copy, signer: node, clock: MockWallClock())
            reopened.shutdown()
        }
    }

    @Test func aTransactionWithAGrantIsSealedAtOnce() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/\(space).sqlite"
        let executor = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock(), commitWindow: window)
        try await insert(0..<3, with: executor)
        _ = try await executor.write(durable: false) { store throws(QueryError) in
            try store.recordSpaceRecord(kind: GrantLog.grantKind, bytes: [1, 2, 3])
        }
        #expect(try scalar(path, "SELECT count(*) FROM stratos_pending") == 0)
        #expect(try scalar(path, "SELECT count(*) FROM stratos_commits") == 2)
        // The pending writes come first, in order, then the grant; the payload is exactly what
        // encoding the three operations together gives.
        let statement = try SQLiteConnection(path: path).statement("SELECT payload FROM stratos_commits WHERE seq = 2")
        _ = try statement.step()
        let payload = statement.blob(0)
        statement.reset()
        let operations = try CommitOperation.decode(payload)
        #expect(operations.count == 3)
        if operations.count == 3 {
            #expect(operations[0] == .put(collection: "users", idKey: IndexKey.idKey(.int32(1)), document: try BSONEncoder.encode(["_id": .int32(1), "v": .string("value 1")])))
            if case .put(_, let idKey, _) = operations[1] { #expect(idKey == IndexKey.idKey(.int32(2))) } else { Issue.record("not a put") }
            #expect(operations[2] == .grant(signed: [1, 2, 3]))
        }
        #expect(CommitOperation.encode(operations) == payload)
        executor.shutdown()
    }
}
