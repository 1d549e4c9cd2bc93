import QueryEngine
import StratosCore
import Synchronization
@_spi(Fuzzing) import WasmKit

// WasmKit 0.4.2 installs a store's resource limiter through `@_spi(Fuzzing)`: the only way to
// cap a module's memory and tables exactly (including its declared initial size) before they are
// allocated. The rest of the API used here is public.

/// A validated procedure module, ready to instantiate (immutable and shareable).
public struct ProcedureModule: Sendable {
    /// The parsed module.
    let module: Module
    /// BLAKE2b-256 of the module's bytes (what the space's commit records).
    public let codeHash: [UInt8]
    /// The module's size in bytes.
    public let byteCount: Int

    /// Validates `bytes` as a procedure: well-formed WebAssembly whose every function body
    /// type-checks, importing only `stratos` host functions with their declared types, exporting
    /// `int32_t run(void)` and its `memory`, within the memory and table limits; its start
    /// function (if any) runs under the fuel limit. The error says what is wrong.
    public static func compile(_ bytes: [UInt8], limits: ProcedureLimits) throws(QueryError) -> ProcedureModule {
        guard bytes.count <= limits.moduleBytesMax else {
            throw QueryError(.invalidProcedure, "the module is \(bytes.count) bytes; the limit is \(limits.moduleBytesMax)")
        }
        let module: Module
        do { module = try parseWasm(bytes: bytes) } catch {
            throw QueryError(.invalidProcedure, "not a valid WebAssembly module: \(error.description)")
        }
        for item in module.imports {
            guard item.module == HostABI.module, HostABI.signatures[item.name] != nil, case .function = item.descriptor else {
                throw QueryError(
                    .invalidProcedure,
                    "the module imports \(item.module).\(item.name), which is not a StratosDB host function (see sdk/include/stratos.h)")
            }
        }
        // Instantiating once with every body compiled (eager) checks the bodies, the import types
        // and the limits, and runs the start function.
        let store = Store(engine: ProcedureRuntime.validationEngine)
        let limiter = MemoryLimiter(limits: limits)
        store.resourceLimiter = limiter
        store.fuel = Fuel(remaining: limits.fuelMax)
        let instance: Instance
        do {
            instance = try module.instantiate(store: store, imports: ProcedureCall.stubImports(store))
        } catch {
            throw ProcedureRuntime.translate(error, limiter: limiter, limits: limits, fuel: limits.fuelMax, creating: true)
        }
        guard let run = instance.exports[function: "run"], run.type == FunctionType(parameters: [], results: [.i32]) else {
            throw QueryError(.invalidProcedure, "a procedure must export `int32_t run(void)` (the function the node calls)")
        }
        guard instance.exports[memory: "memory"] != nil else {
            throw QueryError(.invalidProcedure, "a procedure must export its linear memory as `memory`")
        }
        return ProcedureModule(module: module, codeHash: Hash256.blake2b(bytes).bytes, byteCount: bytes.count)
    }
}

/// What a call produced.
public struct ProcedureOutcome: Sendable {
    /// The emitted result document (empty when the procedure emitted none).
    public var result: BSONDocument
    /// Fuel used, and the budget it ran under.
    public var fuelUsed: UInt64
    public var fuelLimit: UInt64
    /// Lines it logged.
    public var logs: [String]
    /// Documents read and written, and host functions called.
    public var documentsRead: Int
    public var documentsWritten: Int
    public var hostCalls: Int
    /// The most linear memory it held, in bytes.
    public var memoryBytes: Int
}

/// Runs procedures: one fresh instance per call, in the calling thread, with fuel, memory and
/// table limits. Thread-safe (each call has its own store).
public enum ProcedureRuntime {
    static let interpreterStackBytes = 1 << 20

    /// Calls are compiled lazily (only the functions a call reaches), with fuel metering.
    static let engine = Engine(
        configuration: EngineConfiguration(compilationMode: .lazy, stackSize: interpreterStackBytes, fuelMetering: true))
    /// Validation compiles every function body up front, so a bad one is refused at create time.
    static let validationEngine = Engine(
        configuration: EngineConfiguration(compilationMode: .eager, stackSize: interpreterStackBytes, fuelMetering: true))

