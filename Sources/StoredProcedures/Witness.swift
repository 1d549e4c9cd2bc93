import QueryEngine
import StratosCore

/// What a procedure call exchanged with its data, in order: every find, every document a cursor
/// handed it, every write and its outcome. A second node re-runs the same module on the same
/// arguments with the witness standing in for the data (`ReplayDataAccess`); the call is
/// deterministic, so an honest node makes exactly the same requests and reaches the same result
/// and fuel. This checks the computation, not the data: the second node trusts the documents
/// the first one says it read (it has no copy of the space).
public enum WitnessEvent: Equatable, Sendable {
    case find(collection: String, filter: [UInt8], options: [UInt8], error: WitnessError?)
    case next(cursor: Int, document: [UInt8]?, error: WitnessError?)
    case insert(collection: String, document: [UInt8], error: WitnessError?)
    case update(collection: String, filter: [UInt8], update: [UInt8], flags: UInt8, matched: Int, modified: Int, error: WitnessError?)
    case delete(collection: String, filter: [UInt8], multi: Bool, count: Int, error: WitnessError?)
}

extension WitnessEvent {
    /// The bytes it holds (names, documents, error messages), for the witness's bound.
    var byteCount: Int {
        switch self {
        case .find(let collection, let filter, let options, let error):
            collection.utf8.count + filter.count + options.count + (error?.byteCount ?? 0)
        case .next(_, let document, let error): (document?.count ?? 0) + (error?.byteCount ?? 0)
        case .insert(let collection, let document, let error): collection.utf8.count + document.count + (error?.byteCount ?? 0)
        case .update(let collection, let filter, let update, _, _, _, let error):
            collection.utf8.count + filter.count + update.count + (error?.byteCount ?? 0)
        case .delete(let collection, let filter, _, _, let error): collection.utf8.count + filter.count + (error?.byteCount ?? 0)
        }
    }
}

/// A data error as it crossed into the procedure (code, name, message).
public struct WitnessError: Equatable, Sendable {
    public let code: Int32
    public let name: String
    public let message: String

    init(_ error: QueryError) {
        code = error.code.number
        name = error.code.name
        message = error.message
    }

    init(code: Int32, name: String, message: String) {
        self.code = code
        self.name = name
        self.message = message
    }

    var queryError: QueryError { QueryError(.named(code, name), message) }

    var byteCount: Int { name.utf8.count + message.utf8.count }
}

/// A call's witness, with its encoded size kept under a bound.
public final class Witness {
    public private(set) var events: [WitnessEvent] = []
    private(set) var byteCount = 0
    /// The most bytes of documents and requests a witness may hold.
    public let bytesMax: Int

    public init(bytesMax: Int) { self.bytesMax = bytesMax }

    init(events: [WitnessEvent]) {
        self.events = events
        bytesMax = Int.max
    }

    /// Runs `body` and records what it did: `event` gets its result on success, or the error it
    /// threw (which is thrown on; an overflow of the witness itself is not recorded).
    func record<T>(_ body: () throws(QueryError) -> T, _ event: (T?, WitnessError?) -> WitnessEvent) throws(QueryError) -> T {
        let value: T
        do {
            value = try body()
        } catch {
            if error.code != .jobTooLargeToVerify { try append(event(nil, WitnessError(error))) }
            throw error
        }
        try append(event(value, nil))
        return value
    }

    func append(_ event: WitnessEvent) throws(QueryError) {
        byteCount += event.byteCount + 64
        guard byteCount <= bytesMax else {
            throw QueryError(.jobTooLargeToVerify, "the job read and wrote more than \(bytesMax) bytes, too much to send to a second node")
        }
        events.append(event)
    }

    // MARK: - Encoding

    public var encoded: [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write(UInt64(events.count))
        func error(_ value: WitnessError?) {
            encoder.write(value != nil)
            if let value {
                encoder.write(Int64(value.code))
                encoder.write(value.name)
                encoder.write(value.message)
            }
        }
        for event in events {
            switch event {
            case .find(let collection, let filter, let options, let failure):
                encoder.write(UInt8(1)); encoder.write(collection); encoder.write(bytes: filter); encoder.write(bytes: options); error(failure)
            case .next(let cursor, let document, let failure):
                encoder.write(UInt8(2)); encoder.write(UInt64(cursor)); encoder.write(document != nil); encoder.write(bytes: document ?? []); error(failure)
            case .insert(let collection, let document, let failure):
                encoder.write(UInt8(3)); encoder.write(collection); encoder.write(bytes: document); error(failure)
            case .update(let collection, let filter, let update, let flags, let matched, let modified, let failure):
                encoder.write(UInt8(4)); encoder.write(collection); encoder.write(bytes: filter); encoder.write(bytes: update)
                encoder.write(flags); encoder.write(UInt64(matched)); encoder.write(UInt64(modified)); error(failure)
            case .delete(let collection, let filter, let multi, let count, let failure):
                encoder.write(UInt8(5)); encoder.write(collection); encoder.write(bytes: filter); encoder.write(multi); encoder.write(UInt64(count))
                error(failure)
            }
        }
        return encoder.bytes
    }

