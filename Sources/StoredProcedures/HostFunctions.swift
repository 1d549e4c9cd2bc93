import QueryEngine
import WasmKit

/// The host ABI: the functions a procedure imports from module `stratos`, as declared in
/// `sdk/include/stratos.h`. Every argument is an i32; pointers and lengths address the module's
/// exported `memory` and are checked against it before any byte is touched (a negative length
/// or a range past the end is `STRATOS_E_ARGUMENT`, never a crash). Documents cross as BSON.
///
/// Return values: `>= 0` is success (a count or a length); negative values are the error codes
/// below, and `stratos_error` copies the last error's message.
public enum HostABI {
    /// The import module name.
    public static let module = "stratos"

    /// A pointer or length outside the module's memory, or a negative length.
    public static let errorArgument: Int32 = -1
    /// The caller's grants do not allow this on that collection.
    public static let errorUnauthorized: Int32 = -3
    /// Bytes that are not one well-formed BSON document.
    public static let errorBSON: Int32 = -4
    /// The write failed (duplicate key, document too large, bad update …); nothing of it applied.
    public static let errorWrite: Int32 = -5
    /// No open cursor has that number.
    public static let errorCursor: Int32 = -6
    /// A per-call limit was reached (open cursors, result size).
    public static let errorLimit: Int32 = -7
    /// The filter, sort or options were refused by the query engine.
    public static let errorQuery: Int32 = -8

    /// Each host function's parameter count (all i32) and whether it returns an i32.
    static let signatures: [String: (parameters: Int, returns: Bool)] = [
        "args_size": (0, true), "args_read": (2, true),
        "find": (6, true), "cursor_next": (3, true), "cursor_close": (1, true),
        "insert": (4, true), "update": (7, true), "delete": (5, true),
        "emit": (2, true), "log": (2, true), "abort": (2, false), "error": (2, true),
    ]
}

/// How a call ended early, thrown from a host function through the interpreter.
enum ProcedureStop: Error {
    /// `stratos_abort(message)`.
    case aborted(String)
    /// The operation was killed, timed out, or hit a node-wide limit.
    case failure(QueryError)
}

/// One procedure call's state, shared by its host functions: arguments, result, logs, open
/// cursors and counters. Lives on the thread that runs the call.
public final class ProcedureCall {
    let limits: ProcedureLimits
    let data: any ProcedureDataAccess
    let arguments: [UInt8]
    /// The emitted result document (BSON), if any.
    public private(set) var result: [UInt8]?
    /// Lines the procedure logged (bounded by `limits`).
    public private(set) var logs: [String] = []
    /// Documents read through cursors, and documents inserted, updated or deleted.
    public private(set) var documentsRead = 0
    public private(set) var documentsWritten = 0
    /// Host functions called.
    public private(set) var hostCalls = 0
    private var cursors: [Int32: Cursor] = [:]
    private var nextCursor: Int32 = 1
    /// The message of the last failed host call (what `stratos_error` copies).
    public private(set) var lastError = ""
    /// The instance's memory, once instantiated.
    var memory: Memory?

    private struct Cursor {
        let source: any ProcedureCursor
        /// A document read but not delivered (the caller's buffer was too small).
        var pending: [UInt8]?
    }

    /// A call with `arguments` (a BSON document) over `data`.
    public init(arguments: [UInt8], data: any ProcedureDataAccess, limits: ProcedureLimits) {
        self.arguments = arguments
        self.data = data
        self.limits = limits
    }

    // MARK: - Imports

    /// The `stratos` imports bound to this call.
    func imports(_ store: Store) -> Imports {
        var imports = Imports()
        func define(_ name: String, _ body: @escaping (ProcedureCall, [Int32]) throws -> Int32) {
            guard let signature = HostABI.signatures[name] else { preconditionFailure("host function \(name) has no signature") }
            let function = Function(
                store: store, parameters: Array(repeating: .i32, count: signature.parameters), results: signature.returns ? [.i32] : []
            ) { [unowned self] _, values in
                self.hostCalls += 1
                if let operation = OperationContext.current {
                    do throws(QueryError) { try operation.check() } catch { throw ProcedureStop.failure(error) }
                }
                let code = try body(self, values.map { Int32(bitPattern: $0.i32) })
                return signature.returns ? [.i32(UInt32(bitPattern: code))] : []
            }
            imports.define(module: HostABI.module, name: name, function)
        }
        define("args_size") { call, _ in Int32(clamping: call.arguments.count) }
        define("args_read") { call, a in try call.write(call.arguments, to: a[0], capacity: a[1]) }
        define("find") { call, a in try call.find(a) }
        define("cursor_next") { call, a in try call.cursorNext(a[0], to: a[1], capacity: a[2]) }
        define("cursor_close") { call, a in call.cursors.removeValue(forKey: a[0]) == nil ? call.fail(HostABI.errorCursor, "no open cursor \(a[0])") : 0 }
        define("insert") { call, a in try call.insert(a) }
        define("update") { call, a in try call.update(a) }
        define("delete") { call, a in try call.delete(a) }
        define("emit") { call, a in try call.emit(a) }
        define("log") { call, a in try call.log(a) }
        define("abort") { call, a in
            let message = (try? call.bytes(a[0], a[1], copyingAtMost: call.limits.logLineBytesMax)).map { String(decoding: $0, as: UTF8.self) }
            throw ProcedureStop.aborted(message ?? "aborted")
        }
        define("error") { call, a in try call.write(Array(call.lastError.utf8), to: a[0], capacity: a[1]) }
        return imports
    }

