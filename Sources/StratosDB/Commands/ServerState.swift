import Foundation
import CStratosVFS
import Ledger
import Logging
import NIOPosix
import QueryEngine
import SpaceOwnership
import StoredProcedures
import StratosCore
import Synchronization

/// Settings of a running node.
public struct ServerConfiguration: Sendable {
    /// Where data lives.
    public var dataDirectory: String
    /// Address to listen on.
    public var host: String
    /// Port to listen on (0 picks a free one).
    public var port: Int
    /// Whether every write is synced before it is acknowledged (`--sync full`).
    public var syncFull: Bool
    /// `--dev-insecure`: no authentication; every connection acts as the node's local owner.
    /// For benchmarks and experiments on loopback only.
    public var authenticationDisabled: Bool
    /// TLS for every connection (`--tls-cert`, `--tls-key`, `--tls-ca`), nil for plaintext.
    public var tls: TLSSettings?
    /// `--benchmark-baseline`: also no encryption at rest and no signed commits, so a benchmark
    /// can measure what spaces cost against a plain database. Loopback only; never for data.
    public var spaceSecurityDisabled = false
    /// The ledger (block interval, timeouts); off with `spaceSecurityDisabled`.
    public var ledger = LedgerSettings()
    /// `--commit-window`: how long a space's writes may wait to be sealed into one signed commit
    /// (`CommitLog`); 0 signs a commit for every write transaction.
    public var commitWindowMilliseconds: Int64 = 5
    /// `--benchmark-no-ledger`: spaces as usual but no chain, to measure what anchoring costs.
    public var ledgerDisabled = false
    /// `--max-connections`: open connections at once; more are closed on accept.
    public var maxConnections = ServerLimits.connectionsMax
    /// `--max-connections-per-address`: open connections from one client address.
    public var maxConnectionsPerAddress = ServerLimits.connectionsPerAddressMax
    /// `--max-operation-time`: the deadline of reads that give no `maxTimeMS` (nil: none).
    public var defaultReadTimeMilliseconds: Int64?
    /// `--max-documents-examined`: the most documents one operation may visit (nil: no limit).
    public var documentsExaminedMax: Int?
    /// Fuel, memory and size limits of stored procedures (`--procedure-fuel-max`, …).
    public var procedureLimits = ProcedureLimits()
    /// Seconds between passes of the TTL monitor (`--ttl-monitor-sleep-secs`, MongoDB's
    /// `ttlMonitorSleepSecs`).
    public var ttlMonitorSleepSeconds = 60
    /// Faults to inject, for tests only (`serve --fail-point`, loopback only):
    /// `job-verifier-disagrees` makes this node's verdicts on other nodes' jobs wrong.
    public var failPoints: Set<String> = []
    /// `serve --enable-test-commands` (loopback only): MongoDB's test commands
    /// (`configureFailPoint` with `failCommand`), for drivers' own test suites.
    public var testCommandsEnabled = false

    /// Creates a configuration.
    public init(dataDirectory: String, host: String = "127.0.0.1", port: Int = 27017, syncFull: Bool = false, authenticationDisabled: Bool = false) {
        self.dataDirectory = dataDirectory
        self.host = host
        self.port = port
        self.syncFull = syncFull
        self.authenticationDisabled = authenticationDisabled
    }
}

/// Where a node's TLS certificate chain and key are (PEM files), and optionally the CA whose
/// client certificates it requires (mutual TLS).
public struct TLSSettings: Sendable {
    public var certificatePath: String
    public var keyPath: String
    public var clientCAPath: String?

    public init(certificatePath: String, keyPath: String, clientCAPath: String? = nil) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.clientCAPath = clientCAPath
    }
}