    public convenience init(decoding bytes: [UInt8], bytesMax: Int) throws(StratosError) {
        var decoder = CanonicalDecoder(bytes)
        let eventCount = try decoder.readUInt64()
        guard eventCount <= UInt64(bytesMax / 8) else { throw StratosError(.invalidEncoding, "witness has too many events") }
        var events: [WitnessEvent] = []
        func error() throws(StratosError) -> WitnessError? {
            guard try decoder.readBool() else { return nil }
            let code = try decoder.readInt64()
            guard let narrow = Int32(exactly: code) else { throw StratosError(.invalidEncoding, "witness error code out of range") }
            return WitnessError(code: narrow, name: try decoder.readString(maxCount: 256), message: try decoder.readString(maxCount: bytesMax))
        }
        func count() throws(StratosError) -> Int {
            let value = try decoder.readUInt64()
            guard value <= UInt64(Int32.max) else { throw StratosError(.invalidEncoding, "witness count out of range") }
            return Int(value)
        }
        for _ in 0..<eventCount {
            switch try decoder.readUInt8() {
            case 1:
                events.append(.find(collection: try decoder.readString(maxCount: bytesMax), filter: try decoder.readBytes(maxCount: bytesMax),
                                    options: try decoder.readBytes(maxCount: bytesMax), error: try error()))
            case 2:
                let cursor = try count()
                let present = try decoder.readBool()
                let document = try decoder.readBytes(maxCount: bytesMax)
                events.append(.next(cursor: cursor, document: present ? document : nil, error: try error()))
            case 3:
                events.append(.insert(collection: try decoder.readString(maxCount: bytesMax), document: try decoder.readBytes(maxCount: bytesMax), error: try error()))
            case 4:
                events.append(.update(
                    collection: try decoder.readString(maxCount: bytesMax), filter: try decoder.readBytes(maxCount: bytesMax),
                    update: try decoder.readBytes(maxCount: bytesMax), flags: try decoder.readUInt8(), matched: try count(), modified: try count(),
                    error: try error()))
            case 5:
                events.append(.delete(
                    collection: try decoder.readString(maxCount: bytesMax), filter: try decoder.readBytes(maxCount: bytesMax), multi: try decoder.readBool(),
                    count: try count(), error: try error()))
            default:
                throw StratosError(.invalidEncoding, "unknown witness event")
            }
        }
        try decoder.finish()
        self.init(events: events)
    }
}

/// Records what a call exchanges with `inner` into `witness`.
public final class RecordingDataAccess: ProcedureDataAccess {
    private let inner: any ProcedureDataAccess
    private let witness: Witness
    private var cursors = 0

    public init(_ inner: any ProcedureDataAccess, into witness: Witness) {
        self.inner = inner
        self.witness = witness
    }

    private final class Cursor: ProcedureCursor {
        let inner: any ProcedureCursor
        let number: Int
        unowned let witness: Witness
        init(inner: any ProcedureCursor, number: Int, witness: Witness) {
            self.inner = inner
            self.number = number
            self.witness = witness
        }
        func next() throws(QueryError) -> [UInt8]? {
            try witness.record({ () throws(QueryError) in try inner.next() }) { document, failure in
                .next(cursor: number, document: document ?? nil, error: failure)
            }
        }
    }

    public func find(collection: String, filter: BSONDocument, options: BSONDocument) throws(QueryError) -> any ProcedureCursor {
        let filterBytes = filter.bsonBytes
        let optionsBytes = options.bsonBytes
        let cursor = try witness.record({ () throws(QueryError) in try inner.find(collection: collection, filter: filter, options: options) }) {
            _, failure in .find(collection: collection, filter: filterBytes, options: optionsBytes, error: failure)
        }
        cursors += 1
        return Cursor(inner: cursor, number: cursors, witness: witness)
    }

