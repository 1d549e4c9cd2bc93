#if canImport(Glibc)
import Glibc
#endif

/// A cheap cross-process "the catalog changed" flag: eight bytes in `<data-dir>/node.sqlite-changed`,
/// mapped shared by every process that opens the catalog (the node and the CLI).
///
/// Each process's catalog connection stores a fresh random value there after each of its
/// commits is in the write-ahead log (SQLite's WAL hook runs after the commit), so a reader
/// that sees the same value as last time knows no catalog commit happened since it looked. This
/// replaces a `PRAGMA data_version` (a read transaction, several `fcntl` locks, about 9 µs) on
/// every command with one load from memory. Random values rather than a counter: two writers
/// racing a read-modify-write could otherwise store the same value and hide the second change.
///
/// Anything that edits `node.sqlite` without this catalog (the `sqlite3` shell) does not set it;
/// the catalog still reads `PRAGMA data_version` at least once a second (`NodeCatalog`).
final class CatalogChangeSignal: @unchecked Sendable {
    // @unchecked: the mapping is shared memory written by other processes; loads and stores are
    // single aligned 8-byte accesses, and a torn or stale value only costs one extra check.
    private let word: UnsafeMutablePointer<UInt64>

    /// Maps the flag file of `catalogPath`; nil when it cannot (the catalog then checks
    /// `PRAGMA data_version` on every command, as before).
    init?(catalogPath: String) {
        let descriptor = open(catalogPath + "-changed", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return nil }
        if status.st_size < 8, ftruncate(descriptor, 8) != 0 { return nil }
        guard let mapped = mmap(nil, 8, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0), mapped != MAP_FAILED else { return nil }
        word = mapped.bindMemory(to: UInt64.self, capacity: 1)
    }

    deinit { munmap(word, 8) }

    /// The value now.
    var current: UInt64 { word.pointee }

    /// Announces a committed change.
    func signal() { word.pointee = UInt64.random(in: 1...UInt64.max) }
}
