/// Delegation: a grantee that holds `admin` on a space may grant others what it holds itself.
///
/// A grant signed by someone other than the space's owner counts only while a chain of grants
/// backs it: its issuer holds a live grant that includes `admin` and covers everything the
/// grant gives (actions, collections, and an expiry no later than its own), and that grant is
/// itself backed, up to the owner, within `depthMax` links. The chain is checked when a grant is
/// used, so revoking or outliving any link ends every grant below it.
public enum GrantDelegation {
    /// The longest chain from the owner to a grant (owner → admin → … → grant).
    public static let depthMax = 4

    /// Whether `grant` is backed at `nowMilliseconds`: signed by a controller of the space, or
    /// by a grantee whose own grant covers it and is backed in turn. `grantsTo` gives the
    /// unrevoked grants held by an identity on the space.
    public static func isBacked(
        _ grant: Grant, controllers: Set<DID>, nowMilliseconds: Int64, grantsTo: (DID) -> [Grant], depth: Int = 0
    ) -> Bool {
        if controllers.contains(grant.issuer) { return true }
        guard depth < depthMax, grant.issuer != grant.grantee else { return false }
        return grantsTo(grant.issuer).contains { parent in
            parent.actions.contains(.admin) && !parent.isExpired(nowMilliseconds: nowMilliseconds) && covers(parent, grant)
                && isBacked(parent, controllers: controllers, nowMilliseconds: nowMilliseconds, grantsTo: grantsTo, depth: depth + 1)
        }
    }

    /// Whether `parent` covers everything `child` gives.
    public static func covers(_ parent: Grant, _ child: Grant) -> Bool {
        guard parent.space == child.space, parent.actions.isSuperset(of: child.actions) else { return false }
        if !parent.collections.isEmpty {
            guard !child.collections.isEmpty, Set(child.collections).isSubset(of: parent.collections) else { return false }
        }
        if let parentExpiry = parent.expiresAtMilliseconds {
            guard let childExpiry = child.expiresAtMilliseconds, childExpiry <= parentExpiry else { return false }
        }
        return true
    }
}
