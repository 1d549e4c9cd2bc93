import Foundation

/// Where a node listens and who it is, written to `<data-dir>/node.json` when it is ready, so
/// the CLI can mint tokens for it (the node's DID is their audience) and print ready URIs.
public struct NodeAddress: Codable, Sendable {
    /// The node's did:key.
    public var did: String
    /// The host part of its URIs.
    public var host: String
    /// Its port.
    public var port: Int
    /// Whether it speaks TLS (URIs then need `tls=true`).
    public var tls: Bool?

    /// Creates an address record.
    public init(did: String, host: String, port: Int, tls: Bool = false) {
        self.did = did
        self.host = host
        self.port = port
        self.tls = tls
    }

    static func path(_ dataDirectory: String) -> String { (dataDirectory as NSString).appendingPathComponent("node.json") }

    /// Writes the record (best effort: the node works without it).
    public func write(dataDirectory: String) {
        guard let data = try? JSONEncoder().encode(self) else { return }
        try? data.write(to: URL(fileURLWithPath: Self.path(dataDirectory)), options: .atomic)
    }

    /// Reads the record of a data directory, if the node has started once.
    public static func read(dataDirectory: String) -> NodeAddress? {
        guard let data = FileManager.default.contents(atPath: path(dataDirectory)) else { return nil }
        return try? JSONDecoder().decode(NodeAddress.self, from: data)
    }
}
