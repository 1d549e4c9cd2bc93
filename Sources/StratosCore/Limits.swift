/// Bounds the foundation module enforces, with the reason for each.
public enum StratosCoreLimits {
    /// Default largest byte string `CanonicalDecoder.readBytes` accepts (16 MiB): canonical values
    /// are hashed or signed records (commits, grants, proofs), never bulk data, and the declared
    /// length is untrusted, so it is checked before anything is allocated.
    public static let canonicalBytesCountMax = 1 << 24

    /// Default longest string `CanonicalDecoder.readString` accepts (1 MiB), for the same reason.
    public static let canonicalStringCountMax = 1 << 20
}
