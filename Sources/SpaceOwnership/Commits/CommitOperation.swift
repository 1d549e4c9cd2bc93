import StratosCore

/// One operation of a commit's payload: what the space's view must do to reach the commit's
/// state. Documents travel as their BSON bytes and are identified by their `_id` key bytes (the
/// order-preserving encoding the query engine uses), so the payload replays without a database.
public enum CommitOperation: Hashable, Sendable {
    case put(collection: String, idKey: [UInt8], document: [UInt8])
    case delete(collection: String, idKey: [UInt8])
    case createCollection(name: String, options: [UInt8])
    case dropCollection(name: String)
    case renameCollection(from: String, to: String)
    case createIndex(collection: String, specification: [UInt8])
    case dropIndex(collection: String, name: String)
    case setCollectionOptions(name: String, options: [UInt8])
    /// An owner-signed grant (`SignedGrant.encoded`): who may do what in the space is part of
    /// the space's history, so it replicates and exports with the documents (docs/spaces.md).
    case grant(signed: [UInt8])
    /// A signed revocation of a grant (`SignedRevocation.encoded`).
    case revocation(signed: [UInt8])
    /// Fixes how the space's state map keys collections and documents (`StateKeyFormat`): valid
    /// only as the first operation of a space's first commit, where the node puts it.
    case stateFormat(StateKeyFormat)

    /// The canonical payload bytes of a list of operations.
    public static func encode(_ operations: [CommitOperation]) -> [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write(UInt32(operations.count))
        for operation in operations {
            switch operation {
            case .put(let collection, let idKey, let document):
                encoder.write(UInt8(1))
                encoder.write(collection)
                encoder.write(bytes: idKey)
                encoder.write(bytes: document)
            case .delete(let collection, let idKey):
                encoder.write(UInt8(2))
                encoder.write(collection)
                encoder.write(bytes: idKey)
            case .createCollection(let name, let options):
                encoder.write(UInt8(3))
                encoder.write(name)
                encoder.write(bytes: options)
            case .dropCollection(let name):
                encoder.write(UInt8(4))
                encoder.write(name)
            case .renameCollection(let from, let to):
                encoder.write(UInt8(5))
                encoder.write(from)
                encoder.write(to)
            case .createIndex(let collection, let specification):
                encoder.write(UInt8(6))
                encoder.write(collection)
                encoder.write(bytes: specification)
            case .dropIndex(let collection, let name):
                encoder.write(UInt8(7))
                encoder.write(collection)
                encoder.write(name)
            case .setCollectionOptions(let name, let options):
                encoder.write(UInt8(8))
                encoder.write(name)
                encoder.write(bytes: options)
            case .grant(let signed):
                encoder.write(UInt8(9))
                encoder.write(bytes: signed)
            case .revocation(let signed):
                encoder.write(UInt8(10))
                encoder.write(bytes: signed)
            case .stateFormat(let format):
                encoder.write(Self.stateFormatTag)
                encoder.write(format.rawValue)
            }
        }
        return encoder.bytes
    }

    /// Bytes at the start of a payload that hold a leading `stateFormat`: the operation count,
    /// the tag and the format.
    public static let leadingFormatBytes = 6

    /// The format a payload's leading `stateFormat` names, read from the payload's first
    /// `leadingFormatBytes` (so a caller need not load a whole first commit); nil when the
    /// payload does not start with one.
    public static func leadingStateFormat(_ prefix: [UInt8]) throws(StratosError) -> StateKeyFormat? {
        guard prefix.count >= leadingFormatBytes, prefix[4] == stateFormatTag else { return nil }
        guard let format = StateKeyFormat(rawValue: prefix[5]) else { throw StratosError(.invalidEncoding, "unknown state map format") }
        return format
    }

    static let stateFormatTag: UInt8 = 11

    /// Decodes a payload, rejecting anything malformed or with trailing bytes.
    public static func decode(_ bytes: [UInt8]) throws(StratosError) -> [CommitOperation] {
        var decoder = CanonicalDecoder(bytes)
        let count = Int(try decoder.readUInt32())
        // Each operation but a leading `stateFormat` (2 bytes) takes at least 9 bytes, so the
        // declared count is bounded by the input.
        guard count <= bytes.count / 9 + 1 else { throw StratosError(.invalidEncoding, "commit payload declares too many operations") }
        var operations: [CommitOperation] = []
        operations.reserveCapacity(count)
        for _ in 0..<count {
            switch try decoder.readUInt8() {
            case 1: operations.append(.put(collection: try decoder.readString(maxCount: 255), idKey: try decoder.readBytes(maxCount: 1 << 24), document: try decoder.readBytes(maxCount: 1 << 25)))
            case 2: operations.append(.delete(collection: try decoder.readString(maxCount: 255), idKey: try decoder.readBytes(maxCount: 1 << 24)))
            case 3: operations.append(.createCollection(name: try decoder.readString(maxCount: 255), options: try decoder.readBytes(maxCount: 1 << 24)))
            case 4: operations.append(.dropCollection(name: try decoder.readString(maxCount: 255)))
            case 5: operations.append(.renameCollection(from: try decoder.readString(maxCount: 255), to: try decoder.readString(maxCount: 255)))
            case 6: operations.append(.createIndex(collection: try decoder.readString(maxCount: 255), specification: try decoder.readBytes(maxCount: 1 << 24)))
            case 7: operations.append(.dropIndex(collection: try decoder.readString(maxCount: 255), name: try decoder.readString(maxCount: 1024)))
            case 8: operations.append(.setCollectionOptions(name: try decoder.readString(maxCount: 255), options: try decoder.readBytes(maxCount: 1 << 24)))
            case 9: operations.append(.grant(signed: try decoder.readBytes(maxCount: 1 << 17)))
            case 10: operations.append(.revocation(signed: try decoder.readBytes(maxCount: 1 << 16)))
            case Self.stateFormatTag:
                // Only a payload's first operation may set the format (`SpaceState.apply`).
                guard operations.isEmpty else { throw StratosError(.invalidEncoding, "a state map format after other operations") }
                guard let format = StateKeyFormat(rawValue: try decoder.readUInt8()) else {
                    throw StratosError(.invalidEncoding, "unknown state map format")
                }
                operations.append(.stateFormat(format))
            default: throw StratosError(.invalidEncoding, "unknown commit operation")
            }
        }
        try decoder.finish()
        return operations
    }
}
