import Foundation
import QueryEngine

/// Copies a live database's file and log, as a crash would leave them (every committed
/// transaction in the log, whatever the writer still held only in memory lost).
func crashCopy(_ path: String, to copy: String) throws {
    for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: path + suffix) {
        try FileManager.default.copyItem(atPath: path + suffix, toPath: copy + suffix)
    }
}

/// The first column of the first row `sql` returns from the database at `path`.
func scalar(_ path: String, _ sql: String) throws -> Int64 {
    let statement = try SQLiteConnection(path: path).statement(sql)
    defer { statement.reset() }
    _ = try statement.step()
    return statement.int64(0)
}