    public func insert(collection: String, document: BSONDocument) throws(QueryError) {
        let bytes = document.bsonBytes
        try witness.record({ () throws(QueryError) in try inner.insert(collection: collection, document: document) }) { _, failure in
            .insert(collection: collection, document: bytes, error: failure)
        }
    }

    public func update(collection: String, filter: BSONDocument, update: BSONDocument, multi: Bool, upsert: Bool) throws(QueryError) -> (matched: Int, modified: Int) {
        let filterBytes = filter.bsonBytes
        let updateBytes = update.bsonBytes
        let flags = UInt8(multi ? 1 : 0) | UInt8(upsert ? 2 : 0)
        return try witness.record({ () throws(QueryError) in
            try inner.update(collection: collection, filter: filter, update: update, multi: multi, upsert: upsert)
        }) { outcome, failure in
            .update(collection: collection, filter: filterBytes, update: updateBytes, flags: flags, matched: outcome?.matched ?? 0,
                    modified: outcome?.modified ?? 0, error: failure)
        }
    }

    public func delete(collection: String, filter: BSONDocument, multi: Bool) throws(QueryError) -> Int {
        let filterBytes = filter.bsonBytes
        return try witness.record({ () throws(QueryError) in try inner.delete(collection: collection, filter: filter, multi: multi) }) {
            count, failure in .delete(collection: collection, filter: filterBytes, multi: multi, count: count ?? 0, error: failure)
        }
    }
}

/// Answers a re-run from a witness, checking that each request is the one recorded; the first
/// difference ends the call with `ProcedureDiverged`.
public final class ReplayDataAccess: ProcedureDataAccess {
    private var events: ArraySlice<WitnessEvent>
    private var cursors = 0

    public init(_ witness: Witness) { events = witness.events[...] }

    /// Whether every recorded event was replayed.
    public var isFinished: Bool { events.isEmpty }

    fileprivate func take(_ what: String) throws(QueryError) -> WitnessEvent {
        guard let event = events.popFirst() else {
            throw QueryError(.procedureDiverged, "the re-run made a \(what) request the first node's run did not make")
        }
        return event
    }

    private func diverged(_ what: String) -> QueryError {
        QueryError(.procedureDiverged, "the re-run's \(what) request differs from the first node's")
    }

    private final class Cursor: ProcedureCursor {
        unowned let replay: ReplayDataAccess
        let number: Int
        init(replay: ReplayDataAccess, number: Int) {
            self.replay = replay
            self.number = number
        }
        func next() throws(QueryError) -> [UInt8]? {
            guard case .next(let cursor, let document, let failure) = try replay.take("cursor"), cursor == number else {
                throw QueryError(.procedureDiverged, "the re-run's cursor request differs from the first node's")
            }
            if let failure { throw failure.queryError }
            return document
        }
    }

    public func find(collection: String, filter: BSONDocument, options: BSONDocument) throws(QueryError) -> any ProcedureCursor {
        guard case .find(let recorded, let recordedFilter, let recordedOptions, let failure) = try take("find"),
            recorded == collection, recordedFilter == filter.bsonBytes, recordedOptions == options.bsonBytes
        else { throw diverged("find") }
        if let failure { throw failure.queryError }
        cursors += 1
        return Cursor(replay: self, number: cursors)
    }

    public func insert(collection: String, document: BSONDocument) throws(QueryError) {
        guard case .insert(let recorded, let bytes, let failure) = try take("insert"), recorded == collection, bytes == document.bsonBytes else {
            throw diverged("insert")
        }
        if let failure { throw failure.queryError }
    }

    public func update(collection: String, filter: BSONDocument, update: BSONDocument, multi: Bool, upsert: Bool) throws(QueryError) -> (matched: Int, modified: Int) {
        let flags = UInt8(multi ? 1 : 0) | UInt8(upsert ? 2 : 0)
        guard case .update(let recorded, let recordedFilter, let recordedUpdate, let recordedFlags, let matched, let modified, let failure) = try take("update"),
            recorded == collection, recordedFilter == filter.bsonBytes, recordedUpdate == update.bsonBytes, recordedFlags == flags
        else { throw diverged("update") }
        if let failure { throw failure.queryError }
        return (matched, modified)
    }

    public func delete(collection: String, filter: BSONDocument, multi: Bool) throws(QueryError) -> Int {
        guard case .delete(let recorded, let recordedFilter, let recordedMulti, let count, let failure) = try take("delete"),
            recorded == collection, recordedFilter == filter.bsonBytes, recordedMulti == multi
        else { throw diverged("delete") }
        if let failure { throw failure.queryError }
        return count
    }
}
