import StratosCore

extension CanonicalEncoder {
    /// Appends a 32-byte hash without a length prefix (its size is fixed).
    mutating func write(hash: Hash256) { for byte in hash.bytes { write(byte) } }
    /// Appends an optional hash as a presence byte and the hash.
    mutating func write(optionalHash: Hash256?) {
        write(optionalHash != nil)
        if let optionalHash { write(hash: optionalHash) }
    }
    /// Appends a 32-byte Ed25519 public key without a length prefix.
    mutating func write(key: PublicKey) { for byte in key.bytes { write(byte) } }
    /// Appends a 64-byte signature without a length prefix.
    mutating func write(signature: Signature) { for byte in signature.bytes { write(byte) } }
    /// Appends a signed 32-bit integer (rounds are -1 ... roundMax).
    mutating func write(round: Int32) { write(UInt32(bitPattern: round)) }
}

extension CanonicalDecoder {
    mutating func readFixed(_ count: Int) throws(StratosError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        for _ in 0..<count { out.append(try readUInt8()) }
        return out
    }
    mutating func readHash() throws(StratosError) -> Hash256 { try Hash256(bytes: try readFixed(32)) }
    mutating func readOptionalHash() throws(StratosError) -> Hash256? { try readBool() ? try readHash() : nil }
    mutating func readKey() throws(StratosError) -> PublicKey { try PublicKey(bytes: try readFixed(32)) }
    mutating func readSignature() throws(StratosError) -> Signature { try Signature(bytes: try readFixed(64)) }
    mutating func readRound() throws(StratosError) -> Int32 { Int32(bitPattern: try readUInt32()) }
    /// Reads a count and checks it against `max` before anything is allocated for it.
    mutating func readCount(max: Int) throws(StratosError) -> Int {
        let count = Int(try readUInt32())
        guard count <= max else { throw StratosError(.limitExceeded, "a list of \(count) items exceeds \(max)") }
        return count
    }
}

/// Decodes with the ledger's error type.
func ledgerDecode<T>(_ what: String, _ body: () throws(StratosError) -> T) throws(LedgerError) -> T {
    do { return try body() } catch { throw LedgerError(.invalidEncoding, "malformed \(what): \(error.message)", underlying: error) }
}

extension PublicKey {
    /// A short, printable form for logs and status lines (first 8 bytes in hex).
    public var shortHex: String { Hex.encode(bytes.prefix(8)) }
}
