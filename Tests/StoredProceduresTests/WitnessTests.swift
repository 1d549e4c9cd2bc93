import QueryEngine
import StoredProcedures
import StratosCore
import Testing
import WAT

/// The witness a first node records, and the second node's re-run from it.
@Suite struct WitnessTests {
    /// A procedure that reads the collection and inserts one document per document it read.
    let copier = """
        (data (i32.const 0) "users")
        (func (export "run") (result i32) (local $cursor i32) (local $length i32)
          (local.set $cursor (call $find (i32.const 0) (i32.const 5) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
          (block $done (loop $next
            (local.set $length (call $cursor_next (local.get $cursor) (i32.const 1024) (i32.const 4096)))
            (br_if $done (i32.eqz (local.get $length)))
            (drop (call $insert (i32.const 0) (i32.const 5) (i32.const 1024) (local.get $length)))
            (br $next)))
          (drop (call $emit (i32.const 1024) (local.get $length)))
          (i32.const 0))
        """

    func recorded() throws -> (ProcedureModule, Witness, ProcedureOutcome) {
        let data = MemoryData()
        data.documents = (0..<3).map { (["n": .int32(Int32($0))] as BSONDocument).bsonBytes }
        let compiled = try ProcedureModule.compile(try module(copier), limits: ProcedureLimits())
        let witness = Witness(bytesMax: 1 << 20)
        let call = ProcedureCall(arguments: BSONDocument().bsonBytes, data: RecordingDataAccess(data, into: witness), limits: ProcedureLimits())
        let outcome = try ProcedureRuntime.run(compiled, name: "copier", call: call, fuel: 1_000_000)
        #expect(data.inserted.count == 3)
        return (compiled, witness, outcome)
    }

    @Test func aReRunFromTheWitnessAgreesExactly() throws {
        let (compiled, witness, outcome) = try recorded()
        #expect(witness.events.count == 8)  // find, then next and insert three times, then the last next (the end)
        let decoded = try Witness(decoding: witness.encoded, bytesMax: 1 << 20)
        #expect(decoded.events == witness.events)
        let replay = ReplayDataAccess(decoded)
        let again = try ProcedureRuntime.run(
            compiled, name: "copier", call: ProcedureCall(arguments: BSONDocument().bsonBytes, data: replay, limits: ProcedureLimits()), fuel: 1_000_000)
        #expect(replay.isFinished)
        #expect(again.fuelUsed == outcome.fuelUsed)
        #expect(again.result == outcome.result)
    }

    @Test func aDifferentRequestDiverges() throws {
        let (_, witness, _) = try recorded()
        // Another module that asks for a different collection than the witness recorded.
        let other = try ProcedureModule.compile(try module(#"""
            (data (i32.const 0) "other")
            (func (export "run") (result i32)
              (drop (call $find (i32.const 0) (i32.const 5) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))) (i32.const 0))
            """#), limits: ProcedureLimits())
        #expect(code { _ = try ProcedureRuntime.run(other, name: "other", call: ProcedureCall(arguments: BSONDocument().bsonBytes, data: ReplayDataAccess(witness), limits: ProcedureLimits()), fuel: 1_000_000) } == 7_300_008)
    }

    @Test func anOversizedWitnessEndsTheCall() throws {
        let data = MemoryData()
        data.documents = (0..<50).map { _ in (["text": .string(String(repeating: "x", count: 500))] as BSONDocument).bsonBytes }
        let compiled = try ProcedureModule.compile(try module(copier), limits: ProcedureLimits())
        let call = ProcedureCall(arguments: BSONDocument().bsonBytes, data: RecordingDataAccess(data, into: Witness(bytesMax: 4_096)), limits: ProcedureLimits())
        #expect(code { _ = try ProcedureRuntime.run(compiled, name: "copier", call: call, fuel: 10_000_000) } == 7_300_010)
    }

    /// Witnesses come from other nodes: every truncation and seeded byte flip is refused or
    /// decodes to something, never crashes.
    @Test func malformedWitnessesAreRefused() throws {
        let encoded = try recorded().1.encoded
        for length in 0..<encoded.count {
            _ = try? Witness(decoding: Array(encoded.prefix(length)), bytesMax: 1 << 20)
        }
        var generator = SplitMix(seed: 7)
        for _ in 0..<500 {
            var mutated = encoded
            mutated[Int(generator.next() % UInt64(mutated.count))] ^= UInt8(truncatingIfNeeded: generator.next() | 1)
            _ = try? Witness(decoding: mutated, bytesMax: 1 << 20)
        }
        #expect(throws: StratosError.self) { try Witness(decoding: encoded + [0], bytesMax: 1 << 20) }
    }
}
