import StratosCore

/// The text of a key file: a name, the DID and the 32-byte Ed25519 seed in hexadecimal, one
/// `field: value` per line. Plain text so an operator can see which identity a file holds; the
/// file itself must be mode 0600 (the CLI and node write it so and refuse wider modes).
public enum KeyFile {
    private static let header = "stratosdb-ed25519-key v1"

    /// The file text for a key.
    public static func encode(name: String, key: SigningKey) -> String {
        "\(header)\nname: \(name)\ndid: \(key.did)\nseed: \(Hex.encode(key.seed))\n"
    }

    /// Reads a key file, checking that the seed matches the DID it names.
    public static func decode(_ text: String) throws(SpaceOwnershipError) -> (name: String, key: SigningKey) {
        var fields: [String: String] = [:]
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.first.map(String.init) == header else {
            throw SpaceOwnershipError(.invalidKeyFile, "not a StratosDB key file")
        }
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingPrefix(" ").description
        }
        guard let name = fields["name"], let didText = fields["did"], let seedText = fields["seed"],
            let seed = try? Hex.decode(seedText), let key = try? SigningKey(seed: seed)
        else {
            throw SpaceOwnershipError(.invalidKeyFile, "key file is missing its name, did or seed")
        }
        guard key.did.string == didText else {
            throw SpaceOwnershipError(.invalidKeyFile, "key file's seed does not match its did")
        }
        return (name, key)
    }
}
