import Ledger
import QueryEngine
import SpaceOwnership
import StratosCore

/// `proveRecord`: a document with the proof that it is in the space at the latest commit.
enum ProofCommands {
    static func register(into table: inout CommandTable) {
        table["proveRecord"] = { context in try await proveRecord(context) }
    }

    /// `{proveRecord: <collection>, _id: <value>}` → the document, and `proof`: a self-contained
    /// bundle (base64url) that `stratosdb verify-proof` checks offline, plus readable fields.
    static func proveRecord(_ context: CommandContext) async throws -> BSONDocument {
        let collection = try context.collectionName()
        guard let id = context.command["_id"] else {
            throw QueryError(.failedToParse, "proveRecord requires the _id of the document to prove")
        }
        guard let space = context.space?.id else { throw QueryError(.unauthorized, "proveRecord requires authentication") }
        guard let executor = try context.executor(create: false) else {
            throw QueryError(.namespaceNotFound, "no document with that _id in \(context.database).\(collection)")
        }
        let idKey = IndexKey.idKey(id)
        // The proof is against the newest signed commit, which must cover the row. Another
        // client's write to the same document can wait in the commit window between the seal
        // and the read: then the row and the commit disagree without any damage, and the proof
        // is made again (a few times) before the disagreement counts as damage.
        var bundle: RecordProofBundle?
        for attempt in 1...5 {
            if attempt > 1 { try await Task.sleep(for: .milliseconds(2 * attempt)) }
            try await executor.sealPendingCommits()
            // Off the event loop: the proof replays the commits since the state map's last write-back.
            let made = try await context.readHeavy(executor) { store throws(QueryError) -> (RecordProofBundle?, changing: Bool) in
                guard let descriptor = store.collection(collection) else { return (nil, false) }
                let select = try store.sqlite.statement("SELECT doc FROM \(descriptor.tableName) WHERE id_key = ?1")
                select.bind(1, idKey)
                defer { select.reset() }
                guard try select.step() else { return (nil, false) }
                let document = select.blob(0)
                guard let head = try CommitLog.lastCommits(store.sqlite, count: 1).first else { return (nil, false) }
                let pending = PendingWrites.newestID(store.sqlite) != nil
                let proof: RecordProof?
                do {
                    proof = try SpaceState(storage: CommitLog.currentState(store.sqlite)).proof(collection: collection, idKey: idKey)
                } catch {
                    throw QueryError(.internalError, "the state map of space \(space) cannot be read")
                }
                guard let proof else {
                    if pending { return (nil, true) }
                    throw QueryError(.location(7_100_006), "space \(space) is damaged: a stored document is missing from its state map")
                }
                let made = RecordProofBundle(space: space, document: document, proof: proof, commit: head)
                return (made, pending && (try? made.verify()) == nil)
            }
            bundle = made.0
            if !made.changing { break }
            if attempt == 5 {
                // Writes to this document keep arriving between the seal and the read.
                throw QueryError(.writeConflict, "the document changed while it was being proved; retry proveRecord")
            }
        }
        guard let bundle else { throw QueryError(.namespaceNotFound, "no document with that _id in \(context.database).\(collection)") }
        let verified: RecordProofBundle.Verified
        do { verified = try bundle.verify() } catch {
            throw QueryError(.location(7_100_007), "space \(space) is damaged: its proof does not verify (\(error.message))")
        }
        var anchor: BSONDocument = ["anchored": .bool(false)]
        var anchorText: BSONValue = .null
        if let ledger = context.server.ledger, let proof = try ledger.anchorProof(space: space.string, seq: verified.commitSeq, commitHash: verified.commitHash) {
            let checked: AnchorProof.Verified
            do { checked = try proof.verify(space: space.string, commitHash: verified.commitHash, trusted: nil) } catch {
                throw QueryError(.location(7_100_008), "the ledger's anchor proof for space \(space) does not verify (\(error.message))")
            }
            anchor = [
                "anchored": .bool(true), "chainId": .string(checked.chainID), "height": .int64(Int64(checked.height)),
                "blockHash": .string(checked.blockID.hex), "blockTime": .datetime(checked.blockTimeMilliseconds),
                "signedPower": .int64(checked.signedPower), "totalPower": .int64(checked.totalPower),
            ]
            anchorText = .string(Base64URL.encode(proof.encoded))
        }
        return [
            "document": .document(try BSONDecoder.decode(bundle.document)),
            "space": .string(space.string),
            "collection": .string(collection),
            "commit": .document([
                "seq": .int64(Int64(verified.commitSeq)), "hash": .string(Hex.encode(verified.commitHash)),
                "stateRoot": .string(Hex.encode(verified.stateRoot)), "author": .string(verified.author.string),
                "timestamp": .datetime(bundle.commit.commit.timestampMilliseconds),
            ]),
            "proof": .string(bundle.text),
            "anchor": .document(anchor),
            "anchorProof": anchorText,
        ]
    }
}
