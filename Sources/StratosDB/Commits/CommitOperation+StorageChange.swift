import QueryEngine
import SpaceOwnership

// The query engine records `StorageChange`s; commits carry `CommitOperation`s. They are the same
// list of operations on two sides of a module boundary (QueryEngine does not depend on the
// ownership model, and the ownership model knows nothing of SQLite), so the node maps between
// them here, in both directions: recording a commit, and replaying one.

extension CommitOperation {
    /// The operation a recorded change becomes in a commit.
    init(_ change: StorageChange) {
        switch change {
        case .put(let collection, let idKey, let document): self = .put(collection: collection, idKey: idKey, document: document)
        case .delete(let collection, let idKey): self = .delete(collection: collection, idKey: idKey)
        case .createCollection(let name, let options): self = .createCollection(name: name, options: options)
        case .dropCollection(let name): self = .dropCollection(name: name)
        case .renameCollection(let from, let to): self = .renameCollection(from: from, to: to)
        case .createIndex(let collection, let specification): self = .createIndex(collection: collection, specification: specification)
        case .dropIndex(let collection, let name): self = .dropIndex(collection: collection, name: name)
        case .setCollectionOptions(let name, let options): self = .setCollectionOptions(name: name, options: options)
        case .spaceRecord(let kind, let bytes): self = kind == GrantLog.revocationKind ? .revocation(signed: bytes) : .grant(signed: bytes)
        }
    }
}

extension StorageChange {
    /// The change that replays a commit's operation; nil for one that concerns only the state
    /// map (`stateFormat`).
    init?(_ operation: CommitOperation) {
        switch operation {
        case .put(let collection, let idKey, let document): self = .put(collection: collection, idKey: idKey, document: document)
        case .delete(let collection, let idKey): self = .delete(collection: collection, idKey: idKey)
        case .createCollection(let name, let options): self = .createCollection(name: name, options: options)
        case .dropCollection(let name): self = .dropCollection(name: name)
        case .renameCollection(let from, let to): self = .renameCollection(from: from, to: to)
        case .createIndex(let collection, let specification): self = .createIndex(collection: collection, specification: specification)
        case .dropIndex(let collection, let name): self = .dropIndex(collection: collection, name: name)
        case .setCollectionOptions(let name, let options): self = .setCollectionOptions(name: name, options: options)
        case .grant(let signed): self = .spaceRecord(kind: GrantLog.grantKind, bytes: signed)
        case .revocation(let signed): self = .spaceRecord(kind: GrantLog.revocationKind, bytes: signed)
        case .stateFormat: return nil
        }
    }
}