    /// Imports that only refuse: for validating a module at create time.
    static func stubImports(_ store: Store) -> Imports {
        var imports = Imports()
        for (name, signature) in HostABI.signatures {
            let function = Function(
                store: store, parameters: Array(repeating: .i32, count: signature.parameters), results: signature.returns ? [.i32] : []
            ) { _, _ in throw ProcedureStop.failure(QueryError(.invalidProcedure, "a procedure's start function may not call the host")) }
            imports.define(module: HostABI.module, name: name, function)
        }
        return imports
    }

    // MARK: - Host functions

    private func find(_ a: [Int32]) throws -> Int32 {
        guard cursors.count < limits.cursorsMax else { return fail(HostABI.errorLimit, "a call may have at most \(limits.cursorsMax) cursors open") }
        guard let collection = try string(a[0], a[1]) else { return HostABI.errorArgument }
        guard let filter = try document(a[2], a[3], emptyWhenZero: true), let options = try document(a[4], a[5], emptyWhenZero: true) else {
            return lastCode
        }
        do {
            let cursor = try data.find(collection: collection, filter: filter, options: options)
            let number = nextCursor
            nextCursor += 1
            cursors[number] = Cursor(source: cursor, pending: nil)
            return number
        } catch {
            return try refused(error, otherwise: HostABI.errorQuery)
        }
    }

    private func cursorNext(_ number: Int32, to pointer: Int32, capacity: Int32) throws -> Int32 {
        guard var cursor = cursors[number] else { return fail(HostABI.errorCursor, "no open cursor \(number)") }
        let document: [UInt8]
        if let pending = cursor.pending {
            document = pending
        } else {
            do {
                guard let next = try cursor.source.next() else { return 0 }
                document = next
                documentsRead += 1
            } catch {
                return try refused(error, otherwise: HostABI.errorQuery)
            }
        }
        // Kept until it is delivered: a buffer too small, or a bad pointer, loses nothing.
        cursor.pending = document
        cursors[number] = cursor
        if capacity < 0 || document.count > Int(capacity) {
            return Int32(clamping: document.count)  // Too small: the length it needs.
        }
        let written = try write(document, to: pointer, capacity: capacity)
        if written >= 0 {
            cursor.pending = nil
            cursors[number] = cursor
        }
        return written
    }

    private func insert(_ a: [Int32]) throws -> Int32 {
        guard let collection = try string(a[0], a[1]) else { return HostABI.errorArgument }
        guard let document = try document(a[2], a[3], emptyWhenZero: false) else { return lastCode }
        do {
            try data.insert(collection: collection, document: document)
            documentsWritten += 1
            return 0
        } catch {
            return try refused(error, otherwise: HostABI.errorWrite)
        }
    }

    private func update(_ a: [Int32]) throws -> Int32 {
        guard let collection = try string(a[0], a[1]) else { return HostABI.errorArgument }
        guard let filter = try document(a[2], a[3], emptyWhenZero: true), let update = try document(a[4], a[5], emptyWhenZero: false) else {
            return lastCode
        }
        do {
            let outcome = try data.update(
                collection: collection, filter: filter, update: update, multi: a[6] & 1 != 0, upsert: a[6] & 2 != 0)
            documentsWritten += outcome.modified
            return Int32(clamping: outcome.modified)
        } catch {
            return try refused(error, otherwise: HostABI.errorWrite)
        }
    }

    private func delete(_ a: [Int32]) throws -> Int32 {
        guard let collection = try string(a[0], a[1]) else { return HostABI.errorArgument }
        guard let filter = try document(a[2], a[3], emptyWhenZero: true) else { return lastCode }
        do {
            let removed = try data.delete(collection: collection, filter: filter, multi: a[4] & 1 != 0)
            documentsWritten += removed
            return Int32(clamping: removed)
        } catch {
            return try refused(error, otherwise: HostABI.errorWrite)
        }
    }

