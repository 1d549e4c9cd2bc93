import Dispatch
import Foundation
import Logging
import QueryEngine
import SpaceOwnership
import StoredProcedures
import StratosCore
import Synchronization

/// `redundancy: 2`: a second computation node re-runs a job attempt and signs what it got.
///
/// The node that hosts the space runs the attempt while recording a witness (every document its
/// cursors returned and every write's outcome). It sends the module, the arguments, the fuel and
/// the witness to a connected peer over the validator network; the peer re-runs the module with
/// the witness standing in for the data and answers with its result hash, its fuel and its
/// signature over the result lines. The attempt counts only if both agree; otherwise it fails
/// visibly (`ProcedureDiverged`) and its writes are rolled back. The peer checks the
/// computation, not the data: it has no copy of the space and trusts the documents in the
/// witness (the space is not replicated between nodes yet).
final class JobVerification: Sendable {
    static let requestTag: UInt8 = 0x40
    static let verdictTag: UInt8 = 0x41
    /// The largest witness sent to a peer (it travels in one peer frame with the module).
    static let witnessBytesMax = 3 << 20
    /// Peers asked, at most, for one attempt.
    static let peersAskedMax = 2
    /// Re-runs waiting on this node for peers, at most (more are answered "busy").
    static let queuedRerunsMax = 4

    struct Request: Sendable {
        var id: UInt64
        var space: String
        var job: String
        var run: Int64
        var attempt: Int64
        var procedure: String
        var code: [UInt8]
        var arguments: [UInt8]
        var fuel: UInt64
        var witness: [UInt8]
        var finishedAt: Int64

        var encoded: [UInt8] {
            var encoder = CanonicalEncoder()
            encoder.write(JobVerification.requestTag)
            encoder.write(id); encoder.write(space); encoder.write(job); encoder.write(run); encoder.write(attempt)
            encoder.write(procedure); encoder.write(bytes: code); encoder.write(bytes: arguments); encoder.write(fuel)
            encoder.write(bytes: witness); encoder.write(finishedAt)
            return encoder.bytes
        }

        init(id: UInt64, space: String, job: String, run: Int64, attempt: Int64, procedure: String, code: [UInt8], arguments: [UInt8], fuel: UInt64, witness: [UInt8], finishedAt: Int64) {
            self.id = id; self.space = space; self.job = job; self.run = run; self.attempt = attempt; self.procedure = procedure
            self.code = code; self.arguments = arguments; self.fuel = fuel; self.witness = witness; self.finishedAt = finishedAt
        }

        init(decoding bytes: [UInt8]) throws(StratosError) {
            var decoder = CanonicalDecoder(bytes)
            guard try decoder.readUInt8() == JobVerification.requestTag else { throw StratosError(.invalidEncoding, "not a job request") }
            id = try decoder.readUInt64(); space = try decoder.readString(maxCount: 64); job = try decoder.readString(maxCount: 64)
            run = try decoder.readInt64(); attempt = try decoder.readInt64(); procedure = try decoder.readString(maxCount: 64)
            code = try decoder.readBytes(maxCount: 8 << 20); arguments = try decoder.readBytes(maxCount: 16 << 20); fuel = try decoder.readUInt64()
            witness = try decoder.readBytes(maxCount: 8 << 20); finishedAt = try decoder.readInt64()
            try decoder.finish()
        }
    }

    struct Verdict: Sendable {
        var id: UInt64
        /// Whether the re-run returned normally (false: it failed or diverged; `problem` says how).
        var ok: Bool
        var outputHash: [UInt8]
        var fuelUsed: UInt64
        var codeHash: [UInt8]
        var problem: String
        var node: PublicKey
        var signature: [UInt8]

