import CSodium

/// XChaCha20-Poly1305 (libsodium's IETF construction) with a random 24-byte nonce per message:
/// sealed bytes are `nonce ‖ ciphertext ‖ tag`. The random nonce is safe at any message count
/// thanks to the extended nonce; the additional data binds a message to its place.
public enum AEAD {
    /// Bytes a sealed message adds: nonce and tag.
    public static let overheadCount = 24 + 16

    /// Seals `message` with a 32-byte key.
    public static func seal(_ message: [UInt8], key: [UInt8], additionalData: [UInt8]) -> [UInt8] {
        precondition(key.count == 32, "AEAD keys are 32 bytes")
        Sodium.ensureReady()
        let nonce = SecureRandom.bytes(count: 24)
        var out = [UInt8](repeating: 0, count: message.count + 16)
        var length: UInt64 = 0
        crypto_aead_xchacha20poly1305_ietf_encrypt(
            &out, &length, message, UInt64(message.count), additionalData, UInt64(additionalData.count), nil, nonce, key)
        return nonce + out
    }

    /// Opens a sealed message; throws when it was altered, or the key or additional data differ.
    public static func open(_ sealed: [UInt8], key: [UInt8], additionalData: [UInt8]) throws(StratosError) -> [UInt8] {
        precondition(key.count == 32, "AEAD keys are 32 bytes")
        Sodium.ensureReady()
        guard sealed.count >= overheadCount else { throw StratosError(.invalidEncoding, "sealed message is too short") }
        let nonce = Array(sealed.prefix(24))
        let body = Array(sealed.dropFirst(24))
        var out = [UInt8](repeating: 0, count: body.count - 16)
        var length: UInt64 = 0
        guard crypto_aead_xchacha20poly1305_ietf_decrypt(
            &out, &length, nil, body, UInt64(body.count), additionalData, UInt64(additionalData.count), nonce, key) == 0
        else { throw StratosError(.invalidSignature, "sealed message does not authenticate") }
        return out
    }
}

/// An incremental BLAKE2b-256, for hashing streams (archives) without holding them.
///
/// libsodium's state is a 64-byte-aligned struct that Swift imports as opaque, so it lives in an
/// aligned allocation this class owns.
public final class Blake2bHasher {
    private let state: UnsafeMutableRawPointer

    /// Starts a hash.
    public init() {
        Sodium.ensureReady()
        state = UnsafeMutableRawPointer.allocate(byteCount: crypto_generichash_statebytes(), alignment: 64)
        crypto_generichash_init(OpaquePointer(state), nil, 0, 32)
    }

    deinit { state.deallocate() }

    /// Feeds bytes.
    public func update(_ bytes: [UInt8]) {
        crypto_generichash_update(OpaquePointer(state), bytes, UInt64(bytes.count))
    }

    /// The digest; the hasher must not be used afterwards.
    public func finalize() -> Hash256 {
        var out = [UInt8](repeating: 0, count: 32)
        crypto_generichash_final(OpaquePointer(state), &out, 32)
        return Hash256(unchecked: out)
    }
}
