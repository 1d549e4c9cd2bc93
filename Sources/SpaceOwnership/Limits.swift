/// Bounds of the ownership model, each with its reason.
public enum SpaceOwnershipLimits {
    /// Longest `did:key` accepted (an Ed25519 did:key is 56 characters): identities arrive from
    /// clients as user names and grant fields, so their length is checked before decoding.
    public static let didCountMax = 128

    /// Longest space name (MongoDB's database-name limit is 63 bytes).
    public static let spaceNameBytesMax = 63

    /// Collections one grant may name: a grant is checked on every command of its grantee.
    public static let grantCollectionsMax = 256

    /// Longest session token text accepted on the wire (a token is about 200 characters).
    public static let tokenCountMax = 1024

    /// Longest session token lifetime a node accepts unless configured otherwise (24 h): a leaked
    /// token stays useful only this long.
    public static let tokenLifetimeMillisecondsMax: Int64 = 24 * 3_600_000

    /// Clock skew tolerated between a token's issuer and the node.
    public static let clockSkewMilliseconds: Int64 = 120_000
}
