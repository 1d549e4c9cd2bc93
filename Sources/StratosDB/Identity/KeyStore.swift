import Foundation
import QueryEngine
import SpaceOwnership
import StratosCore

#if canImport(Glibc)
import Glibc
#endif

/// The key files of a data directory: `<data-dir>/keys/<name>.key`, each mode 0600 in a 0700
/// folder. Files readable by group or others are refused, as ssh refuses such private keys.
public struct KeyStore: Sendable {
    /// The folder holding the key files.
    public let directory: String

    /// The key store of a data directory (the folder is created on first write).
    public init(dataDirectory: String) {
        directory = (dataDirectory as NSString).appendingPathComponent("keys")
    }

    /// Whether `name` is usable as a key name: 1 to 64 letters, digits, `-` or `_`.
    public static func isValidName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count)
            && name.unicodeScalars.allSatisfy { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "-" || $0 == "_" }
    }

    /// The path of a named key, or `reference` itself when it names a file (contains a `/`).
    public func path(for reference: String) -> String {
        reference.contains("/") ? reference : (directory as NSString).appendingPathComponent("\(reference).key")
    }

    /// Creates a new key named `name`; refuses to overwrite an existing one.
    public func create(name: String) throws(QueryError) -> SigningKey {
        guard Self.isValidName(name) else {
            throw QueryError(.badValue, "key names are 1 to 64 letters, digits, '-' or '_'")
        }
        let key = SigningKey.generate()
        try writePrivateFile(path(for: name), contents: KeyFile.encode(name: name, key: key), exclusive: true)
        return key
    }

    /// Loads a key by name or path.
    public func load(_ reference: String) throws(QueryError) -> SigningKey {
        let file = path(for: reference)
        // One descriptor for the checks and the read (no symlinks, no swap between them).
        let descriptor = open(file, O_RDONLY | O_NOFOLLOW)
        guard descriptor >= 0 else { throw QueryError(.badValue, "no key '\(reference)' (looked for \(file))") }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw QueryError(.badValue, "key file \(file) is not a regular file")
        }
        guard info.st_mode & 0o077 == 0, info.st_uid == getuid() else {
            throw QueryError(.badValue, "key file \(file) must belong to you and be private (mode \(String(info.st_mode & 0o777, radix: 8))); run chmod 600 on it")
        }
        var bytes = [UInt8](repeating: 0, count: 4096)
        let count = read(descriptor, &bytes, bytes.count)
        guard count > 0, let text = String(validating: bytes.prefix(count), as: UTF8.self) else {
            throw QueryError(.badValue, "cannot read key file \(file)")
        }
        do {
            return try KeyFile.decode(text).key
        } catch {
            throw QueryError(.badValue, "\(file): \(error.message)")
        }
    }

    /// Loads `name`, creating it on first use (the node's own identities).
    public func loadOrCreate(name: String) throws(QueryError) -> SigningKey {
        FileManager.default.fileExists(atPath: path(for: name)) ? try load(name) : try create(name: name)
    }

    /// The names and DIDs of the stored keys.
    public func list() -> [(name: String, did: DID)] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return files.filter { $0.hasSuffix(".key") }.sorted().compactMap { file in
            let name = String(file.dropLast(4))
            return (try? load(name)).map { (name, $0.did) }
        }
    }

    /// Writes a secret file: mode 0600 from the moment it exists, in a 0700 folder.
    public static func writePrivateFile(_ path: String, contents: String, exclusive: Bool) throws(QueryError) {
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty && !FileManager.default.fileExists(atPath: folder) {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw QueryError(.badValue, "cannot create \(folder)")
            }
        }
        let flags = O_WRONLY | O_CREAT | (exclusive ? O_EXCL : O_TRUNC)
        let descriptor = open(path, flags, 0o600)
        guard descriptor >= 0 else {
            throw QueryError(.badValue, errno == EEXIST ? "\(path) already exists" : "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        fchmod(descriptor, 0o600)
        let bytes = Array(contents.utf8)
        guard write(descriptor, bytes, bytes.count) == bytes.count, fsync(descriptor) == 0 else {
            throw QueryError(.badValue, "cannot write \(path)")
        }
    }

    private func writePrivateFile(_ path: String, contents: String, exclusive: Bool) throws(QueryError) {
        try Self.writePrivateFile(path, contents: contents, exclusive: exclusive)
    }
}
