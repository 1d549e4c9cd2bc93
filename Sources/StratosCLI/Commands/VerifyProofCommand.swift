import ArgumentParser
import Foundation
import Ledger
import StratosDB
import SpaceOwnership
import StratosCore

/// `stratosdb verify-proof`: checks a `proveRecord` answer offline.
struct VerifyProofCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-proof",
        abstract: "Check a proveRecord answer offline: document → state map → signed commit → anchor batch → block → validator signatures. Exit 0 only if every link holds.",
        discussion: """
            FILE is the proveRecord reply saved as JSON (for example with bson.json_util.dumps), or just its
            `proof` string. Only the `proof` string is checked: it carries the document's exact bytes, and
            the reply's readable fields are a convenience. Nothing is fetched from a node. Prints what was
            proven, one fact per line.

            When the reply carries an `anchorProof` (the commit is in a decided block), it is checked too:
            the commit's leaf in the anchor batch (RFC 6962), the anchor transaction in the block, the block
            header, and precommit signatures of more than 2/3 of the validator power. With --genesis, the
            validators are checked against that chain's genesis set (skipping verification with trust
            level 1/3 when the set has changed since); without it, the set carried in the proof is used.
            """)
    @Argument(help: "The proof file ('-' for standard input).") var file: String
    @Option(name: .long, help: "Require the commit to be signed by this did:key (the hosting node you trust).") var trust: String?
    @Option(name: .long, help: "The chain's genesis.json: trust its validators and chain ID for the anchor proof.") var genesis: String?
    @Flag(name: .long, help: "Fail unless the proof also shows the commit anchored in a decided block.") var requireAnchor = false

    func run() throws {
        // Nothing is printed unless every link holds.
        var lines: [String] = []
        var succeeded = false
        defer { if succeeded { for line in lines { emit(line) } } }
        let data: Data
        if file == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let contents = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
            data = contents
        }
        let text = try Self.proofText(data)
        let anchorText = Self.anchorProofText(data)
        let bundle: RecordProofBundle
        let verified: RecordProofBundle.Verified
        do {
            bundle = try RecordProofBundle(text: text)
            verified = try bundle.verify()
        } catch {
            throw CLIError("proof does NOT verify: \(error.message)")
        }
        if let trust, trust != verified.author.string {
            throw CLIError("proof does NOT verify: the commit is signed by \(verified.author), not by \(trust)")
        }
        lines.append("verified")
        lines.append("space \(verified.space)")
        lines.append("collection \(verified.collection)")
        lines.append("commit \(verified.commitSeq) \(Hex.encode(verified.commitHash))")
        lines.append("stateRoot \(Hex.encode(verified.stateRoot))")
        lines.append("signedBy \(verified.author)")
        lines.append("documentBLAKE2b \(Hash256.blake2b(bundle.document).hex)")
        guard let anchorText else {
            if requireAnchor { throw CLIError("proof does NOT verify: it carries no anchor proof (the commit is not anchored yet)") }
            lines.append("anchored no")
            succeeded = true
            return
        }
        var trusted: ValidatorSet?
        var chainID: String?
        if let genesis {
            do {
                let state = try ChainState(genesis: try GenesisFile.read(path: genesis).genesis)
                trusted = state.validators
                chainID = state.chainID
            } catch {
                throw CLIError("cannot use the genesis file \(genesis): \(error)")
            }
        }
        let anchor: AnchorProof.Verified
        do {
            let proof = try AnchorProof(decoding: try Base64URL.decode(anchorText, maxCount: 1 << 24))
            if let chainID, proof.header.chainID != chainID {
                throw CLIError("proof does NOT verify: the anchor is on chain \(proof.header.chainID), not \(chainID)")
            }
            anchor = try proof.verify(space: verified.space.string, commitHash: verified.commitHash, trusted: trusted)
        } catch let error as CLIError {
            throw error
        } catch let error as LedgerError {
            throw CLIError("anchor proof does NOT verify: \(error.message)")
        } catch {
            throw CLIError("anchor proof does NOT verify: \(error)")
        }
        lines.append("anchored yes")
        lines.append("chain \(anchor.chainID)")
        lines.append("block \(anchor.height) \(anchor.blockID.hex)")
        lines.append("signedPower \(anchor.signedPower)/\(anchor.totalPower)")
        lines.append(trusted == nil ? "validators taken from the proof (give --genesis to check them against the chain's genesis)" : "validators checked against \(genesis ?? "")")
        succeeded = true
    }

    /// The `anchorProof` member of a JSON reply, if there is one and it is not null.
    static func anchorProofText(_ data: Data) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return object["anchorProof"] as? String
    }

    /// The proof text: a JSON object's `proof` member, or the file's text itself.
    static func proofText(_ data: Data) throws -> String {
        if let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            guard let proof = object["proof"] as? String else { throw CLIError("the JSON has no \"proof\" string") }
            return proof
        }
        guard let text = String(data: data, encoding: .utf8) else { throw CLIError("the proof is neither JSON nor text") }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