/// State shared by every connection of a node.
final class ServerState: Sendable {
    let configuration: ServerConfiguration
    let storage: StorageEngine
    let cursors = CursorRegistry()
    /// The `failCommand` fail point (test commands only).
    let commandFailPoint = CommandFailPoint()
    /// Running commands (currentOp, killOp, cancellation on disconnect and shutdown).
    let operations = OperationRegistry()
    /// Logical sessions seen (`$listLocalSessions`).
    let sessions = LogicalSessions()
    /// Open connections per client address (the per-address cap).
    let connectionsPerAddress = Mutex<[String: Int]>([:])
    let clock: any WallClock
    let logger: Logger
    let startedMilliseconds: Int64
    let connectionCounter = Atomic<Int64>(0)
    /// serverStatus `network`: bytes of wire messages received and sent, and messages received.
    let networkBytesIn = Atomic<Int64>(0)
    let networkBytesOut = Atomic<Int64>(0)
    let networkRequests = Atomic<Int64>(0)
    /// TTL monitor passes and the documents it deleted (`serverStatus.metrics.ttl`).
    let ttlPasses = Atomic<Int64>(0)
    let ttlDeletedDocuments = Atomic<Int64>(0)
    let openConnections = Atomic<Int>(0)
    let commandCounters = Mutex<[String: Int64]>([:])
    /// Threads for reads that may examine many documents (filtered collection scans, in-memory
    /// sorts, aggregations): they run here so a heavy query never stalls the event loops that
    /// serve every other connection.
    let heavyReadPool = NIOThreadPool(numberOfThreads: ServerLimits.heavyReadThreads)
    /// Fair admission to `heavyReadPool` between spaces.
    let heavyReads = HeavyReadScheduler(capacity: ServerLimits.heavyReadThreads)
    /// Validated procedure modules by code hash.
    let procedureModules = ProcedureModuleCache()
    /// Calls, failures and fuel per procedure since the node started, keyed "space/name"
    /// (reported by listProcedures and serverStatus; charged once proof-of-traffic lands).
    private let procedureCalls = Mutex<[String: ProcedureUsage]>([:])
    /// Users, spaces and grants.
    let catalog: NodeCatalog
    /// The node's and the local owner's identities.
    let identity: NodeIdentity
    let authorizer: Authorizer
    /// The proof-of-stake ledger that anchors every space commit (nil in the benchmark baseline).
    let ledger: LedgerService?
    /// The validator network (nil without `--peer-port`).
    let peerNetwork: PeerNetwork?
    /// Second-node re-runs of jobs with `redundancy: 2` (over `peerNetwork`).
    let jobVerification: JobVerification

    /// Held while the node runs (see `NodeLock`).
    let lock: NodeLock

    init(configuration: ServerConfiguration, clock: any WallClock, logger: Logger) throws {
        guard let lock = NodeLock(dataDirectory: configuration.dataDirectory) else {
            throw QueryError(.illegalOperation, "another StratosDB node is using \(configuration.dataDirectory)")
        }
        self.lock = lock
        self.configuration = configuration
        self.catalog = try NodeCatalog(dataDirectory: configuration.dataDirectory, clock: clock)
        self.identity = try NodeIdentity.bootstrap(dataDirectory: configuration.dataDirectory, catalog: catalog)
        guard stratos_vfs_register() == 0 else { throw QueryError(.internalError, "cannot register the encrypting SQLite VFS") }
        let catalog = self.catalog
        let nodeKey = identity.nodeKey
        let ledger = configuration.spaceSecurityDisabled || configuration.ledgerDisabled
            ? nil
            : try LedgerService(dataDirectory: configuration.dataDirectory, nodeKey: nodeKey, settings: configuration.ledger, logger: logger, clock: clock)
        self.ledger = ledger
        if let ledger, let peerPort = configuration.ledger.peerPort {
            let network = PeerNetwork(
                nodeKey: nodeKey, chainID: ledger.chainID, host: configuration.host, port: peerPort, addresses: configuration.ledger.peers,
                ledger: ledger, statusPath: (LedgerService.directory(configuration.dataDirectory) as NSString).appendingPathComponent("peers.json"),
                logger: logger)
            ledger.setTransport(network)
            peerNetwork = network
        } else {
            peerNetwork = nil
        }
        // MongoDB logs each write a "warn" validator lets through; names only, never the document.
        let validationWarning: @Sendable (String, String) -> Void = { database, collection in
            logger.warning("Document would fail validation", metadata: ["db": "\(database)", "collection": "\(collection)"])
        }
        self.storage = configuration.spaceSecurityDisabled
            ? try StorageEngine(dataDirectory: configuration.dataDirectory, clock: clock, validationWarning: validationWarning)
            : try StorageEngine(
                dataDirectory: configuration.dataDirectory, signer: identity.nodeKey, clock: clock,
                spaceKey: { id throws(QueryError) in try catalog.spaceKey(id, openedWith: nodeKey) },
                onCommitted: { space, seq, hash in ledger?.noteCommit(space: space.string, seq: seq, hash: hash) },
                anchoredHead: { space in
                    guard let head = ledger?.anchoredHead(space: space.string) else { return nil }
                    // An anchor no higher than a dropped incarnation reached may be that one's; only
                    // anchors beyond it are the current history's for sure (docs/threat_model.md).
                    if let dropped = catalog.droppedThrough(space: space), head.seq <= dropped { return nil }
                    return head
                },
                grantIndex: catalog, validationWarning: validationWarning,
                commitWindow: configuration.commitWindowMilliseconds > 0 ? .milliseconds(configuration.commitWindowMilliseconds) : nil)
        self.authorizer = Authorizer(catalog: catalog)
        let verification = JobVerification(
            nodeKey: identity.nodeKey, limits: configuration.procedureLimits, logger: logger,
            disagree: configuration.failPoints.contains("job-verifier-disagrees"))
        if let network = peerNetwork {
            network.jobHandler.withLock { $0 = { bytes, peer in verification.receive(bytes, from: peer) } }
            verification.transport.withLock { $0 = { bytes, peer in network.sendJobMessage(bytes, to: peer) } }
        }
        self.jobVerification = verification
        self.clock = clock
        self.logger = logger
        self.startedMilliseconds = clock.nowMilliseconds()
        heavyReadPool.start()
    }