        var encoded: [UInt8] {
            var encoder = CanonicalEncoder()
            encoder.write(JobVerification.verdictTag)
            encoder.write(id); encoder.write(ok); encoder.write(bytes: outputHash); encoder.write(fuelUsed); encoder.write(bytes: codeHash)
            encoder.write(problem); encoder.write(bytes: node.bytes); encoder.write(bytes: signature)
            return encoder.bytes
        }

        init(id: UInt64, ok: Bool, outputHash: [UInt8], fuelUsed: UInt64, codeHash: [UInt8], problem: String, node: PublicKey, signature: [UInt8]) {
            self.id = id; self.ok = ok; self.outputHash = outputHash; self.fuelUsed = fuelUsed; self.codeHash = codeHash
            self.problem = problem; self.node = node; self.signature = signature
        }

        init(decoding bytes: [UInt8]) throws(StratosError) {
            var decoder = CanonicalDecoder(bytes)
            guard try decoder.readUInt8() == JobVerification.verdictTag else { throw StratosError(.invalidEncoding, "not a job verdict") }
            id = try decoder.readUInt64(); ok = try decoder.readBool(); outputHash = try decoder.readBytes(maxCount: 32)
            fuelUsed = try decoder.readUInt64(); codeHash = try decoder.readBytes(maxCount: 32); problem = try decoder.readString(maxCount: 4096)
            node = try PublicKey(bytes: try decoder.readBytes(maxCount: 32)); signature = try decoder.readBytes(maxCount: 64)
            try decoder.finish()
        }
    }

    private let nodeKey: SigningKey
    private let limits: ProcedureLimits
    /// Peers' modules, kept apart from the node's own cache so they cannot crowd it out.
    private let modules = ProcedureModuleCache(capacity: 16)
    /// Keys allowed to ask for re-runs: the chain's validators and computation nodes (refreshed
    /// by the job scheduler); nil until first set.
    private let trusted = Mutex<Set<PublicKey>?>(nil)
    private let queued = Atomic<Int>(0)
    private let logger: Logger
    private let disagree: Bool
    private let nextID = Atomic<UInt64>(0)
    private let pending = Mutex<[UInt64: Waiter]>([:])
    /// Re-runs one at a time, off the network's event loop.
    private let queue = DispatchQueue(label: "stratosdb.job-verification")
    /// Sends bytes to a peer; false when it is not connected.
    let transport = Mutex<(@Sendable ([UInt8], PublicKey) -> Bool)?>(nil)

    private final class Waiter: @unchecked Sendable {
        // Safe: `verdict` is written before `semaphore` is signalled and read after it is waited on.
        let semaphore = DispatchSemaphore(value: 0)
        var verdict: Verdict?
    }

    init(nodeKey: SigningKey, limits: ProcedureLimits, logger: Logger, disagree: Bool) {
        self.nodeKey = nodeKey
        self.limits = limits
        self.logger = logger
        self.disagree = disagree
    }

    /// Sets who may ask this node for re-runs.
    func setTrusted(_ keys: Set<PublicKey>) { trusted.withLock { $0 = keys } }

    /// How long the first node waits for a verdict: the re-run may take as long as the run did.
    var verdictTimeoutSeconds: Int { Int(limits.timeMillisecondsMax / 1000) + 5 }

    // MARK: - The first node

    /// Sends `request` to `peer` and blocks (on the space's write thread) for its verdict;
    /// nil when the peer is gone or does not answer in time.
    func verify(_ request: Request, with peer: PublicKey) -> Verdict? {
        var request = request
        request.id = nextID.wrappingAdd(1, ordering: .relaxed).newValue
        let waiter = Waiter()
        pending.withLock { $0[request.id] = waiter }
        defer { _ = pending.withLock { $0.removeValue(forKey: request.id) } }
        guard let send = transport.withLock({ $0 }), send(request.encoded, peer) else { return nil }
        guard waiter.semaphore.wait(timeout: .now() + .seconds(verdictTimeoutSeconds)) == .success else { return nil }
        guard let verdict = waiter.verdict, verdict.node == peer else { return nil }
        return verdict
    }

