import Foundation
import Ledger
import Logging
import QueryEngine
import SpaceOwnership
import StratosCore
import StoredProcedures

/// Runs due compute jobs, one at a time, on the node that hosts their spaces.
///
/// The node catalog's `scheduled_jobs` says which job is due when; the job document in the
/// space is the truth (a job cancelled or finished there is dropped from the index when met).
/// Each attempt runs in one write transaction of the space: the procedure's writes (in a
/// savepoint, so a failure keeps none of them), the signed result, and the job's next state
/// commit together. After a restart the index is read again and due jobs run at once; an
/// attempt cut short by a crash left nothing and runs again.
///
/// A node runs jobs when it is a computation node: registered on the chain with the computation
/// type bit, or on a chain where no node has registered as one (a node that plays every role).
struct JobScheduler: Sendable {
    let server: ServerState

    /// Runs until the task is cancelled (node shutdown).
    func run() async {
        var trustRefreshed: Int64 = 0
        while !Task.isCancelled {
            var wait: Int64 = 1_000
            let now = server.clock.nowMilliseconds()
            if server.peerNetwork != nil, now - trustRefreshed >= 5_000, let ledger = server.ledger {
                // Who may ask this node for re-runs: the chain's validators and computation nodes.
                let chain = await ledger.state()
                server.jobVerification.setTrusted(Set(chain.validators.validators.map(\.publicKey)).union(Self.computationNodes(chain)))
                trustRefreshed = now
            }
            do {
                let now = server.clock.nowMilliseconds()
                let (due, next) = try server.catalog.dueJobs(nowMilliseconds: now, limit: 16)
                // The chain is read once for the batch: whether this node computes, and which peers
                // may re-run an attempt (`redundancy: 2`). With no computation node registered,
                // every node computes; without a ledger, so does this one.
                var computation: Set<PublicKey> = []
                if !due.isEmpty, let ledger = server.ledger { computation = Self.computationNodes(await ledger.state()) }
                if !due.isEmpty, computation.isEmpty || computation.contains(server.identity.nodeKey.publicKey) {
                    let peers = (server.peerNetwork?.connectedPeerKeys ?? []).sorted { $0.bytes.lexicographicallyPrecedes($1.bytes) }
                    let verifiers = computation.isEmpty ? peers : peers.filter { computation.contains($0) }
                    for (space, job) in due where !Task.isCancelled { await runAttempt(space: space, job: job, verifiers: verifiers) }
                    wait = 0
                } else if due.isEmpty, let next {
                    wait = min(wait, max(0, next - now))
                }
            } catch {
                server.logger.warning("job scheduler: cannot read the job index", metadata: ["stratos_error": "\(error.message)"])
            }
            if wait > 0 { try? await Task.sleep(for: .milliseconds(wait)) }
        }
    }

    /// The nodes registered on the chain with the computation type bit.
    private static func computationNodes(_ chain: ChainState) -> Set<PublicKey> {
        Set(chain.resourceNodes.filter { $0.value.types & ResourceNode.computation != 0 }.keys)
    }

    private enum Next: Sendable {
        case at(Int64)
        case done
    }

    /// One attempt of `job` in `space`.
    private func runAttempt(space: SpaceID, job: String, verifiers: [PublicKey]) async {
        let server = server
        let catalog = server.catalog
        guard let record = catalog.space(space) else {
            try? catalog.unscheduleJob(space: space, job: job)  // The space is gone.
            return
        }
        let executor: DatabaseExecutor
        do {
            guard let opened = try server.storage.executor(space.string, create: false) else {
                try? catalog.unscheduleJob(space: space, job: job)  // Dropped: no file.
                return
            }
            executor = opened
        } catch {
            // Refused for now (too many open spaces, a damaged file): try again later.
            server.logger.warning("job scheduler: cannot open the space", metadata: ["stratos_space": "\(space)", "stratos_error": "\(error.message)"])
            try? catalog.scheduleJob(space: space, job: job, nextRunMilliseconds: server.clock.nowMilliseconds() + 30_000)
            return
        }
        let resolved = ResolvedSpace(id: space, owner: record.controller, name: nil)
        let operation = OperationContext()
        operation.documentsExaminedMax = server.configuration.documentsExaminedMax
        operation.deadlineNanoseconds = MonotonicTime.deadline(afterMilliseconds: server.configuration.procedureLimits.timeMillisecondsMax)
        let connection = ConnectionInfo(id: 0, remoteAddress: "job-scheduler", session: ConnectionSession())
        let opid = server.operations.register(
            connection: connection, principal: "", command: "job", namespace: "\(space.string).\(job)",
            nowMilliseconds: server.clock.nowMilliseconds(), operation: operation)
        defer {
            server.operations.finish(opid)
            operation.releaseMemory()
        }
        do {
            let next = try await OperationRegistry.$current.withValue(operation) {
                try await executor.write(durable: false, inline: false) { store throws(QueryError) -> Next in
                    try Self.attempt(store: store, job: job, space: resolved, server: server, verifiers: verifiers)
                }
            }
            switch next {
            case .at(let time): try catalog.scheduleJob(space: space, job: job, nextRunMilliseconds: time)
            case .done: try catalog.unscheduleJob(space: space, job: job)
            }
        } catch {
            // The transaction failed as a whole (shutdown, disk): the job is still due and runs again.
            let failure = error as? QueryError ?? QueryError(.internalError, "unexpected failure")
            if failure.code == .interruptedAtShutdown { return }
            server.logger.warning("job attempt not recorded", metadata: ["stratos_space": "\(space)", "stratos_job": "\(job)", "stratos_error": "\(failure.message)"])
            try? catalog.scheduleJob(space: space, job: job, nextRunMilliseconds: server.clock.nowMilliseconds() + 5_000)
        }
    }