    let operationCounters = Mutex<[String: Int64]>([:])

    /// Counts one procedure call.
    func recordProcedureCall(space: String, name: String, fuel: UInt64, failed: Bool) {
        procedureCalls.withLock { calls in
            var usage = calls["\(space)/\(name)", default: ProcedureUsage()]
            usage.calls += 1
            if failed { usage.failures += 1 }
            usage.fuel &+= Int64(clamping: fuel)
            calls["\(space)/\(name)"] = usage
        }
    }

    /// A procedure's calls since the node started.
    func procedureUsage(space: String, name: String) -> ProcedureUsage {
        procedureCalls.withLock { $0["\(space)/\(name)"] ?? ProcedureUsage() }
    }

    /// Every procedure call of one space since the node started (dbStats).
    func procedureUsage(space: String) -> ProcedureUsage { procedureTotal { $0.hasPrefix(space + "/") } }

    /// Every procedure call since the node started (serverStatus).
    var procedureTotals: ProcedureUsage { procedureTotal { _ in true } }

    private func procedureTotal(_ included: (String) -> Bool) -> ProcedureUsage {
        procedureCalls.withLock { calls in
            calls.filter { included($0.key) }.values.reduce(into: ProcedureUsage()) { total, usage in
                total.calls += usage.calls
                total.failures += usage.failures
                total.fuel &+= usage.fuel
            }
        }
    }

    /// After a restart: a space whose newest commit never made it into an anchor batch (the
    /// node stopped first) is queued for the next one, so no acknowledged commit stays
    /// unanchored until the space's next write. One space at a time, in the background.
    func queueUnanchoredCommits() async {
        guard let ledger else { return }
        for record in catalog.allSpaces() {
            guard !Task.isCancelled else { return }
            guard let executor = try? storage.executor(record.id.string, create: false),
                let head = try? await executor.read({ store throws(QueryError) in try CommitLog.lastCommits(store.sqlite, count: 1).first })
            else { continue }
            let anchored = (try? ledger.store.anchoredSeq(space: record.id.string)) ?? nil
            if (anchored ?? 0) < head.commit.seq, ledger.latestSeq(space: record.id.string) == nil {
                ledger.noteCommit(space: record.id.string, seq: head.commit.seq, hash: head.hash)
            }
        }
    }

    func count(_ command: String) {
        commandCounters.withLock { $0[command, default: 0] += 1 }
    }

    /// serverStatus `opcounters`: documents inserted, and update/delete statements, as mongod counts them.
    func countOperations(_ kind: String, _ amount: Int) {
        operationCounters.withLock { $0[kind, default: 0] += Int64(amount) }
    }
}

/// Calls, failures and fuel of stored procedures.
struct ProcedureUsage: Sendable {
    var calls: Int64 = 0
    var failures: Int64 = 0
    var fuel: Int64 = 0
}