    private func emit(_ a: [Int32]) throws -> Int32 {
        guard a[1] <= limits.resultBytesMax else {
            return fail(HostABI.errorLimit, "the result is \(a[1]) bytes; the limit is \(limits.resultBytesMax)")
        }
        guard let bytes = try bytes(a[0], a[1]) else { return HostABI.errorArgument }
        guard (try? BSONDecoder.decode(bytes)) != nil else { return fail(HostABI.errorBSON, "the result is not a BSON document") }
        result = bytes
        return 0
    }

    private func log(_ a: [Int32]) throws -> Int32 {
        guard logs.count < limits.logLinesMax else { return fail(HostABI.errorLimit, "a call may log at most \(limits.logLinesMax) lines") }
        guard let bytes = try bytes(a[0], a[1], copyingAtMost: limits.logLineBytesMax) else { return HostABI.errorArgument }
        logs.append(String(decoding: bytes, as: UTF8.self))
        return 0
    }

    // MARK: - Memory and arguments

    private var lastCode: Int32 = 0

    /// Records an error for `stratos_error` and returns its code.
    private func fail(_ code: Int32, _ message: String) -> Int32 {
        lastError = message
        lastCode = code
        return code
    }

    /// Maps a data-access error to a code, except those that must end the call: a killed or
    /// timed-out operation, or a node-wide memory refusal.
    private func refused(_ error: QueryError, otherwise code: Int32) throws -> Int32 {
        switch error.code {
        case .interrupted, .interruptedAtShutdown, .maxTimeMSExpired, .exceededMemoryLimitNodeWide, .operationFailed, .procedureDiverged, .jobTooLargeToVerify:
            throw ProcedureStop.failure(error)
        case .unauthorized:
            return fail(HostABI.errorUnauthorized, error.message)
        default:
            return fail(code, "\(error.code.name): \(error.message)")
        }
    }

    /// The `length` bytes at `pointer`, or nil (with the error recorded) when the range is not
    /// inside the memory. Checked in `Int` before any narrowing or pointer arithmetic.
    /// (`copyingAtMost`: the range is checked whole, but only its first bytes are copied.)
    func bytes(_ pointer: Int32, _ length: Int32, copyingAtMost limit: Int = Int.max) throws -> [UInt8]? {
        guard let (memory, start) = try range(pointer, count: Int(length)) else { return nil }
        return memory.withUnsafeBufferPointer(offset: UInt(start), count: min(Int(length), limit)) { Array($0) }
    }

    /// The memory and start offset of `count` bytes at `pointer`, or nil (the error recorded)
    /// when they are not all inside the memory. Checked in `Int`, before any pointer arithmetic:
    /// WasmKit's buffer accessors stop the process on an out-of-range request.
    private func range(_ pointer: Int32, count: Int) throws -> (Memory, Int)? {
        guard let memory else { throw ProcedureStop.failure(QueryError(.invalidProcedure, "the procedure exports no memory")) }
        let start = Int(pointer)
        let size = memory.byteCount
        guard pointer >= 0, count >= 0, start <= size, count <= size - start else {
            _ = fail(HostABI.errorArgument, "the range \(pointer)+\(count) is outside the procedure's memory (\(size) bytes)")
            return nil
        }
        return (memory, start)
    }

    private func string(_ pointer: Int32, _ length: Int32) throws -> String? {
        guard let bytes = try bytes(pointer, length) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A BSON document at `pointer`; length 0 is the empty document when `emptyWhenZero`.
    private func document(_ pointer: Int32, _ length: Int32, emptyWhenZero: Bool) throws -> BSONDocument? {
        if length == 0 && emptyWhenZero { return BSONDocument() }
        guard let bytes = try bytes(pointer, length) else { return nil }
        do { return try BSONDecoder.decode(bytes) } catch {
            _ = fail(HostABI.errorBSON, "the \(length) bytes at \(pointer) are not one BSON document")
            return nil
        }
    }

    /// Copies `source` to `pointer` when it fits in `capacity`; returns its length either way
    /// (a length above `capacity` means nothing was copied: call again with a larger buffer).
    private func write(_ source: [UInt8], to pointer: Int32, capacity: Int32) throws -> Int32 {
        guard source.count <= Int(Int32.max) else { return fail(HostABI.errorLimit, "the value is too large") }
        guard capacity >= 0, source.count <= Int(capacity) else { return Int32(source.count) }
        guard let (memory, start) = try range(pointer, count: source.count) else { return HostABI.errorArgument }
        memory.withUnsafeMutableBufferPointer(offset: UInt(start), count: source.count) { target in
            source.withUnsafeBytes { target.copyMemory(from: $0) }
        }
        return Int32(source.count)
    }
}