    // MARK: - Messages

    /// A job message from an authenticated peer.
    func receive(_ bytes: [UInt8], from peer: PublicKey) {
        switch bytes.first {
        case Self.requestTag?:
            guard let request = try? Request(decoding: bytes), trusted.withLock({ $0?.contains(peer) ?? false }) else { return }
            guard queued.wrappingAdd(1, ordering: .relaxed).newValue <= Self.queuedRerunsMax else {
                queued.wrappingSubtract(1, ordering: .relaxed)
                let busy = Verdict(
                    id: request.id, ok: false, outputHash: [], fuelUsed: 0, codeHash: [], problem: "busy", node: nodeKey.publicKey, signature: [])
                _ = transport.withLock { $0 }?(busy.encoded, peer)
                return
            }
            queue.async {
                defer { self.queued.wrappingSubtract(1, ordering: .relaxed) }
                self.answer(request, to: peer)
            }
        case Self.verdictTag?:
            guard let verdict = try? Verdict(decoding: bytes), verdict.node == peer,
                let waiter = pending.withLock({ $0[verdict.id] })
            else { return }
            waiter.verdict = verdict
            waiter.semaphore.signal()
        default:
            return
        }
    }

    // MARK: - The second node

    private func answer(_ request: Request, to peer: PublicKey) {
        let codeHash = Hash256.blake2b(request.code).bytes
        var ok = false
        var outputHash: [UInt8] = []
        var fuelUsed: UInt64 = 0
        var problem = ""
        do throws(QueryError) {
            guard request.fuel <= limits.fuelMax else { throw QueryError(.badValue, "the fuel asked for is above this node's maximum") }
            let module = try modules.module(codeHash: codeHash, bytes: { request.code }, limits: limits)
            let witness: Witness
            do { witness = try Witness(decoding: request.witness, bytesMax: Self.witnessBytesMax) } catch {
                throw QueryError(.procedureDiverged, "the witness is malformed")
            }
            let replay = ReplayDataAccess(witness)
            let call = ProcedureCall(arguments: request.arguments, data: replay, limits: limits)
            // The re-run has this node's wall-time limit, like a call of its own.
            let operation = OperationContext(deadlineNanoseconds: MonotonicTime.deadline(afterMilliseconds: limits.timeMillisecondsMax))
            let outcome = try OperationContext.withCurrent(operation) { () throws(QueryError) in
                try ProcedureRuntime.run(module, name: request.procedure, call: call, fuel: request.fuel)
            }
            guard replay.isFinished else { throw QueryError(.procedureDiverged, "the re-run made fewer requests than the first node's run") }
            ok = true
            outputHash = Hash256.blake2b(outcome.result.bsonBytes).bytes
            fuelUsed = outcome.fuelUsed
        } catch {
            problem = "\(error.code.name): \(error.message)"
        }
        if disagree && ok { outputHash[0] ^= 0xff }  // `serve --fail-point job-verifier-disagrees` (tests only)
        let signature: [UInt8]
        if ok, let space = SpaceID(request.space) {
            signature = nodeKey.sign(JobStore.signedText(
                space: space, job: request.job, run: request.run, attempt: request.attempt, ok: true, outputHash: outputHash,
                fuelUsed: fuelUsed, codeHash: codeHash, finishedAt: request.finishedAt, node: nodeKey.did)).bytes
        } else {
            signature = []
        }
        let verdict = Verdict(
            id: request.id, ok: ok, outputHash: outputHash, fuelUsed: fuelUsed, codeHash: codeHash, problem: problem,
            node: nodeKey.publicKey, signature: signature)
        logger.info("job verified for a peer", metadata: ["stratos_job": "\(request.job)", "stratos_agrees": "\(ok)"])
        _ = transport.withLock { $0 }?(verdict.encoded, peer)
    }
}
