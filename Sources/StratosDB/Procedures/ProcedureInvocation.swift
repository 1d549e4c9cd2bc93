import QueryEngine
import SpaceOwnership
import StoredProcedures

/// One run of a stored procedure: which one, with what, as whom. Shared by `callProcedure` and
/// the job scheduler; `run` executes inside the space's write transaction.
struct ProcedureInvocation: Sendable {
    let name: String
    /// A pinned version, or nil for the newest.
    let version: Int?
    /// The `args` document, as BSON.
    let arguments: [UInt8]
    let fuel: UInt64
    let space: ResolvedSpace
    /// Whose grants the procedure's reads and writes are checked against.
    let principal: DID
    let nowMilliseconds: Int64

    struct Finished: Sendable {
        let outcome: ProcedureOutcome
        let version: Int
        let codeHash: [UInt8]
        /// The module's bytes (sent to a second node for `redundancy: 2`).
        let code: [UInt8]
    }

    /// Loads the procedure from `store` (its compiled module comes from the node's cache) and
    /// runs it; throws what the procedure's failure means for the client.
    func run(in store: DatabaseStore, server: ServerState, witness: Witness? = nil) throws(QueryError) -> Finished {
        guard let stored = try ProcedureStore.load(store, name: name, version: version) else {
            throw QueryError(.procedureNotFound, version.map { "procedure '\(name)' has no version \($0)" } ?? "no procedure '\(name)' in this space")
        }
        let limits = server.configuration.procedureLimits
        let module = try server.procedureModules.module(codeHash: stored.codeHash, bytes: { stored.code }, limits: limits)
        let authorizer = server.authorizer
        let space = space
        let principal = principal
        let now = nowMilliseconds
        let data = ProcedureDataAdapter(store: store, nowMilliseconds: now) { action, collection throws(QueryError) in
            try authorizer.authorize(action, collection: collection, space: space, did: principal, nowMilliseconds: now)
        }
        let access: any ProcedureDataAccess = witness.map { RecordingDataAccess(data, into: $0) } ?? data
        let call = ProcedureCall(arguments: arguments, data: access, limits: limits)
        let outcome = try ProcedureRuntime.run(module, name: name, call: call, fuel: fuel)
        return Finished(outcome: outcome, version: stored.version, codeHash: stored.codeHash, code: stored.code)
    }
}
