import QueryEngine
import StratosCore
import StoredProcedures

/// A space's procedures, kept in its `system.procedures` collection: one document per version,
/// `{_id: "<name>@<version>", name, version, code: BinData, codeHash, size, description,
/// createdAt, author}`. Being documents of the space, they are in its signed commits (the
/// commit's state root covers each version's bytes, so its code hash), and they travel in its
/// archives like any other collection.
enum ProcedureStore {
    static let collection = "system.procedures"

    /// One stored version.
    struct Version {
        let name: String
        let version: Int
        let code: [UInt8]
        let codeHash: [UInt8]
        let document: BSONDocument
    }

    /// The newest version of `name` (or exactly `version`), nil when there is none.
    static func load(_ store: DatabaseStore, name: String, version: Int? = nil) throws(QueryError) -> Version? {
        var filter: BSONDocument = ["name": .string(name)]
        if let version { filter["version"] = .int64(Int64(version)) }
        let matches = try store.matches(
            in: collection, filter: try Filter(filter), sort: try SortSpecification(["version": .int32(-1)]), limit: 1)
        guard let document = matches.first?.document else { return nil }
        guard case .binary(let code)? = document["code"], case .string(let hash)? = document["codeHash"], let codeHash = try? Hex.decode(hash),
            let number = document["version"]?.int64Value
        else {
            throw QueryError(.invalidProcedure, "the stored procedure '\(name)' is malformed")
        }
        return Version(name: name, version: Int(number), code: code.data, codeHash: codeHash, document: document)
    }

    /// Stores `module` as the next version of `name`; returns the version number.
    static func create(
        _ store: DatabaseStore, name: String, code: [UInt8], module: ProcedureModule, description: String?, author: String, nowMilliseconds: Int64
    ) throws(QueryError) -> Int {
        let version = (try load(store, name: name)?.version ?? 0) + 1
        var document: BSONDocument = [
            "_id": .string("\(name)@\(version)"), "name": .string(name), "version": .int64(Int64(version)),
            "code": .binary(BSONBinary(subtype: 0, data: code)), "codeHash": .string(Hex.encode(module.codeHash)),
            "size": .int64(Int64(module.byteCount)),
        ]
        if let description { document["description"] = .string(description) }
        document["createdAt"] = .datetime(nowMilliseconds)
        document["author"] = .string(author)
        try store.insert(document, into: collection)
        return version
    }

    /// Removes every version of `name`; returns how many there were.
    static func drop(_ store: DatabaseStore, name: String) throws(QueryError) -> Int {
        let matches = try store.matches(in: collection, filter: try Filter(["name": .string(name)]))
        for match in matches { try store.delete(rid: match.rid, document: match.document, from: collection) }
        return matches.count
    }

    /// Every procedure's newest version (without its code) and how many versions it has.
    static func list(_ store: DatabaseStore) throws(QueryError) -> [(latest: BSONDocument, versions: Int)] {
        var byName: [String: (latest: BSONDocument, versions: Int)] = [:]
        for match in try store.matches(in: collection, filter: try Filter([:])) {
            guard case .string(let name)? = match.document["name"] else { continue }
            var summary = match.document
            summary.removeValue(forKey: "code")
            summary.removeValue(forKey: "_id")
            let version = summary["version"]?.int64Value ?? 0
            if let existing = byName[name] {
                let newer = version > (existing.latest["version"]?.int64Value ?? 0)
                byName[name] = (newer ? summary : existing.latest, existing.versions + 1)
            } else {
                byName[name] = (summary, 1)
            }
        }
        return byName.keys.sorted().map { byName[$0]! }
    }
}
