import Foundation
import QueryEngine
import StratosCore

/// The server side of one SCRAM exchange (RFC 5802 §3 and §5), as a pure state machine: the
/// client-first message in, the server-first out; the client-final in, the server-final out.
///
/// An unknown user gets a conversation with a made-up credential whose salt is derived from the
/// user name and a node secret, so the exchange looks the same for known and unknown users and
/// fails only at the proof, with the same message (no user enumeration).
struct ScramConversation: Sendable {
    let mechanism: ScramMechanism
    let user: String
    private let credential: ScramCredential
    private let isKnownUser: Bool
    private let clientFirstBare: String
    private let serverFirst: String
    private let nonce: String
    private let channelBinding: String

    /// The outcome of the first step.
    struct Start: Sendable {
        var conversation: ScramConversation
        var serverFirst: [UInt8]
    }

    static let failure = QueryError(.authenticationFailed, "Authentication failed.")

    /// Parses the client-first message and answers with the server-first message.
    static func start(
        mechanism: ScramMechanism, payload: [UInt8], credential lookup: (String) -> ScramCredential?, decoySecret: [UInt8]
    ) throws(QueryError) -> Start {
        guard payload.count <= ServerLimits.saslPayloadBytesMax, let message = String(validating: payload, as: UTF8.self) else {
            throw failure
        }
        // gs2-header: "n,," or "y,," (no channel binding), optionally with "a=authzid".
        let parts = message.split(separator: ",", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "n" || parts[0] == "y", parts[1].isEmpty else {
            throw QueryError(.badValue, "SCRAM client-first message must start with n,, (channel binding is not supported)")
        }
        let bare = String(parts[2])
        var user: String?
        var clientNonce: String?
        for attribute in bare.split(separator: ",") {
            if attribute.hasPrefix("n=") { user = decodeName(attribute.dropFirst(2)) }
            if attribute.hasPrefix("r=") { clientNonce = String(attribute.dropFirst(2)) }
            if attribute.hasPrefix("m=") { throw QueryError(.badValue, "SCRAM extensions are not supported") }
        }
        guard let user, !user.isEmpty, let clientNonce, !clientNonce.isEmpty, clientNonce.utf8.count <= 256 else {
            throw QueryError(.badValue, "SCRAM client-first message lacks a user name or nonce")
        }
        let known = lookup(user)
        let credential = known ?? decoy(mechanism: mechanism, user: user, secret: decoySecret)
        let nonce = clientNonce + Base64URL.encode(SecureRandom.bytes(count: 24))
        let serverFirst = "r=\(nonce),s=\(Data(credential.salt).base64EncodedString()),i=\(credential.iterations)"
        let conversation = ScramConversation(
            mechanism: mechanism, user: user, credential: credential, isKnownUser: known != nil, clientFirstBare: bare,
            serverFirst: serverFirst, nonce: nonce, channelBinding: Data((String(parts[0]) + ",,").utf8).base64EncodedString())
        return Start(conversation: conversation, serverFirst: Array(serverFirst.utf8))
    }

    /// Checks the client-final message's proof and returns the server-final message.
    func finish(payload: [UInt8]) throws(QueryError) -> [UInt8] {
        guard payload.count <= ServerLimits.saslPayloadBytesMax, let message = String(validating: payload, as: UTF8.self),
            let proofRange = message.range(of: ",p=")
        else { throw Self.failure }
        let withoutProof = String(message[..<proofRange.lowerBound])
        var binding: String?
        var nonce: String?
        for attribute in withoutProof.split(separator: ",") {
            if attribute.hasPrefix("c=") { binding = String(attribute.dropFirst(2)) }
            if attribute.hasPrefix("r=") { nonce = String(attribute.dropFirst(2)) }
        }
        guard binding == channelBinding, nonce == self.nonce,
            let proof = Data(base64Encoded: String(message[proofRange.upperBound...])).map(Array.init),
            proof.count == mechanism.digestCount
        else { throw Self.failure }
        let authMessage = Array("\(clientFirstBare),\(serverFirst),\(withoutProof)".utf8)
        let clientSignature = mechanism.hmac(key: credential.storedKey, authMessage)
        let clientKey = zip(proof, clientSignature).map { $0 ^ $1 }
        // Constant-time comparison of H(ClientKey) with StoredKey.
        let computed = mechanism.hash(clientKey)
        var difference: UInt8 = computed.count == credential.storedKey.count ? 0 : 1
        for (left, right) in zip(computed, credential.storedKey) { difference |= left ^ right }
        guard difference == 0, isKnownUser else { throw Self.failure }
        let serverSignature = mechanism.hmac(key: credential.serverKey, authMessage)
        return Array("v=\(Data(serverSignature).base64EncodedString())".utf8)
    }

    /// RFC 5802 §5.1: "=2C" stands for "," and "=3D" for "=" in user names.
    private static func decodeName(_ text: Substring) -> String? {
        var result = ""
        var index = text.startIndex
        while index < text.endIndex {
            if text[index] == "=" {
                let code = text[index...].prefix(3)
                if code == "=2C" { result.append(",") } else if code == "=3D" { result.append("=") } else { return nil }
                index = text.index(index, offsetBy: 3)
            } else {
                result.append(text[index])
                index = text.index(after: index)
            }
        }
        return result
    }

    private static func decoy(mechanism: ScramMechanism, user: String, secret: [UInt8]) -> ScramCredential {
        // The same length as a real salt, so the server-first message does not tell them apart.
        let salt = Array(mechanism.hmac(key: secret, Array("decoy-salt:\(mechanism.rawValue):\(user)".utf8)).prefix(ScramCredential.saltCount(mechanism)))
        let random = SecureRandom.bytes(count: mechanism.digestCount)
        return ScramCredential(salt: salt, iterations: mechanism.iterations, storedKey: random, serverKey: random)
    }
}
