import CSodium

/// An ephemeral X25519 key pair for deriving session keys (libsodium `crypto_kx`): each side
/// gets one key to receive and one to transmit, the client's transmit key being the server's
/// receive key.
public struct KeyExchange: Sendable {
    public let publicKey: [UInt8]
    private let secretKey: [UInt8]

    /// A fresh key pair from the secure random source.
    public init() {
        Sodium.ensureReady()
        var publicBytes = [UInt8](repeating: 0, count: Int(crypto_kx_PUBLICKEYBYTES))
        var secretBytes = [UInt8](repeating: 0, count: Int(crypto_kx_SECRETKEYBYTES))
        crypto_kx_keypair(&publicBytes, &secretBytes)
        publicKey = publicBytes
        secretKey = secretBytes
    }

    /// The session keys with `peer`; `isClient` for the side that dialed. Throws for a peer key
    /// that is not a valid X25519 point.
    public func sessionKeys(peer: [UInt8], isClient: Bool) throws(StratosError) -> (receive: [UInt8], transmit: [UInt8]) {
        guard peer.count == Int(crypto_kx_PUBLICKEYBYTES) else { throw StratosError(.invalidArgument, "an X25519 public key has 32 bytes") }
        var receive = [UInt8](repeating: 0, count: Int(crypto_kx_SESSIONKEYBYTES))
        var transmit = [UInt8](repeating: 0, count: Int(crypto_kx_SESSIONKEYBYTES))
        let status = isClient
            ? crypto_kx_client_session_keys(&receive, &transmit, publicKey, secretKey, peer)
            : crypto_kx_server_session_keys(&receive, &transmit, publicKey, secretKey, peer)
        guard status == 0 else { throw StratosError(.cryptoFailure, "the peer's key exchange value is not acceptable") }
        return (receive, transmit)
    }
}

extension AEAD {
    /// Seals with a caller-chosen nonce (a message counter on a channel whose key is used for
    /// one direction only); the output is `ciphertext ‖ tag`. A nonce must never repeat per key.
    public static func seal(_ message: [UInt8], key: [UInt8], counter: UInt64) -> [UInt8] {
        precondition(key.count == 32, "AEAD keys are 32 bytes")
        Sodium.ensureReady()
        let nonce = counterNonce(counter)
        var out = [UInt8](repeating: 0, count: message.count + 16)
        var length: UInt64 = 0
        crypto_aead_xchacha20poly1305_ietf_encrypt(&out, &length, message, UInt64(message.count), nil, 0, nil, nonce, key)
        return out
    }

    /// Opens a message sealed with `seal(_:key:counter:)`.
    public static func open(_ sealed: [UInt8], key: [UInt8], counter: UInt64) throws(StratosError) -> [UInt8] {
        precondition(key.count == 32, "AEAD keys are 32 bytes")
        Sodium.ensureReady()
        guard sealed.count >= 16 else { throw StratosError(.invalidEncoding, "sealed message is too short") }
        var out = [UInt8](repeating: 0, count: sealed.count - 16)
        var length: UInt64 = 0
        guard crypto_aead_xchacha20poly1305_ietf_decrypt(&out, &length, nil, sealed, UInt64(sealed.count), nil, 0, counterNonce(counter), key) == 0
        else { throw StratosError(.invalidSignature, "sealed message does not authenticate") }
        return out
    }

    private static func counterNonce(_ counter: UInt64) -> [UInt8] {
        var nonce = [UInt8](repeating: 0, count: 16)
        withUnsafeBytes(of: counter.bigEndian) { nonce.append(contentsOf: $0) }
        return nonce
    }
}
