import StratosCore

/// The identifier of a space: `"s" + base32lower(BLAKE2b-128(ownerDID ‖ 0x00 ‖ name))`, 27
/// characters, valid as a MongoDB database name and as a file name.
///
/// The id depends only on the owner and the name, so any node derives the same id without a
/// lookup, and two owners' spaces of the same name never collide. The zero byte separates the
/// two fields (a DID never contains one), so no other (owner, name) pair hashes the same bytes.
public struct SpaceID: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// The text form, `s` plus 26 base32 characters.
    public let string: String

    /// The id of `owner`'s space called `name`.
    public init(owner: DID, name: String) {
        let digest = Hash256.blake2b(Array(owner.string.utf8) + [0] + Array(name.utf8), outputCount: 16)
        string = "s" + Base32.encode(digest)
    }

    /// Parses a space id; nil when `text` does not have the shape of one.
    public init?(_ text: String) {
        guard Self.isSpaceID(text) else { return nil }
        string = text
    }

    /// Whether `text` has the shape of a space id (names of that shape are read as ids).
    public static func isSpaceID(_ text: String) -> Bool {
        text.utf8.count == 27 && text.hasPrefix("s") && Base32.isEncoded(text.dropFirst())
    }

    /// Checks a space name as MongoDB checks a database name.
    public static func validateName(_ name: String) throws(SpaceOwnershipError) {
        guard !name.isEmpty, name.utf8.count <= SpaceOwnershipLimits.spaceNameBytesMax else {
            throw SpaceOwnershipError(.invalidSpaceName, "a space name has 1 to 63 bytes")
        }
        for character in name.unicodeScalars where "/\\. \"$*<>:|?\0".unicodeScalars.contains(character) {
            throw SpaceOwnershipError(.invalidSpaceName, "a space name cannot contain /\\. \"$*<>:|? or NUL")
        }
    }

    public var description: String { string }
    public static func < (lhs: SpaceID, rhs: SpaceID) -> Bool { lhs.string < rhs.string }
}
