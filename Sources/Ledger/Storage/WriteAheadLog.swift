#if canImport(Glibc)
import Glibc
#endif
import StratosCore

/// The consensus write-ahead log: one file of framed records (`length`, CRC-32C, bytes).
///
/// A validator appends its own signatures with `sync: true` (fsync before the message leaves
/// the node, CometBFT `spec/consensus/wal.md`) and received messages without. Reading stops at
/// the first record that is short or fails its checksum — a torn tail from a crash — and cuts
/// the file there, so the next append starts on a clean boundary.
public final class WriteAheadLog: @unchecked Sendable {
    // Safe: used only from the ledger's event loop.
    private let descriptor: Int32
    public let path: String

    public init(path: String) throws(LedgerError) {
        self.path = path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LedgerError(.storage, "cannot open the write-ahead log \(path) (errno \(errno))") }
        descriptor = fd
    }

    deinit { close(descriptor) }

    /// Reads every whole record, truncating a torn tail.
    public func readAll() throws(LedgerError) -> [WALRecord] {
        let size = lseek(descriptor, 0, SEEK_END)
        guard size >= 0 else { throw LedgerError(.storage, "cannot size the write-ahead log") }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, off_t(offset)) }
            guard count > 0 else { break }
            offset += count
        }
        var records: [WALRecord] = []
        var position = 0
        while position + 8 <= offset {
            let length = Int(bytes[position..<position + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            let checksum = bytes[position + 4..<position + 8].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            guard length <= LedgerLimits.walRecordBytesMax, position + 8 + length <= offset else { break }
            let payload = Array(bytes[position + 8..<position + 8 + length])
            guard CRC32C.checksum(payload) == checksum, let record = try? WALRecord(decoding: payload) else { break }
            records.append(record)
            position += 8 + length
        }
        if position < size {
            guard ftruncate(descriptor, off_t(position)) == 0, fsync(descriptor) == 0 else {
                throw LedgerError(.storage, "cannot cut the torn tail of the write-ahead log")
            }
        }
        return records
    }

    /// Appends a record; with `sync`, it (and everything before it) is on disk when this returns.
    public func append(_ record: WALRecord, sync: Bool) throws(LedgerError) {
        let payload = record.encoded
        var frame: [UInt8] = []
        frame.reserveCapacity(payload.count + 8)
        withUnsafeBytes(of: UInt32(payload.count).bigEndian) { frame.append(contentsOf: $0) }
        withUnsafeBytes(of: CRC32C.checksum(payload).bigEndian) { frame.append(contentsOf: $0) }
        frame.append(contentsOf: payload)
        let end = lseek(descriptor, 0, SEEK_END)
        var written = 0
        while written < frame.count {
            let count = frame[written...].withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, off_t(Int(end) + written)) }
            guard count > 0 else { throw LedgerError(.storage, "cannot write the write-ahead log (errno \(errno))") }
            written += count
        }
        if sync, fdatasync(descriptor) != 0 { throw LedgerError(.storage, "cannot sync the write-ahead log (errno \(errno))") }
    }

    /// Empties the log (the blocks its records were for are stored).
    public func reset() throws(LedgerError) {
        guard ftruncate(descriptor, 0) == 0, fsync(descriptor) == 0 else { throw LedgerError(.storage, "cannot reset the write-ahead log") }
    }
}
