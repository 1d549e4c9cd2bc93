import Foundation
import Synchronization

/// One running operation's budget: a deadline (`maxTimeMS`, or the server's default), and a
/// cancellation flag (`killOp`, the client's connection closing, shutdown).
///
/// The node makes one per command and installs it as the thread's current operation while the
/// command's database work runs, so every scan, pipeline stage and sub-pipeline can call
/// `OperationContext.checkpoint()` without the context being passed through each signature.
public final class OperationContext: @unchecked Sendable {
    // Safe: `deadline` is written before the operation starts; the flag is atomic.
    /// The monotonic deadline, or nil for none.
    public var deadlineNanoseconds: UInt64?
    private let cancelled = Atomic<UInt8>(0)

    public enum Cancellation: UInt8, Sendable {
        case killed = 1
        case shutdown = 2
        case disconnected = 3
    }

    /// The most documents the operation may visit (scans and pipeline stages), nil for no limit
    /// (`serve --max-documents-examined`).
    public var documentsExaminedMax: Int?
    /// Documents visited so far (counted at checkpoints; one thread at a time runs an operation).
    private var documentsExamined = 0

    /// The command's collation, resolved against its collection's default where its database
    /// work runs (set before the operation starts).
    public var collation: CollationRequest?

    public init(deadlineNanoseconds: UInt64? = nil) {
        self.deadlineNanoseconds = deadlineNanoseconds
    }

    // MARK: - Memory

    /// Bytes of documents all running operations hold in memory (sort buffers, aggregation
    /// inputs, `$lookup` results), and the node-wide cap on them (`--max-query-memory`).
    private static let heldBytes = Atomic<Int>(0)
    nonisolated(unsafe) public static var queryMemoryBytesMax = QueryEngineLimits.queryMemoryBytesMaxDefault
    private let reserved = Atomic<Int>(0)

    /// What running operations hold now.
    public static var queryMemoryHeldBytes: Int { heldBytes.load(ordering: .relaxed) }

    /// Counts `bytes` more held by the thread's current operation; past the node-wide cap the
    /// operation fails with `ExceededMemoryLimit` (146) before the process is at risk.
    public static func reserveMemory(_ bytes: Int) throws(QueryError) {
        guard bytes > 0, let pointer = pthread_getspecific(key) else { return }
        let operation = Unmanaged<OperationContext>.fromOpaque(pointer).takeUnretainedValue()
        operation.reserved.wrappingAdd(bytes, ordering: .relaxed)
        let total = heldBytes.wrappingAdd(bytes, ordering: .relaxed).newValue
        if total > queryMemoryBytesMax {
            throw QueryError(.exceededMemoryLimitNodeWide, "the node's memory for queries (\(queryMemoryBytesMax / (1024 * 1024)) MB) is in use by other operations; retry later")
        }
    }

    /// Counts `bytes` held by something that outlives one command (a cursor's buffered
    /// documents) until the returned hold is released; refused past the node-wide cap.
    public static func holdMemory(_ bytes: Int, movingFrom operation: OperationContext? = nil) throws(QueryError) -> MemoryHold {
        // Documents the operation already counted (a sort buffer a cursor now keeps) move to the
        // hold instead of being counted twice.
        if let operation {
            var current = operation.reserved.load(ordering: .relaxed)
            while current >= bytes {
                let (exchanged, original) = operation.reserved.compareExchange(expected: current, desired: current - bytes, ordering: .relaxed)
                if exchanged { return MemoryHold(bytes: bytes) }
                current = original
            }
        }
        let total = heldBytes.wrappingAdd(bytes, ordering: .relaxed).newValue
        if total > queryMemoryBytesMax {
            heldBytes.wrappingSubtract(bytes, ordering: .relaxed)
            throw QueryError(.exceededMemoryLimitNodeWide, "the node's memory for queries (\(queryMemoryBytesMax / (1024 * 1024)) MB) is in use by other operations and cursors; retry later")
        }
        return MemoryHold(bytes: bytes)
    }

    /// Memory counted against the node-wide cap until this is released (or deallocated).
    public final class MemoryHold: Sendable {
        private let bytes: Int
        fileprivate init(bytes: Int) { self.bytes = bytes }
        deinit { OperationContext.heldBytes.wrappingSubtract(bytes, ordering: .relaxed) }
    }

    /// Returns everything this operation reserved (when it ends).
    public func releaseMemory() {
        let bytes = reserved.exchange(0, ordering: .relaxed)
        if bytes > 0 { Self.heldBytes.wrappingSubtract(bytes, ordering: .relaxed) }
    }

    deinit { releaseMemory() }

    /// Asks the operation to stop at its next checkpoint.
    public func cancel(_ reason: Cancellation) {
        _ = cancelled.compareExchange(expected: 0, desired: reason.rawValue, ordering: .relaxed)
    }

    public var isCancelled: Bool { cancelled.load(ordering: .relaxed) != 0 }

    /// Throws if the operation was cancelled or is past its deadline.
    public func check() throws(QueryError) {
        switch cancelled.load(ordering: .relaxed) {
        case 0: break
        case Cancellation.shutdown.rawValue: throw QueryError(.interruptedAtShutdown, "interrupted at shutdown")
        default: throw QueryError(.interrupted, "operation was interrupted")
        }
        if let deadlineNanoseconds, MonotonicTime.nowNanoseconds() > deadlineNanoseconds {
            throw QueryError(.maxTimeMSExpired, "operation exceeded time limit")
        }
    }

    // MARK: - The thread's current operation

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    private static let counterKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// The operation whose work this thread is doing, if any.
    public static var current: OperationContext? {
        guard let pointer = pthread_getspecific(key) else { return nil }
        return Unmanaged<OperationContext>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// Runs `body` with `operation` as the thread's current operation.
    public static func withCurrent<T, E: Error>(_ operation: OperationContext?, _ body: () throws(E) -> T) throws(E) -> T {
        guard let operation else { return try body() }
        let previous = pthread_getspecific(key)
        pthread_setspecific(key, Unmanaged.passUnretained(operation).toOpaque())
        defer { pthread_setspecific(key, previous) }
        return try withExtendedLifetime(operation) { () throws(E) -> T in try body() }
    }

    /// Whether the current operation was cancelled or is past its deadline, for loops that
    /// cannot throw (geometry): they stop early, and the next `checkpoint` reports why.
    public static var shouldStop: Bool {
        guard let pointer = pthread_getspecific(key) else { return false }
        let operation = Unmanaged<OperationContext>.fromOpaque(pointer).takeUnretainedValue()
        do throws(QueryError) {
            try operation.check()
            return false
        } catch {
            return true
        }
    }

    /// Called in every loop over documents: checks the current operation's flag every time
    /// (one atomic load) and its clock every 64 calls.
    @inline(__always)
    public static func checkpoint() throws(QueryError) {
        guard let pointer = pthread_getspecific(key) else { return }
        let operation = Unmanaged<OperationContext>.fromOpaque(pointer).takeUnretainedValue()
        if operation.isCancelled { try operation.check() }
        if let budget = operation.documentsExaminedMax {
            operation.documentsExamined += 1
            if operation.documentsExamined > budget {
                throw QueryError(.operationFailed, "the operation examined more than \(budget) documents, the limit set by --max-documents-examined")
            }
        }
        let count = Int(bitPattern: pthread_getspecific(counterKey)) &+ 1
        pthread_setspecific(counterKey, UnsafeRawPointer(bitPattern: count))
        if count & 63 == 0 { try operation.check() }
    }
}
