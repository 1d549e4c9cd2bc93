import Foundation
import QueryEngine

/// Produces items on a thread of its own, a few ahead of the thread that consumes them. A
/// space's import and rebuild use it so that reading, verifying and decoding commits run on one
/// core while the builder's SQLite writes, index keys and state map run on the other.
///
/// `produce` runs only on the pipeline's thread, until it returns nil or throws, or until the
/// consumer calls `close()`; whatever it uses (an archive reader, a verifier, a statement)
/// belongs to that thread meanwhile, which is why the closure need not be `@Sendable`. Once
/// `next()` has returned nil or thrown, or `close()` has returned, the thread has let go of the
/// closure and of everything it captured, and the consumer may use or release those objects.
///
/// Items wait in a queue bounded two ways: at most `depth` items, and at most `bytesMax` of
/// their `weight` (an item heavier than that alone still passes, one at a time), so memory stays
/// bounded by a few items whatever their size. `close()` stops the producer early (the consumer
/// failed) and waits for it, after the item it is making; the consumer calls it in every case.
final class ReadAheadPipeline<Item: Sendable>: @unchecked Sendable {
    /// Set to nil by the pipeline's thread when it is done (see the type's comment).
    private var produce: (() throws -> Item?)?
    private let weight: (Item) -> Int
    private let depth: Int
    private let bytesMax: Int
    private let condition = NSCondition()
    // Guarded by `condition`:
    private var queue: [Item] = []
    private var queuedBytes = 0
    private var failure: (any Error)?
    private var producerDone = false
    private var stopping = false
    /// Items the consumer is done with, freed on the producer's thread (`recycle`).
    private var spent: [Item] = []

    /// Starts `produce` on a new thread named `name`.
    init(
        name: String, depth: Int = 3, bytesMax: Int = 32 << 20, weight: @escaping (Item) -> Int = { _ in 0 },
        produce: @escaping () throws -> Item?
    ) {
        self.produce = produce
        self.depth = depth
        self.bytesMax = bytesMax
        self.weight = weight
        let thread = Thread { [self] in self.run() }
        thread.name = name
        thread.start()
    }

    /// The next item, nil after the last; throws the producer's error once every item it made
    /// before the error was taken.
    func next() throws -> Item? {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty && !producerDone { condition.wait() }
        if !queue.isEmpty {
            let item = queue.removeFirst()
            queuedBytes -= weight(item)
            condition.broadcast()
            return item
        }
        if let failure { throw failure }
        return nil
    }

    /// Hands back an item the consumer is done with, so the producer's thread frees it: a
    /// decoded commit is thousands of small allocations, and freeing them is work the
    /// consumer's thread need not do. (Freed one item later, when the consumer has let go of it
    /// too; if it has not, it is simply freed by whichever thread lets go last.)
    func recycle(_ item: Item) {
        condition.lock()
        spent.append(item)
        condition.unlock()
    }

    /// Stops the producer if it still runs, and waits until it has returned.
    func close() {
        condition.lock()
        stopping = true
        queue.removeAll()
        queuedBytes = 0
        condition.broadcast()
        while !producerDone { condition.wait() }
        condition.unlock()
    }

    private func run() {
        var failure: (any Error)?
        do {
            var freeing: [Item] = []
            while let item = try produce?() {
                // Frees what the consumer handed back an item ago, and keeps the latest.
                freeing.removeAll()
                freeing = takeSpent()
                guard hand(item) else { break }
            }
        } catch {
            failure = error
        }
        // Lets go of the closure and what it captured before the consumer may go on.
        produce = nil
        condition.lock()
        self.failure = failure
        producerDone = true
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

    /// Queues an item, waiting while the queue is full; false once the consumer stopped.
    private func hand(_ item: Item) -> Bool {
        let itemBytes = weight(item)
        condition.lock()
        defer { condition.unlock() }
        while !stopping && !queue.isEmpty && (queue.count >= depth || queuedBytes + itemBytes > bytesMax) { condition.wait() }
        guard !stopping else { return false }
        queue.append(item)
        queuedBytes += itemBytes
        condition.broadcast()
        return true
    }
}
