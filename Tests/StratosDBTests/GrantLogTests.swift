import Foundation
import QueryEngine
import SpaceOwnership
import StratosCore
import StratosTestSupport
import Synchronization
import Testing

@testable import StratosDB

/// Grants and revocations as commits of the space (`GrantLog`), reconciled with the node's
/// index of them when the space opens.
@Suite struct GrantLogTests {
    let node = SigningKey.generate()
    let owner = SigningKey.generate()
    var space: SpaceID { SpaceID(owner: owner.did, name: "profile") }

    func grant(to grantee: DID = SigningKey.generate().did) throws -> SignedGrant {
        try Grant(space: space, issuer: owner.did, grantee: grantee, actions: [.read], collections: [], issuedAtMilliseconds: 1, expiresAtMilliseconds: nil)
            .signed(by: owner)
    }

    /// An index that holds what it is given (the node catalog's part in reconciling).
    final class Index: GrantIndex {
        let records: Mutex<[String: GrantRecord]>
        init(_ records: [GrantRecord]) { self.records = Mutex(Dictionary(uniqueKeysWithValues: records.map { ($0.signed.id, $0) })) }
        func grants(space: SpaceID) throws(QueryError) -> [GrantRecord] { records.withLock { Array($0.values) } }
        func adopt(space: SpaceID, grants: [SignedGrant], revocations: [SignedRevocation]) throws(QueryError) {
            records.withLock { records in
                for grant in grants { records[grant.id] = GrantRecord(signed: grant) }
                for revocation in revocations { records[revocation.grantID]?.revocation = revocation }
            }
        }
    }

    func loggedOperations(_ path: String) throws -> [CommitOperation] {
        let connection = try SQLiteConnection(path: path)
        let select = try connection.statement("SELECT payload FROM stratos_commits ORDER BY seq")
        var operations: [CommitOperation] = []
        while try select.step() { operations += try CommitOperation.decode(select.blob(0)) }
        // The first commit's key format (docs/spaces.md §8) is not a grant operation.
        return operations.filter { if case .stateFormat = $0 { false } else { true } }
    }

    @Test func grantOperationsRoundTripAndLeaveTheStateRootAlone() throws {
        let signed = try grant()
        let revocation = SignedRevocation(space: space, grantID: signed.id, key: owner, issuedAtMilliseconds: 2)
        let operations: [CommitOperation] = [.grant(signed: signed.encoded), .revocation(signed: revocation.encoded)]
        #expect(try CommitOperation.decode(CommitOperation.encode(operations)) == operations)
        let state = SpaceState(storage: InMemorySpaceStateStorage())
        let empty = try state.apply([])
        #expect(try state.apply(operations) == empty)
    }

    @Test func differencesGoBothWays() throws {
        let onlyInCatalog = try grant()
        let onlyInLog = try grant()
        let revokedInCatalog = try grant()
        let revokedInLog = try grant()
        let revocationA = SignedRevocation(space: space, grantID: revokedInCatalog.id, key: owner, issuedAtMilliseconds: 3)
        let revocationB = SignedRevocation(space: space, grantID: revokedInLog.id, key: owner, issuedAtMilliseconds: 3)
        let logged: [String: GrantRecord] = [
            onlyInLog.id: GrantRecord(signed: onlyInLog),
            revokedInCatalog.id: GrantRecord(signed: revokedInCatalog),
            revokedInLog.id: GrantRecord(signed: revokedInLog, revocation: revocationB),
        ]
        let cataloged = [
            GrantRecord(signed: onlyInCatalog), GrantRecord(signed: revokedInCatalog, revocation: revocationA), GrantRecord(signed: revokedInLog),
        ]
        let differences = GrantLog.differences(logged: logged, cataloged: cataloged)
        #expect(differences.forLog == [.grant(signed: onlyInCatalog.encoded), .revocation(signed: revocationA.encoded)])
        #expect(differences.grantsForCatalog == [onlyInLog])
        #expect(differences.revocationsForCatalog == [revocationB])
        #expect(GrantLog.differences(logged: logged, cataloged: Array(logged.values)).isEmpty)
    }

    @Test func openingASpaceLogsWhatOnlyTheIndexHeldOnceAndAdoptsWhatOnlyTheLogHeld() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/\(space).sqlite"
        let first = try grant()
        let revocation = SignedRevocation(space: space, grantID: first.id, key: owner, issuedAtMilliseconds: 5)
        let index = Index([GrantRecord(signed: first, revocation: revocation)])
        var executor = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock(), grantIndex: index)
        executor.shutdown()
        #expect(try loggedOperations(path) == [.grant(signed: first.encoded), .revocation(signed: revocation.encoded)])

        // Opening again adds nothing; appending what the log holds adds no commit.
        executor = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock(), grantIndex: index)
        let appended = try await executor.write(durable: true) { store throws(QueryError) in
            try GrantLog.append([.grant(signed: first.encoded), .revocation(signed: revocation.encoded)], to: store)
        }
        #expect(appended == 0)
        let second = try grant()
        _ = try await executor.write(durable: true) { store throws(QueryError) in
            try GrantLog.append([.grant(signed: second.encoded), .grant(signed: second.encoded)], to: store)
        }
        executor.shutdown()
        #expect(try loggedOperations(path).count == 3)

        // A fresh index (a lost catalog) gets everything back from the log.
        let empty = Index([])
        executor = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock(), grantIndex: empty)
        executor.shutdown()
        let restored = try empty.grants(space: space)
        #expect(Set(restored.map(\.signed.id)) == [first.id, second.id])
        #expect(restored.first { $0.signed.id == first.id }?.revocation == revocation)
        #expect(try loggedOperations(path).count == 3)
    }

    @Test func aForgedGrantInAPayloadIsRefused() throws {
        var bytes = try grant().encoded
        bytes[bytes.count / 2] ^= 1
        let directory = try TemporaryDirectory()
        let connection = try SQLiteConnection(path: directory.path + "/x.sqlite")
        try connection.execute(GrantLog.schema)
        #expect(throws: QueryError.self) { try GrantLog.apply(.grant(signed: bytes), connection) }
    }

    /// A first commit that holds only a grant fixes the key format too. With no collection yet
    /// nothing else tells a wrong format row apart, so the check against commit 1 must.
    @Test func aGrantOnlyFirstCommitFixesTheKeyFormat() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/\(space).sqlite"
        let index = Index([GrantRecord(signed: try grant())])
        let executor = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock(), grantIndex: index)
        executor.shutdown()
        let connection = try SQLiteConnection(path: path)
        #expect(try CommitLog.firstCommitKeyFormat(connection) == .ordered)
        let reopened = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock(), grantIndex: index)
        reopened.shutdown()
        try connection.execute("UPDATE stratos_state_format SET format = 1")
        let error = #expect(throws: QueryError.self) {
            let damaged = try DatabaseExecutor(name: space.string, path: path, signer: node, clock: MockWallClock(), grantIndex: index)
            damaged.shutdown()
        }
        #expect(error?.code.number == 7_100_001)
        #expect(error?.message.contains("format does not match its first commit") == true)
    }
}