    /// Inside the space's write transaction: runs the procedure, records the signed result and
    /// moves the job to its next state.
    private static func attempt(
        store: DatabaseStore, job: String, space: ResolvedSpace, server: ServerState, verifiers: [PublicKey]
    ) throws(QueryError) -> Next {
        guard let (rid, document) = try JobStore.load(store, id: job), document["state"] == .string(JobStore.State.scheduled.rawValue) else {
            return .done
        }
        guard case .string(let name)? = document["procedure"], case .string(let submitter)? = document["submittedBy"],
            let principal = try? DID(parsing: submitter)
        else {
            throw QueryError(.internalError, "job \(job) is malformed")
        }
        let started = server.clock.nowMilliseconds()
        let run = (document["runs"]?.int64Value ?? 0) + 1
        let attempt = (document["attempts"]?.int64Value ?? 0) + 1
        // A node restarted with a lower --procedure-fuel-max lowers old jobs' fuel too.
        let fuel = min(
            UInt64(clamping: document["fuel"]?.int64Value ?? Int64(server.configuration.procedureLimits.fuelDefault)),
            server.configuration.procedureLimits.fuelMax)
        let arguments: BSONDocument = if case .document(let given)? = document["args"] { given } else { BSONDocument() }
        let invocation = ProcedureInvocation(
            name: name, version: document["version"]?.int64Value.map { Int($0) }, arguments: arguments.bsonBytes, fuel: fuel, space: space,
            principal: principal, nowMilliseconds: started)

        let redundancy = document["redundancy"]?.int64Value ?? 1
        // The procedure's writes live in a savepoint: a failed attempt keeps none of them. With
        // redundancy 2 the savepoint stays open until a second node agrees.
        var finished: Int64 = 0
        var verifiedBy: [BSONValue] = []
        let outcome: Result<ProcedureInvocation.Finished, QueryError>
        do {
            outcome = .success(try store.withSavepoint { () throws(QueryError) in
                let witness = redundancy > 1 ? Witness(bytesMax: JobVerification.witnessBytesMax) : nil
                let done = try invocation.run(in: store, server: server, witness: witness)
                finished = server.clock.nowMilliseconds()
                if let witness {
                    verifiedBy = [try secondOpinion(
                        server: server, space: space.id, job: job, run: run, attempt: attempt, name: name, done: done, arguments: invocation.arguments,
                        fuel: fuel, witness: witness, finishedAt: finished, verifiers: verifiers)]
                }
                return done
            })
        } catch {
            // At shutdown the attempt is not recorded: it runs again when the node is back.
            if error.code == .interruptedAtShutdown { throw error }
            outcome = .failure(error)
            finished = server.clock.nowMilliseconds()
        }
        var result: BSONDocument = [
            "_id": .string("\(job)/\(run)/\(attempt)"), "job": .string(job), "procedure": .string(name), "run": .int64(run),
            "attempt": .int64(attempt),
        ]
        let outputHash: [UInt8]
        let fuelUsed: UInt64
        let codeHash: [UInt8]
        switch outcome {
        case .success(let done):
            result["ok"] = .bool(true)
            result["result"] = .document(done.outcome.result)
            result["procedureVersion"] = .int64(Int64(done.version))
            outputHash = Hash256.blake2b(done.outcome.result.bsonBytes).bytes
            fuelUsed = done.outcome.fuelUsed
            codeHash = done.codeHash
            server.recordProcedureCall(space: space.id.string, name: name, fuel: fuelUsed, failed: false)
        case .failure(let error):
            result["ok"] = .bool(false)
            result["error"] = .document(["code": .int32(error.code.number), "codeName": .string(error.code.name), "errmsg": .string(error.message)])
            outputHash = Hash256.blake2b(Array(error.message.utf8)).bytes
            fuelUsed = error.code == .exceededFuel ? fuel : 0
            codeHash = (try? ProcedureStore.load(store, name: name))?.codeHash ?? []
            server.recordProcedureCall(space: space.id.string, name: name, fuel: fuelUsed, failed: true)
        }
        let node = server.identity.nodeKey
        let signed = JobStore.signedText(
            space: space.id, job: job, run: run, attempt: attempt, ok: outcome.isSuccess, outputHash: outputHash, fuelUsed: fuelUsed,
            codeHash: codeHash, finishedAt: finished, node: node.did)
        result["outputHash"] = .string(Hex.encode(outputHash))
        result["fuelUsed"] = .int64(Int64(clamping: fuelUsed))
        result["codeHash"] = .string(Hex.encode(codeHash))
        result["startedAt"] = .datetime(started)
        result["finishedAt"] = .datetime(finished)
        result["node"] = .string(node.did.string)
        result["signature"] = .string(Base64URL.encode(node.sign(signed).bytes))
        if !verifiedBy.isEmpty { result["verifiedBy"] = .array(verifiedBy) }
        try JobStore.append(store, result: result, job: job)

        // The job's next state.
        var updated = document
        let interval = document["everyMS"]?.int64Value
        let retries = document["retries"]?.int64Value ?? 0
        let retryDelay = document["retryDelayMS"]?.int64Value ?? 5_000
        updated["lastRun"] = .document([
            "run": .int64(run), "attempt": .int64(attempt), "ok": .bool(outcome.isSuccess), "finishedAt": .datetime(finished),
            "resultId": result["_id"]!,
        ])
        var next: Next = .done
        if !outcome.isSuccess && attempt <= retries {
            updated["attempts"] = .int64(attempt)
            next = .at(finished + retryDelay)
        } else {
            updated["runs"] = .int64(run)
            updated["attempts"] = .int64(0)
            if let interval, interval > 0 {
                // Recurring: the next run keeps the schedule's phase (the slot this run was for,
                // not a retry's time); a missed slot is not made up. Intervals are at most 366 days.
                let slot = document["slotAt"].flatMap { if case .datetime(let at) = $0 { at } else { nil } } ?? started
                var at = slot.addingReportingOverflow(interval).partialValue
                if at <= finished { at = finished + interval - (finished - slot) % interval }
                updated["slotAt"] = .datetime(at)
                next = .at(at)
            } else {
                updated["state"] = .string((outcome.isSuccess ? JobStore.State.succeeded : JobStore.State.failed).rawValue)
            }
        }
        if case .at(let at) = next { updated["nextRunAt"] = .datetime(at) } else { updated["nextRunAt"] = .null }
        try JobStore.save(store, rid: rid, old: document, new: updated)
        return next
    }
}

