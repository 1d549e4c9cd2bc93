import Foundation
import QueryEngine
import SpaceOwnership
import StratosCore

/// A database name resolved to the space it means for one principal.
struct ResolvedSpace: Sendable {
    /// The space id, which is also its storage name.
    let id: SpaceID
    /// The owner, when known (always known for the principal's own names).
    let owner: DID?
    /// The owner's name for the space, when the principal is the owner.
    let name: String?
}

/// Resolves database names to spaces and decides whether a principal may act on them.
///
/// A database name is read two ways: a name with the shape of a space id (`s` + 26 base32
/// characters) is that space; any other name is the principal's own space of that name, so
/// `client.profile` reaches the caller's `profile` space and another principal's `profile` is a
/// different space. The owner holds every right on its spaces; anyone else needs a live,
/// unexpired grant signed by the owner.
struct Authorizer: Sendable {
    let catalog: NodeCatalog

    func resolve(database: String, for principal: Principal) throws(QueryError) -> ResolvedSpace {
        if let id = SpaceID(database) {
            let record = catalog.space(id)
            return ResolvedSpace(id: id, owner: record?.controller, name: record?.controller == principal.did ? record?.name : nil)
        }
        try NamespaceRules.validateDatabase(database)
        // A space rotated to this principal keeps its id and name; the principal's own name is
        // no longer its own once it rotated that space to another key.
        let (id, record) = catalog.lookup(name: database, for: principal.did)
        guard let record, record.controller != principal.did else {
            return ResolvedSpace(id: id, owner: principal.did, name: database)
        }
        return ResolvedSpace(id: id, owner: record.controller, name: nil)
    }

    /// Throws Unauthorized (13) unless `principal` may perform `action` on `collection` (nil: on
    /// the space as a whole) at `nowMilliseconds`.
    func authorize(_ action: GrantActions, collection: String?, space: ResolvedSpace, principal: Principal, nowMilliseconds: Int64) throws(QueryError) {
        try authorize(action, collection: collection, space: space, did: principal.did, nowMilliseconds: nowMilliseconds)
    }

    /// The same decision for an identity that is not logged in (a scheduled job's submitter).
    func authorize(_ action: GrantActions, collection: String?, space: ResolvedSpace, did: DID, nowMilliseconds: Int64) throws(QueryError) {
        if space.owner == did { return }
        let grants = catalog.liveGrants(space: space.id, grantee: did)
        let allowed: Bool
        if let collection {
            allowed = grants.contains { $0.permits(action, collection: collection, nowMilliseconds: nowMilliseconds) }
        } else if action == .read || action == .execute {
            // Space-wide reads (listCollections, dbStats) need read on some collection; what they
            // return is filtered to the collections granted. Running procedures needs execute in
            // any grant: what a procedure then reads or writes is checked per collection.
            allowed = grants.contains { $0.actions.contains(action) && !$0.isExpired(nowMilliseconds: nowMilliseconds) }
        } else {
            // Any other space-wide action needs a grant that covers every collection.
            allowed = grants.contains { $0.permits(action, collection: nil, nowMilliseconds: nowMilliseconds) }
        }
        guard allowed else { throw Self.denied(action, space: space.id, collection: collection) }
    }

    /// The collections of `space` the principal may read: nil means all of them.
    func readableCollections(space: ResolvedSpace, principal: Principal, nowMilliseconds: Int64) -> Set<String>? {
        if space.owner == principal.did { return nil }
        var names = Set<String>()
        for grant in catalog.liveGrants(space: space.id, grantee: principal.did)
        where grant.actions.contains(.read) && !grant.isExpired(nowMilliseconds: nowMilliseconds) {
            if grant.collections.isEmpty { return nil }
            names.formUnion(grant.collections)
        }
        return names
    }

    static func denied(_ action: GrantActions, space: SpaceID, collection: String?) -> QueryError {
        let target = collection.map { "collection '\($0)' of space \(space)" } ?? "space \(space)"
        return QueryError(.unauthorized, "not authorized to \(action) \(target)")
    }
}
