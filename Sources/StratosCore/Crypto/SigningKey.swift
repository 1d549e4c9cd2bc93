import CSodium

/// An Ed25519 public key (RFC 8032), 32 bytes.
public struct PublicKey: Hashable, Sendable {
    /// The raw key bytes.
    public let bytes: [UInt8]

    /// Wraps 32 raw bytes.
    public init(bytes: [UInt8]) throws(StratosError) {
        guard bytes.count == Int(crypto_sign_PUBLICKEYBYTES) else {
            throw StratosError(.invalidArgument, "an Ed25519 public key has 32 bytes, got \(bytes.count)")
        }
        self.bytes = bytes
    }

    /// Checks a detached signature over `message`.
    public func isValidSignature<Bytes: Collection<UInt8>>(_ signature: Signature, for message: Bytes) -> Bool {
        Sodium.ensureReady()
        let input = Array(message)
        return crypto_sign_verify_detached(signature.bytes, input, UInt64(input.count), bytes) == 0
    }

    /// Throws `invalidSignature` unless the signature verifies.
    public func verify<Bytes: Collection<UInt8>>(_ signature: Signature, for message: Bytes) throws(StratosError) {
        guard isValidSignature(signature, for: message) else {
            throw StratosError(.invalidSignature, "Ed25519 signature does not verify")
        }
    }
}

/// An Ed25519 detached signature, 64 bytes.
public struct Signature: Hashable, Sendable {
    /// The raw signature bytes.
    public let bytes: [UInt8]

    /// Wraps 64 raw bytes.
    public init(bytes: [UInt8]) throws(StratosError) {
        guard bytes.count == Int(crypto_sign_BYTES) else {
            throw StratosError(.invalidArgument, "an Ed25519 signature has 64 bytes, got \(bytes.count)")
        }
        self.bytes = bytes
    }
}

/// An Ed25519 signing key. The secret bytes never appear in `description` or errors.
public struct SigningKey: Sendable, CustomStringConvertible {
    private let secret: [UInt8]
    /// The matching public key.
    public let publicKey: PublicKey

    /// Derives a key pair from a 32-byte seed (deterministic; use a secure random seed in production).
    public init(seed: [UInt8]) throws(StratosError) {
        Sodium.ensureReady()
        guard seed.count == Int(crypto_sign_SEEDBYTES) else {
            throw StratosError(.invalidArgument, "an Ed25519 seed has 32 bytes, got \(seed.count)")
        }
        var publicBytes = [UInt8](repeating: 0, count: Int(crypto_sign_PUBLICKEYBYTES))
        var secretBytes = [UInt8](repeating: 0, count: Int(crypto_sign_SECRETKEYBYTES))
        let status = crypto_sign_seed_keypair(&publicBytes, &secretBytes, seed)
        guard status == 0 else { throw StratosError(.cryptoFailure, "crypto_sign_seed_keypair failed") }
        self.secret = secretBytes
        self.publicKey = try PublicKey(bytes: publicBytes)
    }

    /// Generates a key pair from the operating system's secure random source.
    public static func generate() -> SigningKey {
        let seed = SecureRandom.bytes(count: Int(crypto_sign_SEEDBYTES))
        do {
            return try SigningKey(seed: seed)
        } catch {
            preconditionFailure("a 32-byte seed always yields a key pair")
        }
    }

    /// The 32-byte seed the key pair derives from, for key files only (libsodium keeps it as the
    /// first half of its secret key). Never log or return it.
    package var seed: [UInt8] { Array(secret.prefix(Int(crypto_sign_SEEDBYTES))) }

    /// Runs `body` with the 64-byte libsodium secret key (for key conversions inside this module).
    func withSecretKey<T>(_ body: ([UInt8]) -> T) -> T { body(secret) }

    /// Signs `message`, returning a detached signature.
    public func sign<Bytes: Collection<UInt8>>(_ message: Bytes) -> Signature {
        let input = Array(message)
        var out = [UInt8](repeating: 0, count: Int(crypto_sign_BYTES))
        let status = crypto_sign_detached(&out, nil, input, UInt64(input.count), secret)
        precondition(status == 0, "crypto_sign_detached cannot fail with a valid secret key")
        return try! Signature(bytes: out)  // The count is crypto_sign_BYTES by construction.
    }

    public var description: String { "SigningKey(public: \(Hex.encode(publicKey.bytes)))" }
}

/// The operating system's cryptographically secure random source (libsodium `randombytes_buf`).
public enum SecureRandom {
    /// Returns `count` random bytes.
    public static func bytes(count: Int) -> [UInt8] {
        Sodium.ensureReady()
        var out = [UInt8](repeating: 0, count: count)
        if count > 0 { randombytes_buf(&out, count) }
        return out
    }
}