extension JobScheduler {
    /// Asks a second node to re-run the attempt from its witness; returns its signed agreement,
    /// or throws `ProcedureDiverged` (it disagrees) or `RedundancyUnavailable` (nobody answered).
    fileprivate static func secondOpinion(
        server: ServerState, space: SpaceID, job: String, run: Int64, attempt: Int64, name: String, done: ProcedureInvocation.Finished,
        arguments: [UInt8], fuel: UInt64, witness: Witness, finishedAt: Int64, verifiers: [PublicKey]
    ) throws(QueryError) -> BSONValue {
        let request = JobVerification.Request(
            id: 0, space: space.string, job: job, run: run, attempt: attempt, procedure: name, code: done.code, arguments: arguments, fuel: fuel,
            witness: witness.encoded, finishedAt: finishedAt)
        let outputHash = Hash256.blake2b(done.outcome.result.bsonBytes).bytes
        guard request.encoded.count + 1_024 <= PeerLimits.frameBytesMax else {
            throw QueryError(.jobTooLargeToVerify, "the module, arguments and witness are too large to send to a second node in one message")
        }
        for peer in verifiers.prefix(JobVerification.peersAskedMax) {
            guard let verdict = server.jobVerification.verify(request, with: peer), verdict.problem != "busy" else { continue }
            let did = DID(publicKey: peer)
            guard verdict.ok else {
                throw QueryError(.procedureDiverged, "node \(did.string) re-ran the attempt and it failed there: \(verdict.problem)")
            }
            guard verdict.outputHash == outputHash, verdict.fuelUsed == done.outcome.fuelUsed, verdict.codeHash == done.codeHash else {
                throw QueryError(.procedureDiverged, "node \(did.string) re-ran the attempt and got a different result; the attempt is void")
            }
            let text = JobStore.signedText(
                space: space, job: job, run: run, attempt: attempt, ok: true, outputHash: outputHash, fuelUsed: done.outcome.fuelUsed,
                codeHash: done.codeHash, finishedAt: finishedAt, node: did)
            guard let signature = try? Signature(bytes: verdict.signature), peer.isValidSignature(signature, for: text) else {
                throw QueryError(.procedureDiverged, "node \(did.string) sent a verdict with a bad signature")
            }
            return .document(["node": .string(did.string), "signature": .string(Base64URL.encode(verdict.signature))])
        }
        throw QueryError(
            .redundancyUnavailable,
            verifiers.isEmpty
                ? "redundancy 2 needs a second computation node connected to this one (serve --peer-port, --peers); none is"
                : "no second computation node answered within \(server.jobVerification.verdictTimeoutSeconds) s")
    }
}

extension Result {
    fileprivate var isSuccess: Bool { if case .success = self { true } else { false } }
}
