import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock on `<data-dir>/node.lock`, held by a running node for its whole life, so
/// two nodes never share a data directory and offline tools that replace files (`space
/// rebuild`) refuse to run under a live node. The kernel releases it when the process exits,
/// even after `kill -9`.
public final class NodeLock: Sendable {
    private let descriptor: Int32

    /// Takes the lock; nil when another process holds it.
    public init?(dataDirectory: String) {
        try? FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let path = (dataDirectory as NSString).appendingPathComponent("node.lock")
        let descriptor = open(path, O_RDWR | O_CREAT, 0o600)
        guard descriptor >= 0 else { return nil }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            return nil
        }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }
}
