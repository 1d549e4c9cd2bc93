import Foundation
import QueryEngine
import SpaceOwnership
import StratosCore

/// Reads and verifies an archive on a thread of its own, a few records ahead of the thread that
/// builds the space: reading, signature and hash checks, opening payloads, and decoding every
/// operation and document (`PreparedCommit`) run on one core while the builder's SQLite writes,
/// index keys and state map run on the other.
///
/// The reading thread owns the reader and the verifier until it ends; the builder sees only what
/// it hands over (`Item`), through a queue of at most `depth` records, so memory stays bounded by
/// a few commits. `next()` rethrows the reading thread's first error; `close()` stops it early
/// (the builder failed) and waits for it to let go of the archive.
final class ArchiveImportPipeline: @unchecked Sendable {
    /// A record the verifier accepted, with what the builder needs from the verifier at that
    /// point (the space key, once a sealed copy opened).
    struct Item {
        let record: ArchiveRecord
        let spaceKey: [UInt8]?
        /// A commit's decoded operations and documents (nil when its payload could not be opened).
        let prepared: PreparedCommit?
    }

    /// Records read ahead at most (each commit up to a few MB once decoded).
    static let depth = 4

    private let reader: ArchiveReader
    private let verifier: ArchiveVerifier
    private let condition = NSCondition()
    // Guarded by `condition`:
    private var queue: [Item] = []
    private var failure: (any Error)?
    private var summary: ArchiveVerifier.Summary?
    private var readerDone = false
    private var stopping = false
    /// Commits the builder is done with, freed on the reading thread (`recycle`).
    private var spent: [Item] = []

    /// Starts reading `reader` on a new thread, checking each record with `verifier`.
    init(reader: ArchiveReader, verifier: ArchiveVerifier) {
        self.reader = reader
        self.verifier = verifier
        let thread = Thread { [self] in self.run() }
        thread.name = "stratosdb-archive-reader"
        thread.start()
    }

    /// The next verified record, nil after the last; throws the first problem the reading
    /// thread found (in archive order: every record before it was handed over).
    func next() throws -> Item? {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty && !readerDone { condition.wait() }
        if !queue.isEmpty {
            let item = queue.removeFirst()
            condition.broadcast()
            return item
        }
        if let failure { throw failure }
        return nil
    }

    /// The verifier's summary, once `next()` returned nil.
    func finish() throws -> ArchiveVerifier.Summary {
        condition.lock()
        defer { condition.unlock() }
        guard readerDone, queue.isEmpty, let summary else {
            throw QueryError(.internalError, "the archive was not read to its end")
        }
        return summary
    }

    /// Hands back an item the builder is done with, so the reading thread frees it: a decoded
    /// commit is thousands of small allocations, and freeing them is work the builder's thread
    /// need not do. (Freed one batch later, when the builder no longer holds it either.)
    func recycle(_ item: Item) {
        condition.lock()
        spent.append(item)
        condition.unlock()
    }

    /// Stops the reading thread (if it still runs) and waits until it has.
    func close() {
        condition.lock()
        stopping = true
        queue.removeAll()
        condition.broadcast()
        while !readerDone { condition.wait() }
        condition.unlock()
    }

    private func run() {
        var failure: (any Error)?
        var summary: ArchiveVerifier.Summary?
        var freeing: [Item] = []
        do {
            while let record = try reader.next() {
                // Frees what the builder handed back a batch ago (it has let go of that by now), and
                // keeps the last batch until the next record.
                freeing.removeAll()
                freeing = takeSpent()
                try verifier.check(record)
                var prepared: PreparedCommit?
                if case .commit(let commit, _) = record, let plain = verifier.lastPayload {
                    prepared = try PreparedCommit(commit: commit, payload: plain)
                }
                guard hand(Item(record: record, spaceKey: verifier.openedSpaceKey, prepared: prepared)) else { break }
            }
            summary = try verifier.finish()
        } catch {
            failure = error
        }
        condition.lock()
        self.failure = failure
        self.summary = summary
        readerDone = true
        condition.broadcast()
        condition.unlock()
    }

    private func takeSpent() -> [Item] {
        condition.lock()
        defer { condition.unlock() }
        let items = spent
        spent = []
        return items
    }

    /// Queues an item, waiting while the queue is full; false once the builder stopped.
    private func hand(_ item: Item) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while queue.count >= Self.depth && !stopping { condition.wait() }
        guard !stopping else { return false }
        queue.append(item)
        condition.broadcast()
        return true
    }
}
