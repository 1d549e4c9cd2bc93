import Ledger
import StratosCore

/// The authenticated key exchange every peer connection starts with.
///
/// 1. Each side sends a hello in the clear: protocol name, chain ID, its node key (Ed25519), a
///    fresh X25519 key and the port it listens on for peers.
/// 2. Both derive two session keys from the X25519 values (libsodium `crypto_kx`, the dialer as
///    client), and the transcript hash `SHA-256(dialer hello ‖ acceptor hello)`.
/// 3. Each side sends, sealed with its transmit key, its node key's signature over the transcript
///    and its role. Checking the peer's signature proves it holds the node key named in its hello
///    and binds that key to this exchange (a relay cannot splice two handshakes together).
///
/// After that every frame is sealed (XChaCha20-Poly1305) under a per-direction counter nonce,
/// so a reordered, replayed or altered frame fails to open and closes the connection.
struct PeerHello: Sendable {
    static let protocolName = "stratosdb/peer/v1"
    let chainID: String
    let nodeKey: PublicKey
    let exchangeKey: [UInt8]
    let listenPort: UInt32

    var encoded: [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write(Self.protocolName)
        encoder.write(chainID)
        encoder.write(bytes: nodeKey.bytes)
        encoder.write(bytes: exchangeKey)
        encoder.write(listenPort)
        return encoder.bytes
    }

    init(chainID: String, nodeKey: PublicKey, exchangeKey: [UInt8], listenPort: UInt32) {
        self.chainID = chainID
        self.nodeKey = nodeKey
        self.exchangeKey = exchangeKey
        self.listenPort = listenPort
    }

    init(decoding bytes: [UInt8]) throws(StratosError) {
        var decoder = CanonicalDecoder(bytes)
        guard try decoder.readString(maxCount: 64) == Self.protocolName else { throw StratosError(.invalidEncoding, "not a StratosDB peer") }
        chainID = try decoder.readString(maxCount: LedgerLimits.chainIDBytesMax)
        nodeKey = try PublicKey(bytes: try decoder.readBytes(maxCount: 32))
        exchangeKey = try decoder.readBytes(maxCount: 32)
        listenPort = try decoder.readUInt32()
        try decoder.finish()
    }

    static func authenticationBytes(transcript: Hash256, dialer: Bool) -> [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write("stratosdb/peer-auth/v1")
        encoder.write(bytes: transcript.bytes)
        encoder.write(dialer)
        return encoder.bytes
    }
}

/// Bounds of the peer network.
enum PeerLimits {
    /// Connected peers at once (inbound and outbound).
    static let peersMax = 64
    /// One frame: the largest ledger message (a block) plus sealing overhead.
    static let frameBytesMax = LedgerLimits.blockBytesMax + 64 * 1024
    /// A hello is small; a larger first frame is not a peer.
    static let helloBytesMax = 512
    /// A connection with no frame for this long is closed (status is gossiped every interval).
    static let idleSecondsMax: Int64 = 15
    /// The longest a handshake may take before the connection is dropped.
    static let handshakeSecondsMax: Int64 = 10
    /// Backoff between dial attempts to one address: from the minimum, doubling to the maximum.
    static let redialMillisecondsMin: Int64 = 200
    static let redialMillisecondsMax: Int64 = 5_000
}
