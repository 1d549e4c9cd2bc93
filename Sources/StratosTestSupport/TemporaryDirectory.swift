import Foundation
import StratosCore

/// A directory under the system temporary folder that is removed when the value is released.
public final class TemporaryDirectory: Sendable {
    /// The directory's path.
    public let path: String

    /// Creates a fresh, empty directory.
    public init(prefix: String = "stratosdb-test") throws {
        let name = "\(prefix)-\(Hex.encode(SecureRandom.bytes(count: 8)))"
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent(name)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A manually advanced clock for deterministic tests.
public final class MockWallClock: WallClock, @unchecked Sendable {
    // Safe: every access to `milliseconds` goes through `lock`.
    private let lock = NSLock()
    private var milliseconds: Int64

    /// Starts at `start` milliseconds since the epoch.
    public init(start: Int64 = 1_700_000_000_000) { milliseconds = start }

    public func nowMilliseconds() -> Int64 { lock.withLock { milliseconds } }

    /// Moves time forward.
    public func advance(milliseconds delta: Int64) { lock.withLock { milliseconds += delta } }
}