    /// Calls `run` of `module` for `call` with `fuel`. A trap, an abort, a non-zero status or a
    /// limit throws (the caller rolls the call's writes back).
    ///
    /// A running call cannot be interrupted (WasmKit has no way to), so the operation's deadline
    /// (`maxTimeMS`) becomes a fuel budget: what this process burns in the time left, as
    /// measured by `fuelPerSecond`. Host calls also check the deadline and `killOp` directly.
    public static func run(_ module: ProcedureModule, name: String, call: ProcedureCall, fuel: UInt64) throws(QueryError) -> ProcedureOutcome {
        var budget = fuel
        var limitedByTime = false
        if let deadline = OperationContext.current?.deadlineNanoseconds {
            let now = MonotonicTime.nowNanoseconds()
            guard deadline > now else { throw QueryError(.maxTimeMSExpired, "operation exceeded time limit") }
            let affordable = Double(deadline - now) / 1e9 * fuelPerSecond
            if affordable < Double(fuel) {
                budget = max(1, UInt64(affordable))
                limitedByTime = true
            }
        }
        let store = Store(engine: engine)
        let limiter = MemoryLimiter(limits: call.limits)
        store.resourceLimiter = limiter
        store.fuel = Fuel(remaining: budget)
        let status: Int32
        do {
            let instance = try module.module.instantiate(store: store, imports: call.imports(store))
            call.memory = instance.exports[memory: "memory"]
            guard let run = instance.exports[function: "run"] else {
                throw QueryError(.invalidProcedure, "procedure '\(name)' exports no `run` function")
            }
            let results = try run.invoke([])
            status = results.first.map { Int32(bitPattern: $0.i32) } ?? 0
        } catch let error as QueryError {
            throw error
        } catch {
            let failure = translate(error, limiter: limiter, limits: call.limits, fuel: fuel, creating: false, name: name)
            if failure.code == .exceededFuel && limitedByTime {
                throw QueryError(.maxTimeMSExpired, "procedure '\(name)' ran past its time limit (maxTimeMS, or serve --procedure-time-max)")
            }
            throw failure
        }
        call.memory = nil
        guard status == 0 else {
            // The last failed host call usually says why (a refused read, a duplicate key).
            let cause = call.lastError.isEmpty ? "" : " (last host error: \(call.lastError))"
            throw QueryError(.procedureAborted, "procedure '\(name)' returned status \(status); its writes were rolled back\(cause)")
        }
        let result: BSONDocument
        if let bytes = call.result {
            do { result = try BSONDecoder.decode(bytes) } catch {
                throw QueryError(.procedureTrapped, "procedure '\(name)' emitted a malformed result")
            }
        } else {
            result = BSONDocument()
        }
        return ProcedureOutcome(
            result: result, fuelUsed: budget - min(budget, store.fuel?.remaining ?? 0), fuelLimit: fuel, logs: call.logs,
            documentsRead: call.documentsRead, documentsWritten: call.documentsWritten, hostCalls: call.hostCalls,
            memoryBytes: limiter.peakBytes)
    }

    /// Fuel this process's interpreter burns per second on a tight loop, measured once (about
    /// 1.5 billion in a release build here, 100 times less in a debug build).
    public static let fuelPerSecond: Double = {
        // (module (memory (export "memory") 1) (func (export "run") (result i32) (loop (br 0)) (i32.const 0)))
        let loop: [UInt8] = [
            0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, 0x03, 0x02, 0x01, 0x00,
            0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x10, 0x02, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00, 0x03, 0x72,
            0x75, 0x6e, 0x00, 0x00, 0x0a, 0x0b, 0x01, 0x09, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x41, 0x00, 0x0b,
        ]
        let budget: UInt64 = 1_000_000
        guard let module = try? parseWasm(bytes: loop) else { return 1e8 }
        let store = Store(engine: engine)
        store.fuel = Fuel(remaining: budget)
        let started = MonotonicTime.nowNanoseconds()
        if let instance = try? module.instantiate(store: store), let run = instance.exports[function: "run"] { _ = try? run.invoke([]) }
        let elapsed = Double(max(1, MonotonicTime.nowNanoseconds() - started)) / 1e9
        return Double(budget) / elapsed
    }()

