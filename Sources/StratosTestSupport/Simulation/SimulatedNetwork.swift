/// A seeded model of an unreliable network: loss, delay, duplication (which reorders too) and
/// partitions, all drawn from the simulation's generator so a seed replays exactly.
public struct NetworkFaults: Sendable {
    /// Chance a message is lost, in percent.
    public var dropPercent = 0
    /// Chance a message is delivered twice, in percent.
    public var duplicatePercent = 0
    /// Delivery delay, uniformly in this range (milliseconds of virtual time).
    public var delayMilliseconds: ClosedRange<Int64> = 1...10
    /// Nodes in different groups cannot reach each other; empty means fully connected.
    public var partition: [Set<Int>] = []

    public init() {}

    /// A well-behaved network.
    public static let healthy = NetworkFaults()

    func connected(_ a: Int, _ b: Int) -> Bool {
        guard !partition.isEmpty else { return true }
        return partition.contains { $0.contains(a) && $0.contains(b) }
    }
}

/// A min-heap of timed events with a tie-breaking sequence number: equal times run in the
/// order they were scheduled, which keeps a run deterministic.
struct EventQueue<Event> {
    private var heap: [(time: Int64, sequence: UInt64, event: Event)] = []
    private var sequence: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }

    mutating func push(_ event: Event, at time: Int64) {
        sequence += 1
        heap.append((time, sequence, event))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard precedes(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (time: Int64, event: Event)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count, precedes(heap[left], heap[smallest]) { smallest = left }
            if right < heap.count, precedes(heap[right], heap[smallest]) { smallest = right }
            guard smallest != parent else { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        return (top.time, top.event)
    }

    private func precedes(_ a: (time: Int64, sequence: UInt64, event: Event), _ b: (time: Int64, sequence: UInt64, event: Event)) -> Bool {
        a.time != b.time ? a.time < b.time : a.sequence < b.sequence
    }
}
