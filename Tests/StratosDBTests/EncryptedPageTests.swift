import CSodium
import CStratosVFS
import Foundation
import QueryEngine
import Testing

/// The encrypting VFS's page format, checked from outside it: every 4 KiB page of a database file
/// must open with libsodium's own `crypto_aead_xchacha20poly1305_ietf_decrypt_detached`, given the
/// key, the 24-byte nonce and 16-byte tag at the page's end, and the additional data (file kind 1,
/// then the page's byte offset, big-endian). The VFS seals through OpenSSL's ChaCha20-Poly1305
/// under an HChaCha20 subkey; this pins that the bytes are libsodium's, so files written before
/// and after that change open with either.
@Suite struct EncryptedPageTests {
    @Test func everyPageOpensWithLibsodiumAndHoldsNoPlaintext() throws {
        #expect(stratos_vfs_register() == 0)
        // Debian's libcrypto passes the VFS's check at registration, so OpenSSL seals here.
        #expect(String(cString: stratos_vfs_page_cipher()) == "openssl")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pages-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let name = "pages-\(UUID().uuidString).sqlite"
        let path = directory.appendingPathComponent(name).path
        var key = [UInt8](repeating: 0, count: 32)
        randombytes_buf(&key, 32)
        #expect(stratos_vfs_set_key(name, key) == 0)
        defer { _ = stratos_vfs_set_key(name, nil) }

        let secret = "needle-\(UUID().uuidString)"
        do {
            let store = try DatabaseStore(name: "pages", path: path, reservedBytesPerPage: Int32(stratos_vfs_reserved_bytes()))
            try store.begin()
            for index in 0..<200 {
                let document: BSONDocument = ["_id": .int32(Int32(index)), "note": .string("\(secret) \(index)"), "pad": .string(String(repeating: "x", count: 300))]
                _ = try store.insert(document, into: "c")
            }
            try store.commit()
        }  // Closing checkpoints the write-ahead log into the file.

        let file = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let pageSize = Int(stratos_vfs_page_size())
        let reserved = Int(stratos_vfs_reserved_bytes())
        #expect(file.count % pageSize == 0 && file.count / pageSize > 10)
        #expect(!file.windowsContain(Array(secret.utf8)))
        var plaintext: [UInt8] = []
        for start in stride(from: 0, to: file.count, by: pageSize) {
            let page = Array(file[start..<start + pageSize])
            let sealedCount = pageSize - reserved
            let nonce = Array(page[sealedCount..<sealedCount + 24])
            let tag = Array(page[sealedCount + 24..<pageSize])
            let aad: [UInt8] = [1] + (0..<8).map { UInt8(truncatingIfNeeded: UInt64(start) >> (56 - 8 * $0)) }
            var opened = [UInt8](repeating: 0, count: sealedCount)
            let status = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                &opened, nil, page, UInt64(sealedCount), tag, aad, UInt64(aad.count), nonce, key)
            #expect(status == 0, "page at \(start) does not open with libsodium")
            plaintext += opened
        }
        #expect(Array(plaintext.prefix(16)) == Array("SQLite format 3\0".utf8))
        #expect(plaintext.windowsContain(Array(secret.utf8)))
    }
}

extension EncryptedPageTests {
    /// A transaction larger than the page cache spills pages into the WAL before it commits and
    /// then writes some of them again; at commit SQLite rewrites the frames' checksums, writing
    /// headers alone (after reading each frame). The VFS must not hold such a header back (it
    /// holds a frame's header to write it with its page): a crash right after the commit must
    /// find the commit frame's header on disk, or recovery drops the whole transaction.
    @Test func aSpilledTransactionSurvivesACrashRightAfterItsCommit() throws {
        #expect(stratos_vfs_register() == 0)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("spill-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var key = [UInt8](repeating: 0, count: 32)
        randombytes_buf(&key, 32)
        let name = "spill-\(UUID().uuidString).sqlite"
        let copyName = "copy-\(UUID().uuidString).sqlite"
        let path = directory.appendingPathComponent(name).path
        let copy = directory.appendingPathComponent(copyName).path
        #expect(stratos_vfs_set_key(name, key) == 0)
        #expect(stratos_vfs_set_key(copyName, key) == 0)
        defer {
            _ = stratos_vfs_set_key(name, nil)
            _ = stratos_vfs_set_key(copyName, nil)
        }
        let store = try DatabaseStore(name: "spill", path: path, reservedBytesPerPage: Int32(stratos_vfs_reserved_bytes()))
        try store.sqlite.execute("PRAGMA cache_size=10")
        try store.begin()
        for index in 0..<3_000 {
            let document: BSONDocument = ["_id": .int32(Int32(index)), "pad": .string(String(repeating: "y", count: 200))]
            _ = try store.insert(document, into: "c")
        }
        try store.commit()
        // What a crash leaves: the file and its log as they are now, the store still open.
        try crashCopy(path, to: copy)
        let reopened = try DatabaseStore(name: "spill", path: copy, reservedBytesPerPage: Int32(stratos_vfs_reserved_bytes()))
        let count = try reopened.sqlite.statement("SELECT count(*) FROM \(reopened.collection("c")?.tableName ?? "missing")")
        _ = try count.step()
        #expect(count.int64(0) == 3_000)
        count.reset()
        withExtendedLifetime(store) {}
    }
}

extension Array where Element == UInt8 {
    fileprivate func windowsContain(_ needle: [UInt8]) -> Bool {
        guard needle.count <= count else { return false }
        for start in 0...(count - needle.count) where self[start] == needle[0] && Array(self[start..<start + needle.count]) == needle {
            return true
        }
        return false
    }
}
