/// What a grant allows on a space's collections.
public struct GrantActions: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Read documents and catalog information (find, count, aggregate, listIndexes, …).
    public static let read = GrantActions(rawValue: 1 << 0)
    /// Insert, update and delete documents.
    public static let write = GrantActions(rawValue: 1 << 1)
    /// Change the catalog: create and drop collections and indexes, drop the space.
    public static let admin = GrantActions(rawValue: 1 << 2)
    /// Run the space's stored procedures.
    public static let execute = GrantActions(rawValue: 1 << 3)

    /// Every action, which the owner always holds.
    public static let all: GrantActions = [.read, .write, .admin, .execute]

    private static let names: [(String, GrantActions)] = [("read", .read), ("write", .write), ("admin", .admin), ("execute", .execute)]

    /// Parses a comma-separated list such as `read,write`.
    public init(parsing text: String) throws(SpaceOwnershipError) {
        var actions: GrantActions = []
        for part in text.split(separator: ",") {
            let name = part.trimmingPrefix(" ").description
            guard let action = Self.names.first(where: { $0.0 == name })?.1 else {
                throw SpaceOwnershipError(.invalidGrant, "unknown action '\(name)' (read, write, admin, execute)")
            }
            actions.insert(action)
        }
        guard !actions.isEmpty else { throw SpaceOwnershipError(.invalidGrant, "a grant needs at least one action") }
        self = actions
    }

    /// The action names, in a fixed order.
    public var names: [String] { Self.names.filter { contains($0.1) }.map(\.0) }
    public var description: String { names.joined(separator: ",") }
}
