import ArgumentParser
import Foundation
import Ledger
import SpaceOwnership
import StratosCore
import StratosDB

#if canImport(Glibc)
import Glibc
#endif

/// What `cluster up` started, kept in `<data-dir>/cluster/cluster.json`.
struct ClusterFile: Codable {
    struct Node: Codable {
        var index: Int
        var directory: String
        var port: Int
        var peerPort: Int
        var did: String
        var pid: Int32?
    }
    var nodes: [Node]
    var blockInterval: String

    static func path(_ clusterDirectory: String) -> String { (clusterDirectory as NSString).appendingPathComponent("cluster.json") }

    static func read(_ clusterDirectory: String) throws -> ClusterFile {
        guard let data = FileManager.default.contents(atPath: path(clusterDirectory)) else {
            throw CLIError("no cluster in \(clusterDirectory): run `stratosdb cluster up` first")
        }
        return try JSONDecoder().decode(ClusterFile.self, from: data)
    }

    func write(_ clusterDirectory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: Self.path(clusterDirectory)), options: .atomic)
    }
}

/// `stratosdb cluster up|status|down|restart`: a network of real nodes on this machine.
struct ClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Run a network of StratosDB nodes on this machine (loopback), all validators.",
        subcommands: [Up.self, Status.self, Down.self, Restart.self])

    static func clusterDirectory(_ dataDir: String) -> String {
        (URL(fileURLWithPath: dataDir).standardizedFileURL.path as NSString).appendingPathComponent("cluster")
    }

    static func isAlive(_ pid: Int32?) -> Bool {
        guard let pid, pid > 0 else { return false }
        if kill(pid, 0) != 0 { return false }
        // A zombie (exited, not yet reaped by its parent) still answers kill(0): check its state.
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") {
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.first == "Z" { return false }
        }
        return true
    }

    /// A free loopback TCP port, from the kernel.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CLIError("cannot open a socket to find a free port") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw CLIError("cannot find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Starts node `node` as a detached process (its own session, so it outlives this command),
    /// with its output in `<node>/server.log`; waits until it is ready.
    static func start(_ node: inout ClusterFile.Node, cluster: ClusterFile) throws {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        let resolved = FileManager.default.isExecutableFile(atPath: executable) ? executable : "/proc/self/exe"
        let binary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? resolved
        let peers = cluster.nodes.filter { $0.index != node.index }.map { "127.0.0.1:\($0.peerPort)" }.joined(separator: ",")
        let arguments = [
            binary, "serve", "--data-dir", node.directory, "--port", String(node.port), "--peer-port", String(node.peerPort),
            "--peers", peers, "--block-interval", cluster.blockInterval,
        ]
        let readyFile = (node.directory as NSString).appendingPathComponent("node.json")
        try? FileManager.default.removeItem(atPath: readyFile)
        let log = (node.directory as NSString).appendingPathComponent("server.log")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // POSIX_SPAWN_SETSID (glibc 2.26+; the macro needs _GNU_SOURCE, which Swift does not set).
        posix_spawnattr_setflags(&attributes, 0x80)
        var pid: pid_t = 0
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let status = posix_spawn(&pid, binary, &actions, &attributes, argv, environ)
        guard status == 0 else { throw CLIError("cannot start node \(node.index): \(String(cString: strerror(status)))") }
        node.pid = pid
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let address = NodeAddress.read(dataDirectory: node.directory), address.port == node.port { return }
            if !isAlive(pid) { throw CLIError("node \(node.index) exited at start; see \(log)") }
            usleep(50_000)
        }
        throw CLIError("node \(node.index) did not become ready within 60 s; see \(log)")
    }

    static func stop(_ node: inout ClusterFile.Node) {
        guard let pid = node.pid, isAlive(pid) else {
            node.pid = nil
            return
        }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline, isAlive(pid) { usleep(50_000) }
        if isAlive(pid) { kill(pid, SIGKILL) }
        node.pid = nil
    }

    static func uri(_ node: ClusterFile.Node) -> String {
        let password = (try? String(contentsOfFile: NodeIdentity.passwordFile(dataDirectory: node.directory), encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        return "mongodb://owner:\(password)@127.0.0.1:\(node.port)/"
    }

    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start N validators on loopback ports with equal stake and print one mongodb:// URI per node.",
            discussion: "Nodes are numbered from 0; node i keeps its data in <data-dir>/cluster/node<i>. Running `up` again restarts a stopped cluster with its chain.")
        @Option(name: .long, help: "Number of nodes (validators).") var nodes: Int = 4
        @Option(name: .long, help: "The directory that holds the cluster.") var dataDir: String = "./.stratosdb"
        @Option(name: .long, help: "Time between blocks (for example 1s, 200ms).") var blockInterval: String = "1s"

        func validate() throws {
            guard (1...LedgerLimits.validatorsCountMax).contains(nodes) else { throw ValidationError("--nodes must be 1...\(LedgerLimits.validatorsCountMax)") }
            guard let interval = try? DurationText.milliseconds(blockInterval), (10...3_600_000).contains(interval) else {
                throw ValidationError("--block-interval must be a duration from 10ms to 1h (for example 1s or 200ms)")
            }
        }

        func run() throws {
            let directory = ClusterCommand.clusterDirectory(dataDir)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            var cluster: ClusterFile
            if let existing = try? ClusterFile.read(directory) {
                guard !existing.nodes.contains(where: { ClusterCommand.isAlive($0.pid) }) else {
                    throw CLIError("the cluster in \(directory) is already up; `stratosdb cluster down` stops it")
                }
                guard existing.nodes.count == nodes else {
                    throw CLIError("the cluster in \(directory) has \(existing.nodes.count) nodes; remove the directory to start a different one")
                }
                cluster = existing
                cluster.blockInterval = blockInterval
            } else {
                var members: [ClusterFile.Node] = []
                var dids: [DID] = []
                for index in 0..<nodes {
                    let nodeDirectory = (directory as NSString).appendingPathComponent("node\(index)")
                    try FileManager.default.createDirectory(atPath: nodeDirectory, withIntermediateDirectories: true)
                    let key = try KeyStore(dataDirectory: nodeDirectory).loadOrCreate(name: "node")
                    dids.append(key.did)
                    members.append(ClusterFile.Node(
                        index: index, directory: nodeDirectory, port: try ClusterCommand.freePort(), peerPort: try ClusterCommand.freePort(),
                        did: key.did.string, pid: nil))
                }
                let genesis = GenesisFile.network(validators: dids, nowMilliseconds: nowMilliseconds())
                try genesis.write(path: (directory as NSString).appendingPathComponent("genesis.json"))
                for member in members {
                    let ledger = (member.directory as NSString).appendingPathComponent("ledger")
                    try FileManager.default.createDirectory(atPath: ledger, withIntermediateDirectories: true)
                    try genesis.write(path: (ledger as NSString).appendingPathComponent("genesis.json"))
                }
                cluster = ClusterFile(nodes: members, blockInterval: blockInterval)
            }
            try cluster.write(directory)
            for index in cluster.nodes.indices {
                do {
                    try ClusterCommand.start(&cluster.nodes[index], cluster: cluster)
                } catch {
                    try? cluster.write(directory)
                    throw error
                }
                try cluster.write(directory)
            }
            for node in cluster.nodes { emit(ClusterCommand.uri(node)) }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One line per node: state, height, last block hash, peers, validator.")
        @Option(name: .long, help: "The directory that holds the cluster.") var dataDir: String = "./.stratosdb"
        @Flag(name: .long, help: "Print JSON.") var json = false

        func run() throws {
            let directory = ClusterCommand.clusterDirectory(dataDir)
            let cluster = try ClusterFile.read(directory)
            var entries: [[String: Any]] = []
            for node in cluster.nodes {
                let chain = ((node.directory as NSString).appendingPathComponent("ledger") as NSString).appendingPathComponent("chain")
                let state = (try? BlockStore(directory: chain, readOnly: true))?.latestStateOrNil
                let peersPath = ((node.directory as NSString).appendingPathComponent("ledger") as NSString).appendingPathComponent("peers.json")
                var peers: [String] = []
                if let data = FileManager.default.contents(atPath: peersPath),
                    let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                    let list = object["peers"] as? [[String: String]]
                {
                    peers = list.compactMap { $0["did"] }
                }
                let alive = ClusterCommand.isAlive(node.pid)
                let validator = (try? DID(parsing: node.did)).map { state?.validators.contains($0.publicKey) ?? false } ?? false
                entries.append([
                    "node": node.index, "up": alive, "port": node.port, "peerPort": node.peerPort, "did": node.did,
                    "height": state?.height ?? 0, "lastBlockHash": state?.lastBlockID?.hex ?? NSNull(),
                    "peers": alive ? peers : [], "validator": validator,
                ])
            }
            if json {
                let data = try JSONSerialization.data(withJSONObject: ["nodes": entries], options: [.prettyPrinted, .sortedKeys])
                emit(String(decoding: data, as: UTF8.self))
                return
            }
            for entry in entries {
                let hash = (entry["lastBlockHash"] as? String) ?? "none"
                emit("node\(entry["node"]!) \((entry["up"] as? Bool) == true ? "up" : "down") height \(entry["height"]!) hash \(hash) peers \((entry["peers"] as? [String])?.count ?? 0) validator \((entry["validator"] as? Bool) == true ? "yes" : "no") port \(entry["port"]!)")
            }
        }
    }

    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop every node of the cluster (SIGTERM, then SIGKILL after 15 s).")
        @Option(name: .long, help: "The directory that holds the cluster.") var dataDir: String = "./.stratosdb"

        func run() throws {
            let directory = ClusterCommand.clusterDirectory(dataDir)
            var cluster = try ClusterFile.read(directory)
            for index in cluster.nodes.indices { ClusterCommand.stop(&cluster.nodes[index]) }
            try cluster.write(directory)
            emit("stopped \(cluster.nodes.count) nodes")
        }
    }

    struct Restart: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Restart (or start, if it is down) one node and print its URI.")
        @Argument(help: "The node number.") var node: Int
        @Option(name: .long, help: "The directory that holds the cluster.") var dataDir: String = "./.stratosdb"

        func run() throws {
            let directory = ClusterCommand.clusterDirectory(dataDir)
            var cluster = try ClusterFile.read(directory)
            guard cluster.nodes.indices.contains(node) else { throw CLIError("the cluster has nodes 0...\(cluster.nodes.count - 1)") }
            ClusterCommand.stop(&cluster.nodes[node])
            try ClusterCommand.start(&cluster.nodes[node], cluster: cluster)
            try cluster.write(directory)
            emit(ClusterCommand.uri(cluster.nodes[node]))
        }
    }
}

extension BlockStore {
    var latestStateOrNil: ChainState? { (try? latestState()) ?? nil }
}
