import QueryEngine
import StoredProcedures
import Testing
import WAT

/// Data access that serves one collection from memory and records writes.
final class MemoryData: ProcedureDataAccess {
    var documents: [[UInt8]] = []
    var inserted: [BSONDocument] = []

    final class Cursor: ProcedureCursor {
        var remaining: [[UInt8]]
        init(_ documents: [[UInt8]]) { remaining = documents }
        func next() throws(QueryError) -> [UInt8]? { remaining.isEmpty ? nil : remaining.removeFirst() }
    }

    func find(collection: String, filter: BSONDocument, options: BSONDocument) throws(QueryError) -> any ProcedureCursor {
        guard collection == "users" else { throw QueryError(.unauthorized, "not authorized to read collection '\(collection)'") }
        return Cursor(documents)
    }
    func insert(collection: String, document: BSONDocument) throws(QueryError) {
        guard collection == "users" else { throw QueryError(.unauthorized, "not authorized to write collection '\(collection)'") }
        inserted.append(document)
    }
    func update(collection: String, filter: BSONDocument, update: BSONDocument, multi: Bool, upsert: Bool) throws(QueryError) -> (matched: Int, modified: Int) {
        (0, 0)
    }
    func delete(collection: String, filter: BSONDocument, multi: Bool) throws(QueryError) -> Int { 0 }
}

/// The host functions as WAT imports.
let importsWAT = """
    (import "stratos" "args_size" (func $args_size (result i32)))
    (import "stratos" "args_read" (func $args_read (param i32 i32) (result i32)))
    (import "stratos" "find" (func $find (param i32 i32 i32 i32 i32 i32) (result i32)))
    (import "stratos" "cursor_next" (func $cursor_next (param i32 i32 i32) (result i32)))
    (import "stratos" "cursor_close" (func $cursor_close (param i32) (result i32)))
    (import "stratos" "insert" (func $insert (param i32 i32 i32 i32) (result i32)))
    (import "stratos" "update" (func $update (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
    (import "stratos" "delete" (func $delete (param i32 i32 i32 i32 i32) (result i32)))
    (import "stratos" "emit" (func $emit (param i32 i32) (result i32)))
    (import "stratos" "log" (func $log (param i32 i32) (result i32)))
    (import "stratos" "abort" (func $abort (param i32 i32)))
    (import "stratos" "error" (func $error (param i32 i32) (result i32)))
    """

func module(_ body: String, memory: String = "(memory (export \"memory\") 1)") throws -> [UInt8] {
    try wat2wasm("(module \(importsWAT) \(memory) \(body))")
}

func run(_ bytes: [UInt8], data: MemoryData = MemoryData(), fuel: UInt64 = 10_000_000, limits: ProcedureLimits = ProcedureLimits(), arguments: BSONDocument = [:]) throws(QueryError) -> ProcedureOutcome {
    let compiled = try ProcedureModule.compile(bytes, limits: limits)
    let call = ProcedureCall(arguments: arguments.bsonBytes, data: data, limits: limits)
    return try ProcedureRuntime.run(compiled, name: "test", call: call, fuel: fuel)
}

/// The QueryError code `body` throws (-1 for any other error), nil when it succeeds.
func code(of body: () throws -> Void) -> Int32? {
    do { try body() } catch let error as QueryError { return error.code.number } catch { return -1 }
    return nil
}