    /// Turns what the interpreter threw into the error a client sees.
    static func translate(
        _ error: any Error, limiter: MemoryLimiter, limits: ProcedureLimits, fuel: UInt64, creating: Bool, name: String = ""
    ) -> QueryError {
        let subject = creating ? "the module" : "procedure '\(name)'"
        switch error {
        case ProcedureStop.aborted(let message):
            return QueryError(.procedureAborted, "\(subject) aborted: \(message)")
        case ProcedureStop.failure(let failure):
            return failure
        case let failure as QueryError:
            return failure
        default:
            break
        }
        // At create time every failure is the module's: one code, InvalidProcedureModule.
        let text = String(describing: error)
        let firstLine = text.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? text
        if error is Trap, firstLine.hasPrefix("Trap: out of fuel") {
            return QueryError(creating ? .invalidProcedure : .exceededFuel, "\(subject) used all of its \(fuel) fuel before returning (pass a larger `fuel`, up to \(limits.fuelMax))")
        }
        let memoryCode: QueryError.Code = creating ? .invalidProcedure : .exceededMemory
        // A refused memory.grow returns -1 to the module; a trap after it is taken to be its
        // consequence (a failed allocation), not any later failure of another kind.
        if let refused = limiter.refusedBytes, error is Trap || creating {
            return QueryError(
                memoryCode,
                "\(subject) asked for \(refused) bytes of memory; the limit is \(limits.memoryBytesMax) (serve --procedure-memory-max)")
        }
        if let refused = limiter.refusedElements, error is Trap || creating {
            return QueryError(memoryCode, "\(subject) asked for a table of \(refused) elements; the limit is \(limits.tableElementsMax)")
        }
        if error is Trap {
            return QueryError(creating ? .invalidProcedure : .procedureTrapped, "\(subject) trapped: \(firstLine.dropFirst("Trap: ".count))")
        }
        return QueryError(.invalidProcedure, "\(subject) is not a valid procedure: \(firstLine)")
    }
}

/// Caps a store's memory and tables, and counts memory against the node-wide query memory.
final class MemoryLimiter: ResourceLimiter, @unchecked Sendable {
    // Safe: used only by the store's thread.
    private let limits: ProcedureLimits
    private(set) var refusedBytes: Int?
    private(set) var refusedElements: Int?
    private(set) var peakBytes = 0

    init(limits: ProcedureLimits) { self.limits = limits }

    func limitMemoryGrowth(to desired: Int) throws -> Bool {
        guard desired <= limits.memoryBytesMax else {
            refusedBytes = desired
            return false
        }
        if desired > peakBytes {
            // Memory beyond what the call held counts against the node's query memory, so many
            // procedures at once cannot exhaust the node (released when the operation ends).
            try OperationContext.reserveMemory(desired - peakBytes)
            peakBytes = desired
        }
        return true
    }

    func limitTableGrowth(to desired: Int) throws -> Bool {
        guard desired <= limits.tableElementsMax else {
            refusedElements = desired
            return false
        }
        return true
    }
}

/// Validated modules by code hash, so a procedure is parsed and checked once, not per call.
public final class ProcedureModuleCache: Sendable {
    private let modules = Mutex<[[UInt8]: ProcedureModule]>([:])
    private let capacity: Int

    /// A cache of at most `capacity` modules (a full cache starts over).
    public init(capacity: Int = 64) { self.capacity = capacity }

    /// The module whose bytes hash to `codeHash`, compiling `bytes` on a miss.
    public func module(codeHash: [UInt8], bytes: () -> [UInt8], limits: ProcedureLimits) throws(QueryError) -> ProcedureModule {
        if let cached = modules.withLock({ $0[codeHash] }) { return cached }
        let compiled = try ProcedureModule.compile(bytes(), limits: limits)
        guard compiled.codeHash == codeHash else {
            throw QueryError(.invalidProcedure, "the stored procedure's code does not match its recorded hash")
        }
        modules.withLock { modules in
            if modules.count >= capacity { modules.removeAll() }
            modules[codeHash] = compiled
        }
        return compiled
    }
}
