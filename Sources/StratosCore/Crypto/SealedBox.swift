import CSodium

/// Anonymous public-key encryption to an Ed25519 identity (libsodium sealed boxes over the
/// identity's X25519 form): used to wrap a space key for its owner, its readers and its node.
///
/// The recipient's Ed25519 public key converts to X25519 (`crypto_sign_ed25519_pk_to_curve25519`),
/// so an identity needs no second key pair; only its holder can open the box.
public enum SealedBox {
    /// Bytes a sealed box adds to its message.
    public static var overheadCount: Int { Int(crypto_box_sealbytes()) }

    /// Seals `message` to `recipient`.
    public static func seal(_ message: [UInt8], to recipient: PublicKey) throws(StratosError) -> [UInt8] {
        Sodium.ensureReady()
        var curve = [UInt8](repeating: 0, count: Int(crypto_box_PUBLICKEYBYTES))
        guard crypto_sign_ed25519_pk_to_curve25519(&curve, recipient.bytes) == 0 else {
            throw StratosError(.cryptoFailure, "the recipient's key has no X25519 form")
        }
        var sealed = [UInt8](repeating: 0, count: message.count + overheadCount)
        guard crypto_box_seal(&sealed, message, UInt64(message.count), curve) == 0 else {
            throw StratosError(.cryptoFailure, "crypto_box_seal failed")
        }
        return sealed
    }

    /// Opens a box sealed to `key`'s identity.
    public static func open(_ sealed: [UInt8], with key: SigningKey) throws(StratosError) -> [UInt8] {
        Sodium.ensureReady()
        guard sealed.count >= overheadCount else { throw StratosError(.invalidEncoding, "sealed box is too short") }
        var curvePublic = [UInt8](repeating: 0, count: Int(crypto_box_PUBLICKEYBYTES))
        var curveSecret = [UInt8](repeating: 0, count: Int(crypto_box_SECRETKEYBYTES))
        defer { sodium_memzero(&curveSecret, curveSecret.count) }
        let status = key.withSecretKey { secret in
            crypto_sign_ed25519_pk_to_curve25519(&curvePublic, key.publicKey.bytes) | crypto_sign_ed25519_sk_to_curve25519(&curveSecret, secret)
        }
        guard status == 0 else { throw StratosError(.cryptoFailure, "the key has no X25519 form") }
        var message = [UInt8](repeating: 0, count: sealed.count - overheadCount)
        guard crypto_box_seal_open(&message, sealed, UInt64(sealed.count), curvePublic, curveSecret) == 0 else {
            throw StratosError(.invalidSignature, "the sealed box does not open with this key")
        }
        return message
    }
}
