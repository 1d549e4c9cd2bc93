import ArgumentParser
import Foundation
import SpaceOwnership
import StratosCore

/// `stratosdb verify-proof`: checks a `proveRecord` answer offline.
struct VerifyProofCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-proof",
        abstract: "Check a proveRecord answer offline: document → state map → signed commit. Exit 0 only if every link holds.",
        discussion: """
            FILE is the proveRecord reply saved as JSON (for example with bson.json_util.dumps), or just its
            `proof` string. Only the `proof` string is checked: it carries the document's exact bytes, and
            the reply's readable fields are a convenience. Nothing is fetched from a node. Prints what was
            proven, one fact per line.
            """)
    @Argument(help: "The proof file ('-' for standard input).") var file: String
    @Option(name: .long, help: "Require the commit to be signed by this did:key (the hosting node you trust).") var trust: String?

    func run() throws {
        let data: Data
        if file == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let contents = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
            data = contents
        }
        let text = try Self.proofText(data)
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
        emit("verified")
        emit("space \(verified.space)")
        emit("collection \(verified.collection)")
        emit("commit \(verified.commitSeq) \(Hex.encode(verified.commitHash))")
        emit("stateRoot \(Hex.encode(verified.stateRoot))")
        emit("signedBy \(verified.author)")
        emit("documentBLAKE2b \(Hash256.blake2b(bundle.document).hex)")
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
