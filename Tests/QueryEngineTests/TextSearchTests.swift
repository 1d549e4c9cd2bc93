import QueryEngine
import StratosTestSupport
import Testing

@Suite struct TextSearchTests {
    private func search(_ store: DatabaseStore, _ text: String, language: String? = nil) throws -> [BSONValue?] {
        var spec: BSONDocument = ["$search": .string(text)]
        if let language { spec["$language"] = .string(language) }
        let query = FindQuery(
            collection: store.collection("notes"), filter: try Filter(["$text": .document(spec)]), sort: nil, projection: nil, skip: 0,
            limit: nil)
        var all: [BSONValue?] = []
        while !query.isExhausted {
            let batch = try query.nextBatch(store, countMax: 100, bytesMax: 1 << 20)
            if batch.isEmpty { break }
            all += batch.map { $0["_id"] }
        }
        return all
    }

    private func makeStore(_ directory: TemporaryDirectory) throws -> DatabaseStore {
        let store = try DatabaseStore(name: "notes", path: directory.path + "/notes.sqlite")
        try store.begin()
        _ = try store.insert(["_id": .int32(1), "body": .string("Les chevaux mangent"), "language": .string("fr")], into: "notes")
        _ = try store.insert(["_id": .int32(2), "body": .string("Running horses")], into: "notes")
        try store.createIndex(["key": .document(["body": .string("text")]), "name": .string("body_text")], on: "notes")
        try store.commit()
        return store
    }

    @Test func termsAreStemmedInEachDocumentsLanguage() throws {
        let directory = try TemporaryDirectory()
        let store = try makeStore(directory)
        #expect(try search(store, "cheval", language: "french") == [.int32(1)])
        #expect(try search(store, "run HORSE") == [.int32(2)])
        #expect(try search(store, "the") == [])
    }

    /// A text index written by an earlier version (raw text in an FTS5 table stemmed by Porter)
    /// is rebuilt once when its file is opened for writing, and then answers as a new one does.
    @Test func anOutdatedTextIndexIsRebuiltOnOpen() throws {
        let directory = try TemporaryDirectory()
        do {
            let store = try makeStore(directory)
            let table = store.collection("notes")!.indexes[0].tableName
            store.finishJob()
            try store.sqlite.execute("""
                DROP TABLE \(table);
                CREATE VIRTUAL TABLE \(table) USING fts5(c0, tokenize='porter unicode61 remove_diacritics 2');
                INSERT INTO \(table)(rowid, c0) SELECT rid, 'Running horses' FROM \(store.collection("notes")!.tableName) WHERE rid = 2;
                """)
        }
        let reopened = try DatabaseStore(name: "notes", path: directory.path + "/notes.sqlite")
        #expect(try search(reopened, "horse") == [.int32(2)])
        #expect(try search(reopened, "cheval", language: "fr") == [.int32(1)])
    }

    /// History written before language overrides were checked replays: a document whose
    /// `language` names no language is indexed in the default language instead of failing the
    /// rebuild of its space; a new write of the same document is refused.
    @Test func replayedHistoryToleratesAnUnknownLanguage() throws {
        let directory = try TemporaryDirectory()
        let store = try makeStore(directory)
        let document: BSONDocument = ["_id": .int32(3), "body": .string("Python snakes"), "language": .string("python")]
        try store.begin()
        // A write runs in a savepoint (as every command's write does): refused, it leaves nothing.
        #expect(throws: QueryError.self) { try store.withSavepoint { () throws(QueryError) in try store.insert(document, into: "notes") } }
        try store.replay(.put(collection: "notes", idKey: IndexKey.idKey(.int32(3)), document: document.bsonBytes))
        try store.commit()
        #expect(try search(store, "snake") == [.int32(3)])
    }
}
