import ArgumentParser
import Foundation
import Logging
import QueryEngine
import ServiceLifecycle
import SpaceOwnership
import StoredProcedures
import StratosDB
import UnixSignals

@main
struct StratosCommand: AsyncParsableCommand {
    static func main() async {
        // Everything the node and the CLI create (data directory, SQLite files, keys) is
        // private to the user running them: user data, key material and SCRAM verifiers.
        umask(0o077)
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "stratosdb",
        abstract: "StratosDB: a document database of user-owned encrypted spaces, spoken to over the MongoDB wire protocol.",
        version: StratosVersion.current,
        subcommands: [
            Serve.self, KeyCommand.self, SpaceCommand.self, TokenCommand.self, GrantCommand.self, RevokeCommand.self,
            UserCommand.self, VerifyProofCommand.self, LedgerCommand.self, ClusterCommand.self, TransferCommand.self,
            StakeCommand.self, UnstakeCommand.self, ResourceNodeCommand.self, BanCommand.self, UnjailCommand.self, ProcedureCommand.self,
        ])
}

/// `stratosdb serve`: a single node that plays every role.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a single StratosDB node and print its mongodb:// connection string.",
        discussion: """
            The node speaks the MongoDB wire protocol: connect with pymongo, mongosh or any MongoDB driver.
            The first start creates the node's identity, a local owner identity and a SCRAM user 'owner'
            with a random password (kept in <data-dir>/keys/owner.password, mode 0600); the ready line
            prints a mongodb:// URI with that login. Without TLS, serve binds only loopback addresses
            unless --allow-plaintext is given.
            """)

    @Option(name: .long, help: "Directory for the node's data.")
    var dataDir: String = "./.stratosdb"

    @Option(name: .long, help: "Address to listen on (loopback only, unless TLS is on or --allow-plaintext is given).")
    var bind: String = "127.0.0.1"

    @Option(name: .long, help: "TCP port to listen on (0 picks a free port).")
    var port: Int = 27017

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(name: .long, help: "Durability of acknowledged writes: 'normal' survives a crash of the process, 'full' also survives power loss (fsync before every acknowledgement).")
    var sync: String = "normal"

    @Option(name: .long, help: "TLS certificate chain (PEM). With --tls-key, every connection uses TLS.")
    var tlsCert: String?

    @Option(name: .long, help: "TLS private key (PEM).")
    var tlsKey: String?

    @Option(name: .long, help: "CA certificates (PEM) that client certificates must chain to (mutual TLS).")
    var tlsCa: String?

    @Option(name: .long, help: "Time between ledger blocks (for example 1s, 200ms).")
    var blockInterval: String = "1s"

    @Option(name: .long, help: "How long a space's writes may wait to be sealed together into one signed commit (for example 5ms, at most 1s); 0 signs a commit for every write transaction, as does --sync full (every write durable).")
    var commitWindow: String = "5ms"

    @Option(name: .long, help: "Connections open at once; more are closed on accept.")
    var maxConnections: Int = 1_000

    @Option(name: .long, help: "Connections open at once from one client address.")
    var maxConnectionsPerAddress: Int = 500

    @Option(name: .long, help: "Deadline of reads (find, aggregate, count, distinct, getMore) that give no maxTimeMS, as a duration (for example 30s). Off unless set.")
    var maxOperationTime: String?

    @Option(name: .long, help: "The most documents one operation may visit (scans, pipeline stages); past it the operation fails with OperationFailed (96). Off unless set.")
    var maxDocumentsExamined: Int?

    @Option(name: .long, help: "Memory all running queries may hold for documents (sort buffers, aggregation inputs, $lookup results), in MB; past it a query fails with ExceededMemoryLimit (146).")
    var maxQueryMemory: Int = 1024

    @Option(name: .long, help: "The most fuel (about one unit per WebAssembly instruction) one stored-procedure call may use.")
    var procedureFuelMax: UInt64 = 2_000_000_000

    @Option(name: .long, help: "Wall time of a stored-procedure call or job attempt that gives no maxTimeMS (for example 10s).")
    var procedureTimeMax: String = "10s"

    @Option(name: .long, help: "Linear memory one stored-procedure call may hold, in MB.")
    var procedureMemoryMax: Int = 64

    @Option(name: .long, help: "Seconds between passes of the TTL monitor, which deletes documents past their TTL index's expireAfterSeconds (MongoDB's ttlMonitorSleepSecs).")
    var ttlMonitorSleepSecs: Int = 60

    @Option(name: .long, help: .hidden) var failPoint: [String] = []

    @Flag(name: .long, help: "Offer MongoDB's test commands (configureFailPoint with failCommand) for drivers' own test suites. Loopback only.")
    var enableTestCommands = false

    @Option(name: .long, help: "Port for the validator network (on the --bind address); without it the node runs its chain alone.")
    var peerPort: Int?

    @Option(name: .long, help: "Validators to connect to, as host:port of their peer ports, comma-separated.")
    var peers: String = ""

    @Flag(name: .long, help: "Listen on a non-loopback address without TLS: passwords and tokens then cross the network in the clear.")
    var allowPlaintext = false

    @Flag(name: .long, help: "Turn authentication off (every connection acts as the local owner). For benchmarks on loopback only.")
    var devInsecure = false

    @Flag(name: .long, help: ArgumentHelp("Benchmarks only: no authentication, no encryption at rest, no signed commits, on a data directory of its own.", visibility: .hidden))
    var benchmarkBaseline = false

    @Flag(name: .long, help: ArgumentHelp("Benchmarks only: spaces as usual, but no ledger (to measure what anchoring costs).", visibility: .hidden))
    var benchmarkNoLedger = false

    /// Loopback: `localhost`, `::1`, or an IPv4 address in 127.0.0.0/8 (four numbers, not a host
    /// name that merely starts with "127.").
    var isLoopback: Bool {
        if ["::1", "localhost"].contains(bind) { return true }
        let parts = bind.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    func validate() throws {
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        guard tlsCa == nil || tlsCert != nil else { throw ValidationError("--tls-ca needs --tls-cert and --tls-key") }
        // A fail point makes this node misbehave towards its peers: loopback only, peers included.
        let loopbackPeers = peers.split(separator: ",").allSatisfy { address in
            let host = address.trimmingCharacters(in: .whitespaces).split(separator: ":").dropLast().joined(separator: ":")
            return host == "localhost" || host.hasPrefix("127.") || host == "[::1]" || host == "::1"
        }
        guard failPoint.isEmpty || (isLoopback && loopbackPeers) else {
            throw ValidationError("--fail-point is for tests, on loopback addresses only (--bind and --peers)")
        }
        guard !enableTestCommands || isLoopback else { throw ValidationError("--enable-test-commands is for tests, on loopback addresses only") }
        guard failPoint.allSatisfy({ $0 == "job-verifier-disagrees" }) else { throw ValidationError("unknown --fail-point (job-verifier-disagrees)") }
        guard isLoopback || ((allowPlaintext || tlsCert != nil) && !devInsecure && !benchmarkBaseline) else {
            if devInsecure || benchmarkBaseline { throw ValidationError("--dev-insecure turns authentication off, so it only listens on loopback addresses") }
            throw ValidationError("refusing to bind \(bind) without TLS: passwords and session tokens would cross the network in the clear. Give --tls-cert and --tls-key, bind a loopback address and use an SSH tunnel, or pass --allow-plaintext to accept the risk.")
        }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        if let peerPort, !(1...65535).contains(peerPort) { throw ValidationError("--peer-port must be between 1 and 65535") }
        if let maxDocumentsExamined, maxDocumentsExamined < 1 { throw ValidationError("--max-documents-examined must be at least 1") }
        guard procedureFuelMax >= 1_000 else { throw ValidationError("--procedure-fuel-max must be at least 1000") }
        guard (1...4_096).contains(procedureMemoryMax) else { throw ValidationError("--procedure-memory-max must be between 1 and 4096 (MB)") }
        guard (16...1_048_576).contains(maxQueryMemory) else { throw ValidationError("--max-query-memory must be between 16 and 1048576 (MB)") }
        guard (1...100_000).contains(maxConnections), (1...100_000).contains(maxConnectionsPerAddress) else {
            throw ValidationError("--max-connections and --max-connections-per-address must be between 1 and 100000")
        }
        if let maxOperationTime, (try? DurationText.milliseconds(maxOperationTime)) == nil {
            throw ValidationError("--max-operation-time must be a duration such as 500ms, 30s or 5m")
        }
        guard peers.isEmpty || peerPort != nil else { throw ValidationError("--peers needs --peer-port (peers connect back to it)") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        guard ["normal", "full"].contains(sync) else { throw ValidationError("--sync must be 'normal' or 'full'") }
        guard let interval = try? DurationText.milliseconds(blockInterval), (10...3_600_000).contains(interval) else {
            throw ValidationError("--block-interval must be a duration from 10ms to 1h (for example 1s or 200ms)")
        }
        guard commitWindowMilliseconds != nil else {
            throw ValidationError("--commit-window must be 0 or a duration up to 1s (for example 5ms)")
        }
    }

    /// `--commit-window` in milliseconds (0 for off); nil when it is not a valid window.
    var commitWindowMilliseconds: Int64? {
        if commitWindow.wholeMatch(of: /0+(ms|s)?/) != nil { return 0 }
        guard let milliseconds = try? DurationText.milliseconds(commitWindow), (0...1_000).contains(milliseconds) else { return nil }
        return milliseconds
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "stratosdb")
        let absoluteDataDir = URL(fileURLWithPath: dataDir).standardizedFileURL.path
        var configuration = ServerConfiguration(
            dataDirectory: absoluteDataDir, host: bind, port: port, syncFull: sync == "full", authenticationDisabled: devInsecure || benchmarkBaseline)
        configuration.spaceSecurityDisabled = benchmarkBaseline
        configuration.ledger.blockIntervalMilliseconds = try DurationText.milliseconds(blockInterval)
        configuration.commitWindowMilliseconds = commitWindowMilliseconds ?? 5
        configuration.ledgerDisabled = benchmarkNoLedger
        configuration.maxConnections = maxConnections
        configuration.documentsExaminedMax = maxDocumentsExamined
        configuration.failPoints = Set(failPoint)
        configuration.testCommandsEnabled = enableTestCommands
        guard ttlMonitorSleepSecs >= 1 else { throw ValidationError("--ttl-monitor-sleep-secs must be at least 1") }
        configuration.ttlMonitorSleepSeconds = ttlMonitorSleepSecs
        configuration.procedureLimits.fuelMax = procedureFuelMax
        configuration.procedureLimits.fuelDefault = min(configuration.procedureLimits.fuelDefault, procedureFuelMax)
        configuration.procedureLimits.memoryBytesMax = procedureMemoryMax * 1024 * 1024
        configuration.procedureLimits.timeMillisecondsMax = try DurationText.milliseconds(procedureTimeMax)
        OperationContext.queryMemoryBytesMax = maxQueryMemory * 1024 * 1024
        configuration.maxConnectionsPerAddress = maxConnectionsPerAddress
        configuration.defaultReadTimeMilliseconds = try maxOperationTime.map { try DurationText.milliseconds($0) }
        configuration.ledger.peerPort = peerPort
        configuration.ledger.peers = peers.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if let tlsCert, let tlsKey {
            configuration.tls = TLSSettings(certificatePath: tlsCert, keyPath: tlsKey, clientCAPath: tlsCa)
        }
        let uriOptions = tlsCert == nil ? "" : "?tls=true"
        let syncMode = configuration.syncFull ? "full" : "normal"
        if !isLoopback && tlsCert == nil { logger.warning("listening on a non-loopback address without TLS (--allow-plaintext): credentials cross the network in the clear") }
        if devInsecure { logger.warning("authentication is off (--dev-insecure): every client acts as the local owner") }
        let host = bind.contains(":") ? "[\(bind)]" : bind
        let holder = ServerHolder()
        let server = try WireServer(configuration: configuration, logger: logger) { boundPort in
            let identity = holder.identity
            NodeAddress(did: identity?.nodeKey.did.string ?? "", host: host, port: boundPort, tls: !uriOptions.isEmpty).write(dataDirectory: absoluteDataDir)
            var login = ""
            if !devInsecure && !benchmarkBaseline, let owner = identity?.ownerLogin { login = "\(owner.user):\(owner.password)@" }
            let line = "StratosDB \(StratosVersion.current) ready: mongodb://\(login)\(host):\(boundPort)/\(uriOptions) (data in \(absoluteDataDir), sync \(syncMode))\n"
            FileHandle.standardOutput.write(Data(line.utf8))
        }
        holder.identity = server.identity
        let group = ServiceGroup(
            configuration: .init(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// Hands the server's identity to its ready callback, which is created before the server.
final class ServerHolder: @unchecked Sendable {
    // Safe: written once before the server starts listening, read only after.
    var identity: NodeIdentity?
}
