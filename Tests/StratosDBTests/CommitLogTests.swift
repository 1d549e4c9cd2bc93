import Foundation
import QueryEngine
import SpaceOwnership
import StratosCore
import StratosTestSupport
import Testing

@testable import StratosDB

/// The commit log on an unencrypted file, so the tests can damage it the way only a holder of
/// the space key could: the log must still refuse a space whose history was rewritten.
@Suite struct CommitLogTests {
    let node = SigningKey.generate()
    let space = SpaceID(owner: SigningKey.generate().did, name: "profile")

    func write(_ path: String, documents: Int) async throws {
        let executor = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock())
        try await insert(documents, with: executor)
        executor.shutdown()
    }

    /// Inserts `count` documents, one commit each.
    func insert(_ count: Int, with executor: DatabaseExecutor) async throws {
        for index in 0..<count {
            _ = try await executor.write(durable: false) { store throws(QueryError) in
                try store.insert(["_id": .int32(Int32(index)), "v": .string("value \(index)")], into: "users")
            }
        }
    }

    func damage(_ path: String, _ sql: String) throws {
        let connection = try SQLiteConnection(path: path)
        try connection.execute(sql)
    }

    @Test func aSpaceReopensWithItsChainIntact() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/\(space).sqlite"
        try await write(path, documents: 20)
        let reopened = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock())
        reopened.shutdown()
        let connection = try SQLiteConnection(path: path)
        let commits = try CommitLog.lastCommits(connection, count: 100)
        #expect(commits.count == 20)
        #expect(commits.map(\.commit.seq) == (1...20).reversed().map(UInt64.init))
        for (newer, older) in zip(commits, commits.dropFirst()) { #expect(newer.commit.prevHash == older.hash) }
    }

    @Test(arguments: [
        // The last byte always changes: to 00, or to 01 when it already is 00.
        "UPDATE stratos_commits SET commit_bytes = substr(commit_bytes, 1, length(commit_bytes) - 1) || (CASE WHEN substr(commit_bytes, -1) = x'00' THEN x'01' ELSE x'00' END) WHERE seq = (SELECT max(seq) FROM stratos_commits)",
        "DELETE FROM stratos_commits WHERE seq = (SELECT max(seq) - 1 FROM stratos_commits)",
        "DELETE FROM stratos_commits WHERE seq = (SELECT max(seq) FROM stratos_commits)",
        "UPDATE stratos_state SET node = substr(node, 1, length(node) - 1) || (CASE WHEN substr(node, -1) = x'07' THEN x'08' ELSE x'07' END) WHERE tree = 0 AND prefix = x''",
        "UPDATE stratos_state SET node = substr(node, 1, length(node) - 1) || (CASE WHEN substr(node, -1) = x'07' THEN x'08' ELSE x'07' END) WHERE tree = 1 AND prefix = x''",
    ])
    func aRewrittenHistoryIsRefused(damageSQL: String) async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/\(space).sqlite"
        try await write(path, documents: 30)
        try damage(path, damageSQL)
        #expect(throws: QueryError.self) {
            let executor = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock())
            executor.shutdown()
        }
    }

    @Test func aFailedWriteLeavesNoCommit() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/\(space).sqlite"
        let executor = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock())
        _ = try await executor.write(durable: false) { store throws(QueryError) in try store.insert(["_id": .int32(1)], into: "users") }
        await #expect(throws: QueryError.self) {
            _ = try await executor.write(durable: false) { store throws(QueryError) in try store.insert(["_id": .int32(1)], into: "users") }
        }
        _ = try await executor.write(durable: false) { store throws(QueryError) in try store.insert(["_id": .int32(2)], into: "users") }
        executor.shutdown()
        let commits = try CommitLog.lastCommits(try SQLiteConnection(path: path), count: 10)
        #expect(commits.map(\.commit.seq) == [2, 1])
        let reopened = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock())
        reopened.shutdown()
    }

    @Test func commitsAfterTheLastBranchFlushReplayOnOpen() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/\(space).sqlite"
        let copy = directory.path + "/copy.sqlite"
        let executor = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock())
        try await insert(300, with: executor)
        try crashCopy(path, to: copy)
        executor.shutdown()
        // Branches were written at commit 1 (it created the collection), then every 128 commits:
        // through 257, so commits 258...300 exist only as commits.
        #expect(try scalar(copy, "SELECT seq FROM stratos_state_flushed") == 257)
        #expect(try scalar(copy, "SELECT max(seq) FROM stratos_commits") == 300)
        let reopened = try DatabaseExecutor(name: space.string, path: copy, signer: node, clock: MockWallClock())
        // The next commit builds on the replayed state: its root must be right, or the reopen below fails.
        _ = try await reopened.write(durable: false) { store throws(QueryError) in try store.insert(["_id": .int32(1000)], into: "users") }
        let proof = try await reopened.read { store throws(QueryError) in
            do throws(StratosError) { return try SpaceState(storage: CommitLog.currentState(store.sqlite)).proof(collection: "users", idKey: IndexKey.idKey(.int32(299))) } catch {
                throw QueryError(.internalError, error.message)
            }
        }
        #expect(proof != nil)
        reopened.shutdown()
        // A clean shutdown writes every branch: nothing is left to replay.
        #expect(try scalar(copy, "SELECT seq FROM stratos_state_flushed") == 301)
        let again = try DatabaseExecutor(name: space.string, path: copy, signer: node, clock: MockWallClock())
        again.shutdown()
    }

    @Test func aTamperedCommitAfterTheLastFlushIsRefused() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/\(space).sqlite"
        let copy = directory.path + "/copy.sqlite"
        let executor = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock())
        try await insert(140, with: executor)
        try crashCopy(path, to: copy)
        executor.shutdown()
        // Branches reach commit 129; a payload the replay needs, changed: its hash no longer matches its signed commit.
        try damage(copy, "UPDATE stratos_commits SET payload = payload || x'00' WHERE seq = 135")
        #expect(throws: QueryError.self) {
            let reopened = try DatabaseExecutor(name: space.string, path: copy, signer: node, clock: MockWallClock())
            reopened.shutdown()
        }
    }

    func proof(_ executor: DatabaseExecutor, _ id: Int32) async throws -> RecordProof? {
        try await executor.read { store throws(QueryError) in
            do throws(StratosError) { return try SpaceState(storage: CommitLog.currentState(store.sqlite)).proof(collection: "users", idKey: IndexKey.idKey(.int32(id))) } catch {
                throw QueryError(.internalError, error.message)
            }
        }
    }

    /// A new space's first commit fixes the ordered key format (docs/spaces.md §8); the space
    /// keeps it across reopening, and its proofs use it.
    @Test func aNewSpaceKeysItsStateMapInOrder() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/\(space).sqlite"
        try await write(path, documents: 5)
        let connection = try SQLiteConnection(path: path)
        #expect(try CommitLog.firstCommitKeyFormat(connection) == .ordered)
        #expect(try scalar(path, "SELECT format FROM stratos_state_format") == 2)
        try await reopenAndWrite(path)
        // The recorded format must be the one the first commit fixed.
        try damage(path, "UPDATE stratos_state_format SET format = 1")
        let error = #expect(throws: QueryError.self) {
            let executor = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock())
            executor.shutdown()
        }
        #expect(error?.code.number == 7_100_001)
        // (Collection keys depend on the format too: the root map no longer finds the collection.)
        #expect(error?.message.contains("is damaged") == true)
    }

    func reopenAndWrite(_ path: String) async throws {
        let reopened = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock())
        defer { reopened.shutdown() }
        _ = try await reopened.write(durable: false) { store throws(QueryError) in try store.insert(["_id": .int32(7)], into: "users") }
        let record = try #require(try await proof(reopened, 7))
        #expect(record.collectionProof.key == StateKeyFormat.ordered.documentKey(IndexKey.idKey(.int32(7))).bytes)
    }

    /// A space written before key formats existed (no `stateFormat` in its history) keeps the
    /// hashed format: it opens, takes writes and proves records as before.
    @Test func aSpaceWrittenBeforeFormatsKeepsHashedKeys() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/\(space).sqlite"
        let legacy = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock(), newSpaceKeyFormat: .hashed)
        try await insert(5, with: legacy)
        legacy.shutdown()
        let connection = try SQLiteConnection(path: path)
        #expect(try CommitLog.firstCommitKeyFormat(connection) == .hashed)
        #expect(try scalar(path, "SELECT count(*) FROM stratos_state_format") == 0)
        do {
            let reopened = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock())
            defer { reopened.shutdown() }
            _ = try await reopened.write(durable: false) { store throws(QueryError) in try store.insert(["_id": .int32(100)], into: "users") }
            let record = try #require(try await proof(reopened, 100))
            #expect(record.collectionProof.key == Digest32.blake2b(IndexKey.idKey(.int32(100))).bytes)
        }
        let again = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock())
        again.shutdown()
    }

    /// A first write that fails leaves no commit; the next write is the space's commit 1 and fixes
    /// the format (GrantLogTests covers a first commit that holds only a grant).
    @Test func theFormatIsFixedByWhicheverWriteBecomesCommitOne() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/\(space).sqlite"
        do {
            let executor = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock())
            defer { executor.shutdown() }
            await #expect(throws: QueryError.self) {
                _ = try await executor.write(durable: false) { store throws(QueryError) in
                    try store.insert(["_id": .int32(1)], into: "users")
                    throw QueryError(.badValue, "the job fails after its insert")
                }
            }
            _ = try await executor.write(durable: false) { store throws(QueryError) in try store.insert(["_id": .int32(2)], into: "users") }
        }
        #expect(try CommitLog.firstCommitKeyFormat(try SQLiteConnection(path: path)) == .ordered)
        #expect(try scalar(path, "SELECT max(seq) FROM stratos_commits") == 1)
        try await reopenAndWrite(path)
    }
}
