import QueryEngine
import SpaceOwnership
import StratosCore

/// Grants and revocations through a running node (docs/spaces.md §5): the node stores the
/// owner-signed grant in its catalog (authorization reads it there on every command) and
/// appends it to the space's log as a signed commit, durable before the reply.
///
/// - `{grantAccess: 1, grant: BinData(SignedGrant), $db: "admin"}` → `{grant: <id>}`
/// - `{revokeAccess: 1, revocation: BinData(SignedRevocation), $db: "admin"}` → `{grant: <id>}`
///
/// The caller must be the grant's (or revocation's) signer: the signature is the authority,
/// the login shows the caller holds the key. `stratosdb grant` and `stratosdb revoke` use these
/// when the node is running.
enum GrantCommands {
    static func register(into table: inout CommandTable) {
        table["grantAccess"] = { context in try await grantAccess(context) }
        table["revokeAccess"] = { context in try await revokeAccess(context) }
    }

    static func grantAccess(_ context: CommandContext) async throws -> BSONDocument {
        guard let principal = context.principal else { throw QueryError(.unauthorized, "grantAccess requires authentication") }
        let bytes = try signedBytes(context, field: "grant")
        let signed: SignedGrant
        do { signed = try SignedGrant(decoding: bytes) } catch {
            throw QueryError(.badValue, "grant is not a validly signed grant: \(error.message)")
        }
        guard signed.grant.issuer == principal.did else {
            throw QueryError(.unauthorized, "a grant is stored by the identity that signed it")
        }
        let server = context.server
        try server.catalog.addGrant(signed, nodeKey: server.identity.nodeKey)
        try await log([.grant(signed: signed.encoded)], space: signed.grant.space, context)
        return ["grant": .string(signed.id)]
    }

    static func revokeAccess(_ context: CommandContext) async throws -> BSONDocument {
        guard let principal = context.principal else { throw QueryError(.unauthorized, "revokeAccess requires authentication") }
        let bytes = try signedBytes(context, field: "revocation")
        let revocation: SignedRevocation
        do { revocation = try SignedRevocation(decoding: bytes) } catch {
            throw QueryError(.badValue, "revocation is not a validly signed revocation: \(error.message)")
        }
        guard revocation.issuer == principal.did else {
            throw QueryError(.unauthorized, "a revocation is stored by the identity that signed it")
        }
        // The catalog first: the grant stops working on the grantee's next command. Sending the
        // same revocation again (after a failed log write) completes what it started.
        let catalog = context.server.catalog
        try revokeInCatalog(revocation, catalog)
        // The grant goes along, for a log that does not hold it yet (`append` skips what it holds).
        let grant = try catalog.grants(space: revocation.space).first { $0.signed.id == revocation.grantID }
        try await log((grant.map { [.grant(signed: $0.signed.encoded)] } ?? []) + [.revocation(signed: revocation.encoded)], space: revocation.space, context)
        return ["grant": .string(revocation.grantID)]
    }

    /// Revokes in the catalog; the same revocation again succeeds (its log write may have failed).
    private static func revokeInCatalog(_ revocation: SignedRevocation, _ catalog: NodeCatalog) throws(QueryError) {
        do {
            try catalog.revoke(revocation)
        } catch {
            let done = error.code == .userNotFound && ((try? catalog.grants(space: revocation.space)) ?? []).contains { $0.revocation == revocation }
            if !done { throw error }
        }
    }

    private static func signedBytes(_ context: CommandContext, field: String) throws(QueryError) -> [UInt8] {
        guard case .binary(let binary)? = context.command[field] else {
            throw QueryError(.typeMismatch, "grantAccess and revokeAccess need '\(field)': the signed bytes as BinData")
        }
        guard binary.data.count <= 1 << 16 else { throw QueryError(.badValue, "'\(field)' is larger than 64 KiB") }
        return binary.data
    }

    /// Appends the operation to the space's log in a durable commit (opening the space logs it
    /// already when the catalog held it first: `GrantLog` appends only what the log lacks).
    private static func log(_ operations: [CommitOperation], space: SpaceID, _ context: CommandContext) async throws {
        guard let executor = try context.server.storage.executor(space.string, create: true) else { return }
        try await executor.write(durable: true) { store throws(QueryError) in
            _ = try GrantLog.append(operations, to: store)
        }
    }
}
