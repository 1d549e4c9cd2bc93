/// One change to a database's contents, recorded in the order it happened so the node can turn
/// each committed transaction into one entry of the space's commit log (ARCHITECTURE §5).
///
/// Together, the changes of every commit rebuild the database: documents by their `_id` key
/// (`IndexKey.idKey`), collections with their options, and index specifications.
public enum StorageChange: Sendable, Hashable {
    /// A document inserted or replaced (its full BSON bytes).
    case put(collection: String, idKey: [UInt8], document: [UInt8])
    /// A document deleted.
    case delete(collection: String, idKey: [UInt8])
    /// A collection created, with its options document's BSON bytes.
    case createCollection(name: String, options: [UInt8])
    /// A collection dropped with its documents and indexes.
    case dropCollection(name: String)
    /// A collection renamed.
    case renameCollection(from: String, to: String)
    /// An index created, with its specification's BSON bytes.
    case createIndex(collection: String, specification: [UInt8])
    /// An index dropped.
    case dropIndex(collection: String, name: String)
    /// A collection's options replaced (`collMod`: its validator), with the new options' BSON bytes.
    case setCollectionOptions(name: String, options: [UInt8])
    /// A record the node keeps beside the documents in the same transaction (a space's grants
    /// and revocations), opaque to the query engine: `kind` and bytes are the node's. Replaying
    /// one changes no collection; the node applies it to its own tables.
    case spaceRecord(kind: UInt8, bytes: [UInt8])
}