@Suite struct ProcedureValidationTests {
    @Test func aMinimalProcedureRunsAndReportsFuel() throws {
        let outcome = try run(try module(#"(func (export "run") (result i32) (i32.const 0))"#))
        #expect(outcome.fuelUsed > 0 && outcome.fuelUsed < 100)
        #expect(outcome.result.isEmpty)
    }

    @Test func garbageIsRefusedAtCreate() {
        #expect(code { _ = try ProcedureModule.compile([0, 1, 2, 3, 4, 5, 6, 7], limits: ProcedureLimits()) } == 7_300_005)
        #expect(code { _ = try ProcedureModule.compile([], limits: ProcedureLimits()) } == 7_300_005)
    }

    @Test func unknownImportsAreRefused() throws {
        let bytes = try wat2wasm(#"(module (import "env" "system" (func (param i32))) (memory (export "memory") 1) (func (export "run") (result i32) (i32.const 0)))"#)
        #expect(code { _ = try ProcedureModule.compile(bytes, limits: ProcedureLimits()) } == 7_300_005)
    }

    @Test func aHostFunctionWithTheWrongTypeIsRefused() throws {
        let bytes = try wat2wasm(#"(module (import "stratos" "emit" (func (param i64))) (memory (export "memory") 1) (func (export "run") (result i32) (i32.const 0)))"#)
        #expect(code { _ = try ProcedureModule.compile(bytes, limits: ProcedureLimits()) } == 7_300_005)
    }

    @Test func runAndMemoryMustBeExported() throws {
        let noRun = try module(#"(func (export "main") (result i32) (i32.const 0))"#)
        #expect(code { _ = try ProcedureModule.compile(noRun, limits: ProcedureLimits()) } == 7_300_005)
        let wrongType = try module(#"(func (export "run") (param i32) (result i32) (local.get 0))"#)
        #expect(code { _ = try ProcedureModule.compile(wrongType, limits: ProcedureLimits()) } == 7_300_005)
        let noMemory = try module(#"(func (export "run") (result i32) (i32.const 0))"#, memory: "(memory 1)")
        #expect(code { _ = try ProcedureModule.compile(noMemory, limits: ProcedureLimits()) } == 7_300_005)
    }

    @Test func hugeInitialMemoryIsRefusedBeforeItIsAllocated() throws {
        var limits = ProcedureLimits()
        limits.memoryBytesMax = 1 << 20
        let bytes = try module(#"(func (export "run") (result i32) (i32.const 0))"#, memory: #"(memory (export "memory") 60000)"#)
        #expect(code { _ = try ProcedureModule.compile(bytes, limits: limits) } == 7_300_005)
    }

    @Test func anInfiniteStartFunctionIsBoundedByFuel() throws {
        var limits = ProcedureLimits()
        limits.fuelMax = 100_000
        let bytes = try module(#"(func $spin (loop (br 0))) (start $spin) (func (export "run") (result i32) (i32.const 0))"#)
        #expect(code { _ = try ProcedureModule.compile(bytes, limits: limits) } == 7_300_005)
    }

    @Test func oversizedModulesAreRefused() throws {
        var limits = ProcedureLimits()
        limits.moduleBytesMax = 16
        #expect(code { _ = try ProcedureModule.compile(try module(#"(func (export "run") (result i32) (i32.const 0))"#), limits: limits) } == 7_300_005)
    }
}

@Suite struct ProcedureLimitTests {
    @Test func anInfiniteLoopStopsWithExceededFuel() throws {
        let bytes = try module(#"(func (export "run") (result i32) (loop (br 0)) (i32.const 0))"#)
        #expect(code { _ = try run(bytes, fuel: 1_000_000) } == 7_300_001)
    }

    @Test func aMemoryBombStopsAtTheLimit() throws {
        var limits = ProcedureLimits()
        limits.memoryBytesMax = 4 << 20
        let bytes = try module(#"""
            (func (export "run") (result i32)
              (loop (if (i32.ne (memory.grow (i32.const 16)) (i32.const -1)) (then (br 1))))
              unreachable)
            """#)
        #expect(code { _ = try run(bytes, limits: limits) } == 7_300_002)
    }

    @Test func aProcedureThatHandlesRefusedGrowthSucceeds() throws {
        var limits = ProcedureLimits()
        limits.memoryBytesMax = 2 << 20
        let bytes = try module(#"(func (export "run") (result i32) (drop (memory.grow (i32.const 1000))) (i32.const 0))"#)
        let outcome = try run(bytes, limits: limits)
        #expect(outcome.memoryBytes <= 2 << 20)
    }

    @Test func trapsAndStatusesAreReported() throws {
        #expect(code { _ = try run(try module(#"(func (export "run") (result i32) unreachable)"#)) } == 7_300_003)
        #expect(code { _ = try run(try module(#"(func (export "run") (result i32) (i32.div_s (i32.const 1) (i32.const 0)))"#)) } == 7_300_003)
        #expect(code { _ = try run(try module(#"(func (export "run") (result i32) (i32.const 3))"#)) } == 7_300_004)
        let deep = try module(#"(func $down (export "run") (result i32) (call $down))"#)
        #expect(code { _ = try run(deep) } == 7_300_003)
    }

    @Test func abortCarriesTheProceduresMessage() throws {
        let bytes = try module(#"(data (i32.const 16) "bad profile") (func (export "run") (result i32) (call $abort (i32.const 16) (i32.const 11)) (i32.const 0))"#)
        do throws(QueryError) {
            _ = try run(bytes)
            Issue.record("abort did not stop the call")
        } catch {
            #expect(error.code.number == 7_300_004)
            #expect(error.message.contains("bad profile"))
        }
    }
}

@Suite struct ProcedureHostTests {
    /// A procedure that echoes its arguments as its result and reads the collection through a cursor.
    @Test func argumentsCursorsAndEmit() throws {
        let data = MemoryData()
        data.documents = [["a": .int32(1)], ["a": .int32(2)]].map { (document: BSONDocument) in document.bsonBytes }
        let bytes = try module(#"""
            (data (i32.const 0) "users")
            (func (export "run") (result i32) (local $cursor i32) (local $n i32) (local $length i32)
              (local.set $length (call $args_read (i32.const 1024) (i32.const 4096)))
              (local.set $cursor (call $find (i32.const 0) (i32.const 5) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
              (block $done (loop $next
                (br_if $done (i32.eqz (call $cursor_next (local.get $cursor) (i32.const 8192) (i32.const 4096))))
                (local.set $n (i32.add (local.get $n) (i32.const 1)))
                (br $next)))
              (if (i32.ne (local.get $n) (i32.const 2)) (then unreachable))
              (drop (call $emit (i32.const 1024) (local.get $length)))
              (i32.const 0))
            """#)
        let outcome = try run(bytes, data: data, arguments: ["city": .string("London")])
        #expect(outcome.result == ["city": .string("London")])
        #expect(outcome.documentsRead == 2)
    }

    @Test func aSmallBufferGetsTheLengthAndTheSameDocumentAgain() throws {
        let data = MemoryData()
        data.documents = [(["text": .string(String(repeating: "x", count: 100))] as BSONDocument).bsonBytes]
        let bytes = try module(#"""
            (data (i32.const 0) "users")
            (func (export "run") (result i32) (local $cursor i32) (local $need i32)
              (local.set $cursor (call $find (i32.const 0) (i32.const 5) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
              (local.set $need (call $cursor_next (local.get $cursor) (i32.const 1024) (i32.const 8)))
              (if (i32.le_s (local.get $need) (i32.const 8)) (then unreachable))
              (if (i32.ne (call $cursor_next (local.get $cursor) (i32.const 1024) (local.get $need)) (local.get $need)) (then unreachable))
              (if (i32.ne (call $cursor_next (local.get $cursor) (i32.const 1024) (i32.const 4096)) (i32.const 0)) (then unreachable))
              (i32.const 0))
            """#)
        let outcome = try run(bytes, data: data)
        #expect(outcome.documentsRead == 1)
    }

    @Test func refusedAccessIsAnErrorCodeTheProcedureSees() throws {
        let bytes = try module(#"""
            (data (i32.const 0) "secrets")
            (func (export "run") (result i32)
              (if (i32.ne (call $find (i32.const 0) (i32.const 7) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)) (i32.const -3))
                (then unreachable))
              (i32.const 0))
            """#)
        _ = try run(bytes)
    }

    /// Seeded random pointers and lengths (negative, huge, straddling the end of memory) for
    /// every host function: each call returns an error code or succeeds; nothing crashes and no
    /// byte outside the module's memory is touched.
    @Test(arguments: 0..<8)
    func hostCallArgumentsAreCheckedBeforeUse(seed: UInt64) throws {
        var generator = SplitMix(seed: seed)
        let interesting: [Int32] = [0, 1, -1, 5, 65_535, 65_536, 65_537, 65_531, Int32.max, Int32.min, 1 << 30, -65_536]
        func value() -> Int32 {
            generator.next() % 2 == 0 ? interesting[Int(generator.next() % UInt64(interesting.count))] : Int32(truncatingIfNeeded: generator.next())
        }
        let functions: [(String, Int)] = [
            ("args_read", 2), ("find", 6), ("cursor_next", 3), ("cursor_close", 1), ("insert", 4), ("update", 7), ("delete", 5),
            ("emit", 2), ("log", 2), ("error", 2),
        ]
        for _ in 0..<12 {
            let (name, count) = functions[Int(generator.next() % UInt64(functions.count))]
            let arguments = (0..<count).map { _ in "(i32.const \(value()))" }.joined(separator: " ")
            let bytes = try module("(func (export \"run\") (result i32) (drop (call $\(name) \(arguments))) (i32.const 0))")
            do throws(QueryError) {
                _ = try run(bytes)
            } catch {
                // A host function may refuse (never crash); the only failures allowed are the call's own.
                #expect([7_300_003, 7_300_004].contains(error.code.number), "\(name)(\(arguments)): \(error.message)")
            }
        }
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
